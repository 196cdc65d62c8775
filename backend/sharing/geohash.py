"""Geohash cells (the public base-32 scheme of geohash.org), exact on cell edges.

A geohash of precision p interleaves 5p bits: longitude first, then latitude, each bit halving the
remaining range. That is the same as numbering a grid of 2^lon_bits × 2^lat_bits equal cells and
interleaving the two cell numbers, which is how this module computes it — with `Fraction`s, so a
point exactly on an edge (54.84375 is one) lands in the same cell whether it arrives as a float, a
Decimal from PostgreSQL or a string, and the cover of a box never misses the cell of a point on its
edge. A cell holds its south and west edges; the northern and eastern edges of the world belong to
the last row and column.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Final

ALPHABET: Final = "0123456789bcdefghjkmnpqrstuvwxyz"     # no a, i, l, o
_VALUE: Final = {char: value for value, char in enumerate(ALPHABET)}
PATTERN: Final = "[0-9b-hjkmnp-z]"                       # one character of ALPHABET, for regexes
MAX_PRECISION: Final = 12                                # ≈ 3.7 cm: more is noise

Coordinate = Fraction | Decimal | float | int | str
Bounds = tuple[Fraction, Fraction, Fraction, Fraction]  # south, west, north, east


def _bits(precision: int) -> tuple[int, int]:
    """How many of the 5p bits go to longitude and to latitude (longitude gets the odd one)."""
    if not 1 <= precision <= MAX_PRECISION:
        raise ValueError(f"geohash precision must be 1..{MAX_PRECISION}")
    total = 5 * precision
    return (total + 1) // 2, total // 2


def _cell(value: Coordinate, low: int, high: int, bits: int, name: str) -> int:
    """The number of the cell along one axis that holds `value`."""
    # n/d exactly: float, Decimal, int and Fraction have as_integer_ratio (C speed, no Fraction
    # built per call: every car event computes its tile); decimal strings go through Fraction.
    if isinstance(value, str):
        value = Fraction(value)
    try:
        n, d = value.as_integer_ratio()
    except (OverflowError, ValueError):      # inf, nan
        raise ValueError(f"{name} {value} outside [{low}, {high}]") from None
    if not low * d <= n <= high * d:
        raise ValueError(f"{name} {value} outside [{low}, {high}]")
    count = 1 << bits
    return min((n - low * d) * count // (d * (high - low)), count - 1)


def _interleave(x: int, y: int, lon_bits: int, lat_bits: int) -> int:
    number = 0
    for position in range(lon_bits + lat_bits):
        # Even positions (from the most significant end) are longitude bits, odd ones latitude.
        if position % 2 == 0:
            bit = (x >> (lon_bits - 1 - position // 2)) & 1
        else:
            bit = (y >> (lat_bits - 1 - position // 2)) & 1
        number = (number << 1) | bit
    return number


def _text(x: int, y: int, precision: int) -> str:
    lon_bits, lat_bits = _bits(precision)
    number = _interleave(x, y, lon_bits, lat_bits)
    return "".join(ALPHABET[(number >> (5 * (precision - 1 - i))) & 31] for i in range(precision))


def _grid(geohash: str) -> tuple[int, int, int]:
    """The longitude and latitude cell numbers of `geohash`, and its precision."""
    precision = len(geohash)
    lon_bits, lat_bits = _bits(precision)
    number = 0
    for char in geohash:
        if char not in _VALUE:
            raise ValueError(f"{geohash!r} is not a geohash")
        number = (number << 5) | _VALUE[char]
    x = y = 0
    for position in range(lon_bits + lat_bits):
        bit = (number >> (lon_bits + lat_bits - 1 - position)) & 1
        if position % 2 == 0:
            x = (x << 1) | bit
        else:
            y = (y << 1) | bit
    return x, y, precision


def encode(lat: Coordinate, lon: Coordinate, precision: int) -> str:
    """The geohash of the cell holding (lat, lon); ValueError outside [-90, 90] × [-180, 180]."""
    lon_bits, lat_bits = _bits(precision)
    return _text(_cell(lon, -180, 180, lon_bits, "longitude"), _cell(lat, -90, 90, lat_bits, "latitude"),
                 precision)


def bounds(geohash: str) -> Bounds:
    """The cell's edges (south, west, north, east), exact."""
    x, y, precision = _grid(geohash)
    lon_bits, lat_bits = _bits(precision)
    width, height = Fraction(360, 1 << lon_bits), Fraction(180, 1 << lat_bits)
    return -90 + y * height, -180 + x * width, -90 + (y + 1) * height, -180 + (x + 1) * width


def neighbours(geohash: str) -> list[str]:
    """The up to 8 cells around `geohash`: longitude wraps at ±180°, nothing lies past a pole."""
    x, y, precision = _grid(geohash)
    lon_bits, lat_bits = _bits(precision)
    found = []
    for dy in (1, 0, -1):
        if not 0 <= y + dy < 1 << lat_bits:
            continue
        for dx in (-1, 0, 1):
            if dx == dy == 0:
                continue
            cell = _text((x + dx) % (1 << lon_bits), y + dy, precision)
            if cell != geohash and cell not in found:     # a 1-cell-wide world wraps onto itself
                found.append(cell)
    return found


def cover(south: Coordinate, west: Coordinate, north: Coordinate, east: Coordinate, precision: int,
          limit: int) -> list[str]:
    """Every cell that shares a point with the closed box, row by row from the south-west.

    ValueError when the box is out of range, inverted (no wrap across ±180°: split such a box) or
    needs more than `limit` cells — counted before any is built, so a world-sized box costs nothing.
    """
    if Fraction(south) > Fraction(north) or Fraction(west) > Fraction(east):
        raise ValueError("box with its minimum above its maximum")
    lon_bits, lat_bits = _bits(precision)
    x0, x1 = _cell(west, -180, 180, lon_bits, "longitude"), _cell(east, -180, 180, lon_bits, "longitude")
    y0, y1 = _cell(south, -90, 90, lat_bits, "latitude"), _cell(north, -90, 90, lat_bits, "latitude")
    if (x1 - x0 + 1) * (y1 - y0 + 1) > limit:
        raise ValueError(f"box covers more than {limit} cells")
    return [_text(x, y, precision) for y in range(y0, y1 + 1) for x in range(x0, x1 + 1)]
