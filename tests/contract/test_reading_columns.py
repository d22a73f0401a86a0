"""ReadingColumns reads as the list of ValidatedReading it holds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from iotmon_contract import ReadingColumns, ValidatedReading

readings = st.builds(
    ValidatedReading,
    st.sampled_from(["acme", "other"]),
    st.text(min_size=1, max_size=3),
    st.sampled_from(["t", "h"]),
    st.floats(allow_nan=False),
    st.none() | st.sampled_from(["degC", "%"]),
    st.integers(0, 2**62),
)


@given(st.lists(readings, max_size=12), st.lists(readings, max_size=5), st.data())
def test_columns_read_as_the_rows_they_hold(
    rows: list[ValidatedReading], more: list[ValidatedReading], data: st.DataObject
) -> None:
    columns = ReadingColumns.of(rows)
    assert len(columns) == len(rows)
    assert list(columns) == rows
    assert columns == rows
    assert all(isinstance(r, ValidatedReading) for r in columns)
    if rows:
        index = data.draw(st.integers(-len(rows), len(rows) - 1))
        assert columns[index] == rows[index]
        assert columns[index].metric == rows[index].metric
    start, stop = data.draw(st.integers(0, 12)), data.draw(st.integers(0, 12))
    part = columns[start:stop]
    assert isinstance(part, ReadingColumns)
    assert list(part) == rows[start:stop]
    columns.extend(more)
    columns.extend(ReadingColumns.of(more))
    assert list(columns) == rows + more + more
    assert sorted(columns, key=lambda r: r.ts_ns) == sorted(rows + more * 2, key=lambda r: r.ts_ns)
    assert ReadingColumns.of(columns) is columns
