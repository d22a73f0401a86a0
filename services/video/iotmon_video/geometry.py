"""Points, polygons and segments in frame fractions (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence

Point = tuple[float, float]


def inside(point: Point, polygon: Sequence[Point]) -> bool:
    """Ray casting; a point on an edge may fall either way."""
    x, y = point
    found = False
    j = len(polygon) - 1
    for i in range(len(polygon)):
        xi, yi = polygon[i]
        xj, yj = polygon[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            found = not found
        j = i
    return found


def side(point: Point, start: Point, end: Point) -> float:
    """Positive on the right of start→end in image coordinates (y down), negative on the
    left, zero on the line."""
    return (end[0] - start[0]) * (point[1] - start[1]) - (end[1] - start[1]) * (point[0] - start[0])


def segments_cross(a: Point, b: Point, c: Point, d: Point) -> bool:
    """Whether segment a-b crosses segment c-d (touching counts)."""
    d1, d2 = side(a, c, d), side(b, c, d)
    d3, d4 = side(c, a, b), side(d, a, b)
    return d1 * d2 <= 0 and d3 * d4 <= 0 and not (d1 == d2 == 0)
