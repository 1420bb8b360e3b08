"""Decimal numbers in request headers (``Content-Length``, ``Range``), read without trusting
their length: Python refuses to parse an ``int`` of more than 4300 digits (a ``ValueError``,
so a 500), and ``str.isdigit`` accepts characters ``int`` does not (``"²"``).
"""

from __future__ import annotations

import re

# Any number of bytes at or past this is "more than this service will ever hold", so longer
# numbers are read as it, whatever their digits.
HUGE = 10**18
DIGITS = re.compile(r"[0-9]+", re.ASCII)


def capped_int(digits: str) -> int:
    """The number ASCII ``digits`` spell, capped at :data:`HUGE` (however many digits)."""
    significant = digits.lstrip("0") or "0"
    if len(significant) > len(str(HUGE)):
        return HUGE
    return min(int(significant), HUGE)


def header_number(text: str) -> int | None:
    """The non-negative decimal ``text`` spells, capped at :data:`HUGE`; ``None`` when ``text``
    is not ASCII digits (signs, spaces and other scripts' digits included)."""
    if DIGITS.fullmatch(text) is None:
        return None
    return capped_int(text)
