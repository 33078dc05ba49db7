"""Reading numbers, amounts and dates written as text: one rule, used by the ready-made checks
(`handrail.checks`) and by the eval scorers (`handrail.evals.scorers`) alike.

    read_number("1,234.50")   -> Decimal("1234.50")
    read_number("€ 1 234")    -> Decimal("1234")
    read_number("1,234")      -> Decimal("1234")        a lone comma before three digits groups
    read_number("1.234")      -> Ambiguous(readings=(Decimal("1.234"), Decimal("1234")), ...)
    read_number("about 40")   -> NotANumber(why="'about 40' is not a number")
    read_date("03/04/2025")   -> Ambiguous(readings=(date(2025, 4, 3), date(2025, 3, 4)), ...)
    read_date("03/04/2025", dayfirst=True) -> date(2025, 4, 3)

Each reader returns a value, an `Ambiguous` (the text reads as two values and no rule can
choose) or a `NotANumber` / `NotADate` (with why). They never raise. docs/values.md states the
rule with a table of examples; `parse_date` is the raising form of `read_date`.

The rule for a number (the digits and the separators between them):
1. Spaces (also no-break and thin spaces) and apostrophes only group thousands: 1 234, 1'234.
2. Both `,` and `.`: the last one is the decimal mark (once), the other groups: 1,234.50,
   1.234,50.
3. One mark used more than once groups thousands: 1,234,567 and 1.234.567.
4. One mark used once is the decimal mark (12,50; 1.5; 0.125; 1234,567; 1 234,567), except
   before exactly three digits after one to three digits with no other separator: there a comma
   groups thousands (1,234 is 1234: a decimal comma is almost never followed by exactly three
   decimals) and a point is ambiguous (1.234 is 1.234 in English, 1234 in German).
5. Groups after the first have three digits (or twos then a final three, the Indian lakh:
   1,23,456); a number with a leading zero (00123) is an identifier, not a number.
Around the number: a sign (- + U+2212) before or after a currency prefix, accounting
parentheses (12.50), a trailing minus or CR for a negative, and a currency before or after: a
currency symbol, optionally after capitals (US$, HK$), a capital ISO code (EUR), or RM, Rs, Rp,
kr in any case. Nothing else: "12 apples" and "eur 12" are not numbers.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Generic, TypeVar

__all__ = [
    "Ambiguous",
    "AmbiguousDate",
    "NotADate",
    "NotANumber",
    "numbers_in",
    "parse_date",
    "read_date",
    "read_number",
]

T = TypeVar("T", Decimal, date)


@dataclass(frozen=True, kw_only=True, slots=True)
class Ambiguous(Generic[T]):
    """Text that reads as two values, and no rule says which was meant."""

    text: str
    """The text as given."""
    readings: tuple[T, T]
    """Both readings: for a number, the decimal reading first; for a date, day first."""
    why: str
    """One line for a person: "'1.234' is ambiguous: 1.234 (decimal point) or 1234 (...)"."""

    def __str__(self) -> str:
        return self.why


@dataclass(frozen=True, kw_only=True, slots=True)
class NotANumber:
    """A value that is not a number under the rule (see the module docs)."""

    text: str
    """The value as given (its `repr` when it is not text)."""
    why: str
    """One line for a person: "'about forty' is not a number"."""

    def __str__(self) -> str:
        return self.why


@dataclass(frozen=True, kw_only=True, slots=True)
class NotADate:
    """A value that is not a date in a form handrail reads, or not a real date."""

    text: str
    why: str
    """One line for a person: "'31/02/2025' is not a real date"."""

    def __str__(self) -> str:
        return self.why


# --- numbers -----------------------------------------------------------------------------------

_GROUPING = " '\u2019"  # after NFKC, no-break and thin spaces are plain spaces
_NUMBER_BODY = r"[0-9](?:[0-9,.'\u2019 ]*[0-9])?"
# A currency: a symbol (checked below to be one), optionally after capitals (US$, HK$); an ISO
# code in capitals (EUR); or a letter symbol written in any case (RM, Rs, Rp, kr).
_CURRENCY = r"(?:[A-Z]{0,3}[^\w\s.,'\u2019()+\-\u2212]|[A-Z]{3}|(?i:RM|RS\.?|RP|KR\.?))"
_AMOUNT = re.compile(
    rf"(?P<open>\()? ?(?P<sign>[-+\u2212])? ?(?P<pre>{_CURRENCY})? ?(?P<sign2>[-+\u2212])? ?"
    rf"(?P<number>{_NUMBER_BODY}) ?(?P<post>{_CURRENCY})? ?(?P<after>-|\u2212|(?i:cr))? ?"
    rf"(?P<close>\))?"
)
_SEPARATORS = re.compile(r"[,.'\u2019 ]")


def read_number(value: object) -> Decimal | Ambiguous[Decimal] | NotANumber:
    """The number `value` is: ints, Decimals and finite floats as they are; text under the rule
    in the module docs. Booleans, NaN, infinities and other types are not numbers."""
    if isinstance(value, str):
        return _read_number_text(value)
    if isinstance(value, bool):
        return NotANumber(text=repr(value), why=f"{value!r} is a bool, not a number")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return NotANumber(text=repr(value), why=f"{value!r} is not a finite number")
        return Decimal(repr(value))  # 0.1 is 0.1, not its binary expansion
    if isinstance(value, Decimal):
        if not value.is_finite():
            return NotANumber(text=str(value), why=f"{str(value)!r} is not a finite number")
        return value
    return NotANumber(text=repr(value), why=f"{value!r} is a {type(value).__name__}, not a number")


@functools.lru_cache(maxsize=1 << 14)
def _read_number_text(given: str) -> Decimal | Ambiguous[Decimal] | NotANumber:
    """Memoised: checks and scorers read the same few strings again and again."""
    text = " ".join(unicodedata.normalize("NFKC", given).split())
    match = _AMOUNT.fullmatch(text)
    if match is None or not (_is_currency(match["pre"]) and _is_currency(match["post"])):
        return NotANumber(text=given, why=f"{given!r} is not a number")
    negatives = [
        bool(match["sign"] and match["sign"] != "+"),
        bool(match["sign2"] and match["sign2"] != "+"),
        bool(match["after"]),
        bool(match["open"]),
    ]
    signs = sum(bool(match[g]) for g in ("sign", "sign2", "after", "open"))
    if bool(match["open"]) != bool(match["close"]) or signs > 1:
        return NotANumber(text=given, why=f"{given!r} is not a number (its sign is unclear)")
    found = _number_token(match["number"])
    if found is None:
        return NotANumber(text=given, why=f"{given!r} is not a number")
    if isinstance(found, tuple):
        decimal, grouped = found
        if any(negatives):
            decimal, grouped = -decimal, -grouped
        return Ambiguous(
            text=given,
            readings=(decimal, grouped),
            why=f"{given!r} is ambiguous: {_plain(decimal)} (decimal point) or "
            f"{_plain(grouped)} (thousands separator)",
        )
    return -found if any(negatives) else found


def _is_currency(text: str | None) -> bool:
    return text is None or all(
        c.isalpha() or c == "." or unicodedata.category(c) == "Sc" for c in text
    )


def _number_token(token: str) -> Decimal | tuple[Decimal, Decimal] | None:
    """The digits-and-separators `token` under rules 1-5: a number, both readings of an
    ambiguous one (decimal, grouped), or None."""
    marks = [c for c in token if c in ",."]
    kinds = set(marks)
    grouped_elsewhere = any(c in _GROUPING for c in token)
    decimal_mark = ""
    ambiguous = False
    if len(kinds) == 2:
        decimal_mark = marks[-1]
        if marks.count(decimal_mark) > 1:
            return None
    elif len(marks) == 1:
        whole, fraction = token.split(marks[0])
        if (
            len(fraction) == 3
            and not grouped_elsewhere
            and 1 <= len(whole) <= 3
            and not whole.startswith("0")
        ):
            if marks[0] == ".":
                ambiguous = True
        else:
            decimal_mark = marks[0]
    if ambiguous:
        whole, fraction = token.split(".")
        return Decimal(f"{whole}.{fraction}"), Decimal(whole + fraction)
    whole, _, fraction = token.rpartition(decimal_mark) if decimal_mark else (token, "", "")
    groups = _SEPARATORS.split(whole)
    if len(groups) > 1 and not _grouped(groups):
        return None
    digits = "".join(groups)
    if not digits.isdigit() or (len(digits) > 1 and digits[0] == "0"):
        return None
    if decimal_mark and not fraction.isdigit():
        return None
    try:
        return Decimal(f"{digits}.{fraction}" if fraction else digits)
    except InvalidOperation:  # pragma: no cover - the checks above leave only digits
        return None


def _grouped(groups: Sequence[str]) -> bool:
    """Thousands groups: 1-3 digits, then threes; or the Indian lakh: 1-2, twos, a final three."""
    first, rest = groups[0], groups[1:]
    if 1 <= len(first) <= 3 and all(len(g) == 3 for g in rest):
        return True
    return 1 <= len(first) <= 2 and len(rest[-1]) == 3 and all(len(g) == 2 for g in rest[:-1])


def _plain(number: Decimal) -> str:
    return f"{number:f}"


# Digits with the separators numbers are written with; a space only between a digit and a group
# of exactly three (1 249,00), so "2 apples 3" are two numbers.
_NUMBER_IN_TEXT = re.compile(r"[0-9](?:[0-9,.'\u2019]|(?<=[0-9]) (?=[0-9]{3}(?![0-9])))*")


def numbers_in(text: str) -> set[Decimal]:
    """Every number `text` writes, without its sign, in every reading the rule allows (an
    ambiguous 1.234 gives 1.234 and 1234; "2 500" gives 2500, 2 and 500)."""
    found: set[Decimal] = set()
    text = unicodedata.normalize("NFKC", text)
    for token in _NUMBER_IN_TEXT.findall(text):
        token = token.strip(",.'\u2019")
        parts = [token, *token.split(" ")] if " " in token else [token]
        for part in parts:
            reading = _number_token(part) if part else None
            if isinstance(reading, tuple):
                found.update(reading)
            elif reading is not None:
                found.add(reading)
    return found


# --- dates -------------------------------------------------------------------------------------


class AmbiguousDate(ValueError):
    """A numeric date that reads as two real dates (03/04/2025), with `dayfirst` unset."""

    def __init__(self, text: str, readings: tuple[date, date]) -> None:
        first, second = readings
        self.text = text
        self.readings = readings
        self.brief = (
            f"{text!r} is ambiguous: {_long(first)} (day first) or {_long(second)} (month first)"
        )
        super().__init__(
            f"{self.brief}; pass dayfirst=True or dayfirst=False if every document uses one order"
        )


_MONTH_NAMES = (
    "jan january|feb february|mar march|apr april|may|jun june|jul july|aug august"
    "|sep sept september|oct october|nov november|dec december"
)
_MONTHS = {
    name: number
    for number, names in enumerate(_MONTH_NAMES.split("|"), start=1)
    for name in names.split()
}
_MONTH = r"([a-z]{3,9})\.?"
_SEP = r"[-/. ]"
_YMD = re.compile(rf"(\d{{4}}){_SEP}(\d{{1,2}}){_SEP}(\d{{1,2}})")
_NUMERIC = re.compile(rf"(\d{{1,2}}){_SEP}(\d{{1,2}}){_SEP}(\d{{4}}|\d{{2}})")
_DAY_MONTH = re.compile(rf"(\d{{1,2}}){_SEP}?{_MONTH}{_SEP}?(\d{{4}}|\d{{2}})")
_MONTH_DAY = re.compile(rf"{_MONTH}{_SEP}?(\d{{1,2}}){_SEP}+(\d{{4}})")
_WEEKDAY = re.compile(r"^(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+")
_TIME = re.compile(r"(?:[ t]\d{1,2}:\d{2}(?::\d{2})?(?:\.\d+)?\s*(?:z|[+-]\d{2}:?\d{2}|am|pm)?)$")


def _long(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


def _year(text: str) -> int:
    # Two-digit years as strptime's %y reads them: 69-99 are 1900s, 00-68 are 2000s.
    year = int(text)
    if len(text) == 2:
        year += 1900 if year >= 69 else 2000
    return year


def _real(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def read_date(
    value: object, *, dayfirst: bool | None = None, formats: Sequence[str] | None = None
) -> date | Ambiguous[date] | NotADate:
    """The date `value` is: a `date` (a `datetime`'s date), or text in ISO or a common written
    form (25/12/2018, 25-12-18, 25.12.2018, 25 Dec 2018, December 25, 2018; a weekday and a time
    are ignored). A numeric date both of whose first two numbers could be the day (03/04/2025) is
    `Ambiguous` unless `dayfirst` says which comes first; one only one reading makes real
    (25/12/2018) never is. With `formats` (strptime formats), only those are tried."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        return NotADate(text=repr(value), why=f"{value!r} is a {type(value).__name__}, not a date")
    if formats is not None:
        return _date_in_formats(value, tuple(formats))
    return _read_date_text(value, dayfirst)


def _date_in_formats(given: str, formats: tuple[str, ...]) -> date | NotADate:
    for fmt in formats:
        try:
            return datetime.strptime(given.strip(), fmt).date()
        except ValueError:
            continue
    return NotADate(text=given, why=f"{given!r} matches none of the formats {list(formats)}")


@functools.lru_cache(maxsize=1 << 14)
def _read_date_text(given: str, dayfirst: bool | None) -> date | Ambiguous[date] | NotADate:
    text = given.strip().lower().replace(",", " ")
    text = _TIME.sub("", _WEEKDAY.sub("", text)).strip()
    text = re.sub(r"(\d)(?:st|nd|rd|th)\b", r"\1", text)
    text = re.sub(r"\s+", " ", text)
    found: date | None = None
    if match := _YMD.fullmatch(text):
        found = _real(int(match[1]), int(match[2]), int(match[3]))
    elif match := _NUMERIC.fullmatch(text):
        first, second, year = int(match[1]), int(match[2]), _year(match[3])
        day_first, month_first = _real(year, second, first), _real(year, first, second)
        if day_first and month_first and day_first != month_first:
            if dayfirst is None:
                return Ambiguous(
                    text=given,
                    readings=(day_first, month_first),
                    why=f"{given!r} is ambiguous: {_long(day_first)} (day first) or "
                    f"{_long(month_first)} (month first)",
                )
            found = day_first if dayfirst else month_first
        else:
            found = day_first or month_first
    elif (match := _DAY_MONTH.fullmatch(text)) and match[2] in _MONTHS:
        found = _real(_year(match[3]), _MONTHS[match[2]], int(match[1]))
    elif (match := _MONTH_DAY.fullmatch(text)) and match[1] in _MONTHS:
        found = _real(int(match[3]), _MONTHS[match[1]], int(match[2]))
    else:
        return NotADate(text=given, why=f"{given!r} is not a date in a form handrail reads")
    if found is None:
        return NotADate(text=given, why=f"{given!r} is not a real date")
    return found


def parse_date(
    text: str, *, dayfirst: bool | None = None, formats: Sequence[str] | None = None
) -> date:
    """`read_date` for text, raising: the date, or `ValueError` saying why not
    (`AmbiguousDate`, a `ValueError`, for 03/04/2025 with `dayfirst=None`)."""
    found = read_date(text, dayfirst=dayfirst, formats=formats)
    if isinstance(found, Ambiguous):
        raise AmbiguousDate(found.text, found.readings)
    if isinstance(found, NotADate):
        raise ValueError(found.why)
    return found
