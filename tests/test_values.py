"""One reader of numbers and dates (`handrail.core.values`): a hand-checked table of inputs and
what they mean, the checks reading them the same way (`sums_to("1,234")` is 1234), and the eval
scorers agreeing with the checks on every row."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

from handrail import Document, State, in_range, sums_to
from handrail.core.values import (
    Ambiguous,
    NotADate,
    NotANumber,
    numbers_in,
    read_date,
    read_number,
)
from handrail.evals.scorers import field_match, normalise

NOT = None
"""Not a number."""


def amb(decimal: str, grouped: str) -> tuple[str, str]:
    return (decimal, grouped)


# (text, what it means): a number as text, `amb(decimal reading, thousands reading)`, or NOT.
# Each row checked by hand against docs/values.md.
NUMBERS: list[tuple[str, Any]] = [
    # plain
    ("42", "42"),
    ("0", "0"),
    ("0.50", "0.50"),
    ("-12.5", "-12.5"),
    ("+5", "5"),
    ("\u221212", "-12"),  # the minus sign
    # both marks: the last is the decimal mark
    ("1,234.50", "1234.50"),
    ("1.234,50", "1234.50"),
    ("1.234.567,89", "1234567.89"),
    ("1,234,567.89", "1234567.89"),
    ("1,234.567.89", NOT),  # the decimal mark twice
    # one mark, more than once: thousands
    ("1,234,567", "1234567"),
    ("1.234.567", "1234567"),
    ("1,234,56", NOT),  # a group of two
    # one mark, once
    ("12,50", "12.50"),
    ("1.5", "1.5"),
    ("1,2345", "1.2345"),
    ("0,125", "0.125"),  # a thousands group cannot follow a lone 0
    ("0.125", "0.125"),
    ("1234,567", "1234.567"),  # four digits before: not a thousands group
    ("1234.567", "1234.567"),
    ("1,234", "1234"),  # the rule: a lone comma before three digits groups thousands
    ("12,500", "12500"),
    ("1.234", amb("1.234", "1234")),  # a point before three digits: both are common
    ("12.500", amb("12.500", "12500")),
    ("-1.234", amb("-1.234", "-1234")),
    # spaces and apostrophes group
    ("1 234", "1234"),
    ("1 234,50", "1234.50"),
    ("1\u00a0234,50", "1234.50"),  # no-break space
    ("1\u202f234.50", "1234.50"),  # narrow no-break space
    ("1 234,567", "1234.567"),  # grouped by spaces, so the comma is the decimal mark
    ("1'234.50", "1234.50"),
    ("12 34", NOT),
    # the Indian lakh
    ("1,23,456.50", "123456.50"),
    ("1,2,345", NOT),
    # currencies, signs, parentheses
    ("€ 1 234", "1234"),
    ("€1.234", amb("1.234", "1234")),
    ("$1,234.50", "1234.50"),
    ("1.234,50 EUR", "1234.50"),
    ("1 234,50 €", "1234.50"),
    ("£1.012,50", "1012.50"),
    ("USD 1,234.00", "1234.00"),
    ("$12.00 USD", "12.00"),
    ("US$ 5", "5"),
    ("RM 12.00", "12.00"),
    ("rm12.00", "12.00"),
    ("-£3.10", "-3.10"),
    ("£-3.10", "-3.10"),
    ("(12.50)", "-12.50"),
    ("12.50-", "-12.50"),
    ("12.50 CR", "-12.50"),
    ("--5", NOT),
    ("(-5)", NOT),
    # not numbers
    ("00123", NOT),  # a leading zero: an identifier
    ("eur 12", NOT),  # a currency code is written in capitals
    ("12 apples", NOT),
    ("12%", NOT),
    ("1e5", NOT),
    ("12.", NOT),
    ("about forty", NOT),
    ("NaN", NOT),
]


def _expected(meaning: Any) -> Any:
    if meaning is NOT:
        return NOT
    if isinstance(meaning, tuple):
        return tuple(Decimal(m) for m in meaning)
    return Decimal(meaning)


@pytest.mark.parametrize(("text", "meaning"), NUMBERS)
def test_read_number_table(text: str, meaning: Any) -> None:
    found = read_number(text)
    want = _expected(meaning)
    if want is NOT:
        assert isinstance(found, NotANumber), found
        assert found.text == text and text in found.why
    elif isinstance(want, tuple):
        assert isinstance(found, Ambiguous), found
        assert found.readings == want
        assert found.why == (
            f"{text!r} is ambiguous: {want[0]} (decimal point) or {want[1]} (thousands separator)"
        )
    else:
        assert found == want and isinstance(found, Decimal), found


@pytest.mark.parametrize(
    ("value", "meaning"),
    [
        (3, "3"),
        (1234.5, "1234.5"),
        (0.1, "0.1"),  # its shortest repr, not the binary expansion
        (Decimal("7.10"), "7.10"),
    ],
)
def test_numbers_that_are_not_text(value: Any, meaning: str) -> None:
    assert read_number(value) == Decimal(meaning)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (True, "True is a bool, not a number"),
        (float("nan"), "nan is not a finite number"),
        (float("inf"), "inf is not a finite number"),
        (Decimal("NaN"), "'NaN' is not a finite number"),
        ([1], "[1] is a list, not a number"),
        (None, "None is a NoneType, not a number"),
    ],
)
def test_values_that_are_not_numbers_say_why(value: Any, why: str) -> None:
    found = read_number(value)
    assert isinstance(found, NotANumber) and found.why == why


def test_numbers_in_a_document_in_every_reading() -> None:
    text = "Total 1 390,50 (was £1.012,50); 1.234 kg; 2 500 ml; ref 00123"
    found = numbers_in(text)
    assert {Decimal("1390.50"), Decimal("1012.50"), Decimal("2500")} <= found
    assert {Decimal("1.234"), Decimal("1234")} <= found  # ambiguous: both
    assert {Decimal("2"), Decimal("500")} <= found  # "2 500" may be two numbers
    assert Decimal("123") not in found  # an identifier


# --- dates -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "dayfirst", "meaning"),
    [
        ("2018-12-25", None, date(2018, 12, 25)),
        ("25/12/2018", None, date(2018, 12, 25)),  # only one reading is a real date
        ("12/25/2018", None, date(2018, 12, 25)),
        ("25.12.18", None, date(2018, 12, 25)),
        ("Tue, 25 December 2018", None, date(2018, 12, 25)),
        ("December 25, 2018 10:30", None, date(2018, 12, 25)),
        ("04/04/2025", None, date(2025, 4, 4)),  # the same either way
        ("03/04/2025", True, date(2025, 4, 3)),
        ("03/04/2025", False, date(2025, 3, 4)),
        (datetime(2025, 1, 2, 9, 30), None, date(2025, 1, 2)),
        (date(2025, 1, 2), None, date(2025, 1, 2)),
    ],
)
def test_read_date(value: Any, dayfirst: bool | None, meaning: date) -> None:
    assert read_date(value, dayfirst=dayfirst) == meaning


def test_a_date_with_two_readings_is_ambiguous_unless_told() -> None:
    found = read_date("03/04/2025")
    assert isinstance(found, Ambiguous)
    assert found.readings == (date(2025, 4, 3), date(2025, 3, 4))
    assert found.why == (
        "'03/04/2025' is ambiguous: 3 April 2025 (day first) or 4 March 2025 (month first)"
    )


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("31/02/2025", "'31/02/2025' is not a real date"),
        ("next Tuesday", "'next Tuesday' is not a date in a form handrail reads"),
        (20250102, "20250102 is a int, not a date"),
    ],
)
def test_what_is_not_a_date_says_why(value: Any, why: str) -> None:
    found = read_date(value)
    assert isinstance(found, NotADate) and found.why == why


# --- the checks read the same way --------------------------------------------------------------


def _judge(check: Any, output: Any) -> Any:
    return check.evaluate(output, State(Document(text="", id="doc")))


def test_sums_to_reads_1_234_as_a_thousand_and_more() -> None:
    # Used to fail as "`total` is '1,234', not a number" while the scorer read 1234.
    result = _judge(sums_to("total", "lines"), {"total": "1,234", "lines": [1000, 234]})
    assert result.passed, result.message


def test_an_ambiguous_amount_is_reported_as_ambiguous_not_as_not_a_number() -> None:
    result = _judge(sums_to("total", "lines"), {"total": "1.234", "lines": [1000, 234]})
    assert not result.passed
    assert result.message == (
        "`total` '1.234' is ambiguous: 1.234 (decimal point) or 1234 (thousands separator)"
    )
    assert result.fields == ("total",)


def test_text_that_is_not_a_number_fails_the_check_naming_the_field() -> None:
    result = _judge(in_range("tax", min=0), {"tax": "about forty"})
    assert not result.passed
    assert result.message == "`tax` 'about forty' is not a number"
    assert result.fields == ("tax",)


@pytest.mark.parametrize(("text", "meaning"), NUMBERS)
def test_the_checks_read_every_row_of_the_table_alike(text: str, meaning: Any) -> None:
    want = _expected(meaning)
    result = _judge(in_range("x", min=-(10**9), max=10**9), {"x": text})
    if isinstance(want, Decimal):
        assert result.passed, result.message
        exact = _judge(in_range("x", min=float(want), max=float(want)), {"x": text})
        assert exact.passed, exact.message
    elif want is NOT:
        assert result.message == f"`x` {text!r} is not a number" or "sign is unclear" in str(
            result.message
        )
    else:
        assert result.message == f"`x` {read_number(text)}"
        assert "ambiguous" in str(result.message)


# --- the scorers agree with the checks ---------------------------------------------------------


_CANONICAL_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]*[1-9])?")
"""How the scorer writes a number it read (1234.5, -3, 0)."""


@pytest.mark.parametrize(("text", "meaning"), NUMBERS)
def test_the_scorer_agrees_with_the_check_on_every_row(text: str, meaning: Any) -> None:
    want = _expected(meaning)
    got = normalise(text)
    if isinstance(want, Decimal):
        # A number the check reads is the same number to the scorer.
        assert got == normalise(want) and field_match(want, text), (text, got)
    elif isinstance(want, tuple):
        # Ambiguous: the scorer compares the text as written and credits no reading it does
        # not spell ("1.234" is never 1234).
        assert got == " ".join(unicodedata.normalize("NFKC", text).split()).casefold()
        assert not field_match(want[1], text)
    else:
        # Not a number to the check: never a number to the scorer.
        assert got is not None and not _CANONICAL_NUMBER.fullmatch(got), (text, got)
