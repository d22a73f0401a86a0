"""Counter-based pseudo-random numbers: each draw is a pure function of its key.

Simulators key every draw by (seed, device, metric, time) instead of advancing a
generator, so the reading at an instant is the same whatever was read before:
tests can sample any day of a simulated year directly, and two processes with
the same seed agree.
"""

from __future__ import annotations

import hashlib
import math

_MASK64 = (1 << 64) - 1
_GOLDEN_GAMMA = 0x9E3779B97F4A7C15
_INV_2_53 = 1.0 / (1 << 53)
_TWO_PI = 2.0 * math.pi


def mix64(value: int) -> int:
    """SplitMix64's finaliser: every input bit flips about half the output bits."""
    z = (value + _GOLDEN_GAMMA) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def derive(key: int, *parts: int) -> int:
    """A new key from a key and integer parts (negative parts are fine)."""
    for part in parts:
        key = mix64(key ^ (part & _MASK64))
    return key


def text_key(text: str) -> int:
    """A stable key for a name (``hash()`` is salted per process, this is not)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def uniform(key: int) -> float:
    """A float in [0, 1) from the top 53 bits of the key."""
    return (key >> 11) * _INV_2_53


def gaussian(key: int) -> float:
    """A standard normal draw (Box-Muller on two uniforms derived from the key)."""
    u1 = 1.0 - uniform(key)  # (0, 1]: log(0) is undefined
    u2 = uniform(mix64(key))
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(_TWO_PI * u2)
