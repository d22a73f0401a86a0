"""Bosch BME280 calibration and compensation, in the datasheet's integer arithmetic.

The chip reports raw ADC counts; each one is turned into a physical value with
factory trimming parameters read from the chip (BST-BME280-DS002, section 4.2.3,
"Compensation formulas"). The integer forms are used because they are what the
chip's vendor tests against: temperature in 0.01 degC, pressure in Pa/256 (64-bit),
humidity in %RH/1024. Temperature and pressure are the same as the BMP280's.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

CALIBRATION_A = 0x88
"""dig_T1..dig_P9 and dig_H1: 26 bytes from here (0xA0 is unused)."""
CALIBRATION_A_LENGTH = 26
CALIBRATION_B = 0xE1
"""dig_H2..dig_H6: 7 bytes from here."""
CALIBRATION_B_LENGTH = 7

ADC_SKIPPED = 0x80000
"""What the temperature and pressure registers hold when no measurement was made."""


@dataclass(frozen=True, slots=True)
class Calibration:
    t1: int
    t2: int
    t3: int
    p1: int
    p2: int
    p3: int
    p4: int
    p5: int
    p6: int
    p7: int
    p8: int
    p9: int
    h1: int
    h2: int
    h3: int
    h4: int
    h5: int
    h6: int

    @classmethod
    def from_registers(cls, block_a: bytes, block_b: bytes) -> Calibration:
        """Parse the two calibration blocks (0x88.., 0xE1..) as the chip stores them."""
        if len(block_a) != CALIBRATION_A_LENGTH or len(block_b) != CALIBRATION_B_LENGTH:
            raise ValueError("calibration blocks have the wrong length")
        t1, t2, t3, p1, p2, p3, p4, p5, p6, p7, p8, p9 = struct.unpack(
            "<HhhHhhhhhhhh", block_a[:24]
        )
        h1 = block_a[25]
        h2, h3 = struct.unpack("<hB", block_b[:3])
        e4, e5, e6 = block_b[3], block_b[4], block_b[5]
        # dig_H4 and dig_H5 are signed 12-bit values sharing register 0xE5.
        h4 = _signed12((e4 << 4) | (e5 & 0x0F))
        h5 = _signed12((e6 << 4) | (e5 >> 4))
        (h6,) = struct.unpack("<b", block_b[6:7])
        return cls(t1, t2, t3, p1, p2, p3, p4, p5, p6, p7, p8, p9, h1, h2, h3, h4, h5, h6)

    def to_registers(self) -> tuple[bytes, bytes]:
        """The inverse of ``from_registers``: what a chip with these parameters stores."""
        block_a = struct.pack(
            "<HhhHhhhhhhhhBB",
            self.t1,
            self.t2,
            self.t3,
            self.p1,
            self.p2,
            self.p3,
            self.p4,
            self.p5,
            self.p6,
            self.p7,
            self.p8,
            self.p9,
            0,
            self.h1,
        )
        h4, h5 = self.h4 & 0xFFF, self.h5 & 0xFFF
        block_b = struct.pack("<hB", self.h2, self.h3) + bytes(
            [h4 >> 4, ((h5 & 0x0F) << 4) | (h4 & 0x0F), h5 >> 4]
        )
        return block_a, block_b + struct.pack("<b", self.h6)


def _signed12(value: int) -> int:
    return value - 0x1000 if value & 0x800 else value


def _c_div(numerator: int, denominator: int) -> int:
    """C's integer division (truncates toward zero); Python's // floors."""
    quotient = abs(numerator) // abs(denominator)
    return quotient if (numerator >= 0) == (denominator > 0) else -quotient


def t_fine(adc_t: int, cal: Calibration) -> int:
    """The fine temperature the pressure and humidity formulas take."""
    var1 = (((adc_t >> 3) - (cal.t1 << 1)) * cal.t2) >> 11
    delta = (adc_t >> 4) - cal.t1
    var2 = (((delta * delta) >> 12) * cal.t3) >> 14
    return var1 + var2


def temperature_c(fine: int) -> float:
    return ((fine * 5 + 128) >> 8) / 100.0


def pressure_pa(adc_p: int, fine: int, cal: Calibration) -> float:
    var1 = fine - 128000
    var2 = var1 * var1 * cal.p6
    var2 = var2 + ((var1 * cal.p5) << 17)
    var2 = var2 + (cal.p4 << 35)
    var1 = ((var1 * var1 * cal.p3) >> 8) + ((var1 * cal.p2) << 12)
    var1 = (((1 << 47) + var1) * cal.p1) >> 33
    if var1 == 0:
        return 0.0  # the datasheet's guard against a division by zero
    p = 1048576 - adc_p
    p = _c_div(((p << 31) - var2) * 3125, var1)
    var1 = (cal.p9 * (p >> 13) * (p >> 13)) >> 25
    var2 = (cal.p8 * p) >> 19
    p = ((p + var1 + var2) >> 8) + (cal.p7 << 4)
    return p / 256.0


def humidity_pct(adc_h: int, fine: int, cal: Calibration) -> float:
    x = fine - 76800
    x = ((((adc_h << 14) - (cal.h4 << 20) - (cal.h5 * x)) + 16384) >> 15) * (
        (
            ((((((x * cal.h6) >> 10) * (((x * cal.h3) >> 11) + 32768)) >> 10) + 2097152) * cal.h2)
            + 8192
        )
        >> 14
    )
    x = x - (((((x >> 15) * (x >> 15)) >> 7) * cal.h1) >> 4)
    x = min(max(x, 0), 419430400)
    return (x >> 12) / 1024.0
