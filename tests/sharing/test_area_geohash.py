"""The geohash of the area channels (SPEC §13.3) against published vectors, and exact on cell edges."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from backend.sharing import geohash
from backend.sharing.areas import TILE_PRECISION, tile_of


@pytest.mark.parametrize(("lat", "lon", "precision", "expected"), [
    (57.64911, 10.40744, 11, "u4pruydqqvj"),     # the example of the geohash article
    (42.605, -5.603, 5, "ezs42"),
    (37.7749, -122.4194, 5, "9q8yy"),            # San Francisco
    (-90, -180, 5, "00000"),
    (90, 180, 5, "zzzzz"),                       # the world's north and east edges: the last cell
])
def test_encode_matches_known_vectors(lat: float, lon: float, precision: int, expected: str) -> None:
    assert geohash.encode(lat, lon, precision) == expected


def test_a_coordinate_encodes_alike_as_float_decimal_or_text() -> None:
    assert {geohash.encode(value, 82.92043, 5) for value in (55.030199, Decimal("55.030199"), "55.030199")} \
        == {"vcfcn"}


def test_bounds_of_a_known_cell() -> None:
    south, west, north, east = geohash.bounds("ezs42")
    assert (float(south), float(west), float(north), float(east)) == (
        42.5830078125, -5.625, 42.626953125, -5.5810546875)
    assert north - south == Fraction(180, 2 ** 12) and east - west == Fraction(360, 2 ** 13)


def test_a_point_on_an_edge_belongs_to_the_cell_north_east_of_it() -> None:
    # 54.84375 and 82.96875 are edges of precision-5 cells (multiples of 180/2^12 and 360/2^13 from the
    # south-west corner of the world) with six decimals, like the database's coordinates.
    corner = geohash.encode(Decimal("54.843750"), Decimal("82.968750"), 5)
    south, west, _, _ = geohash.bounds(corner)
    assert (south, west) == (Fraction("54.84375"), Fraction("82.96875"))
    below = geohash.encode(Decimal("54.843749"), Decimal("82.968749"), 5)
    assert below != corner and below in geohash.neighbours(corner)


@pytest.mark.parametrize(("cell", "expected"), [
    # N, NE, E, SE, S, SW, W, NW from published test suites of other geohash libraries
    ("ezs42", {"ezs48", "ezs49", "ezs43", "ezs41", "ezs40", "ezefp", "ezefr", "ezefx"}),
    ("w0zpp8", {"w0zpp9", "w0zppc", "w0zppb", "w0znzz", "w0znzx", "w0znzr", "w0zpp2", "w0zpp3"}),
    ("xn76gg", {"xn76gu", "xn76uh", "xn76u5", "xn76u4", "xn76gf", "xn76gd", "xn76ge", "xn76gs"}),
])
def test_neighbours_match_known_vectors(cell: str, expected: set[str]) -> None:
    assert set(geohash.neighbours(cell)) == expected


def test_neighbours_wrap_at_the_antimeridian_and_stop_at_the_poles() -> None:
    # Libraries that wrap across a pole give 'pb' north of 'zz'; nothing lies north of the pole.
    north_east = geohash.neighbours("zz")
    assert "bp" in north_east and "pb" not in north_east and len(north_east) == 5
    south_west = geohash.neighbours("00")
    assert "pb" in south_west and "bp" not in south_west and len(south_west) == 5
    assert len(geohash.neighbours("u4pru")) == 8


def test_cover_holds_the_cells_of_every_point_of_the_box() -> None:
    cells = geohash.cover(Decimal("54.84375"), Decimal("82.9"), Decimal("55.0"), Decimal("82.96875"), 5, 100)
    assert len(cells) == len(set(cells))
    for lat in ("54.84375", "54.9", "55.0"):
        for lon in ("82.9", "82.93", "82.96875"):
            assert geohash.encode(lat, lon, 5) in cells
    # No cell beyond the box: each one shares a point with it.
    for cell in cells:
        south, west, north, east = geohash.bounds(cell)
        assert south <= Fraction("55.0") and north >= Fraction("54.84375")
        assert west <= Fraction("82.96875") and east >= Fraction("82.9")


@pytest.mark.parametrize(("box", "why"), [
    ((0, 0, 1, 1), "more than"),                     # 23 × 23 cells > 100
    ((1, 0, 0, 1), "minimum above"),
    ((0, 1, 1, 0), "minimum above"),
    ((-91, 0, 0, 1), "outside"),
    ((0, 0, 1, 181), "outside"),
])
def test_cover_refuses_big_inverted_or_outlying_boxes(box: tuple[int, int, int, int], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        geohash.cover(*box, precision=5, limit=100)


@pytest.mark.parametrize("call", [
    lambda: geohash.encode(91, 0, 5),
    lambda: geohash.encode(0, -180.5, 5),
    lambda: geohash.encode(0, 0, 0),
    lambda: geohash.encode(0, 0, 13),
    lambda: geohash.bounds("u4pra"),                # 'a' is not in the alphabet
    lambda: geohash.bounds(""),
])
def test_bad_input_is_a_value_error(call: object) -> None:
    with pytest.raises(ValueError):
        call()   # type: ignore[operator]


def test_tile_of_a_car() -> None:
    assert tile_of({"lat": Decimal("57.649110"), "lon": Decimal("10.407440")}) == "u4pru"
    assert tile_of({"lat": None, "lon": Decimal("10.4")}) is None
    assert TILE_PRECISION == 5
