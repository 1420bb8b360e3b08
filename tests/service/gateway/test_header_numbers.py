"""Numbers in headers: any length read without a ValueError, only ASCII digits taken."""

from __future__ import annotations

import pytest

from service.gateway.header_numbers import HUGE, capped_int, header_number


@pytest.mark.parametrize(
    ("text", "number"),
    [("0", 0), ("0042", 42), ("9" * 5000, HUGE), ("0" * 5000 + "7", 7), (str(HUGE + 1), HUGE)],
)
def test_decimals_of_any_length(text: str, number: int) -> None:
    assert header_number(text) == number
    assert capped_int(text) == number


@pytest.mark.parametrize("text", ["", "-1", "+1", " 1", "1 ", "\u00b2", "\u0663", "1e3", "0x10"])
def test_what_is_not_ascii_digits_is_no_number(text: str) -> None:
    assert header_number(text) is None
