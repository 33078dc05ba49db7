"""Ready-made checks: factories for the rules intake pipelines keep writing (DESIGN §4, checks).

    Extract("invoice", Invoice, checks=[
        sums_to("total", "lines", plus="tax"),
        date_parses("invoice_date"),
        not_before("due_date", "invoice_date"),
        appears_in_document("vendor", "invoice_number", "total"),
    ])

What every factory here shares:
- Fields are named as in the output's schema; `a.b` reaches into a nested model or mapping.
- A field whose value is None (or an empty string) passes: the output claims nothing there, and
  whether a field may be empty is the schema's and the gate's business, not a check's.
- A field the output does not have fails, saying so: it is a mistake in the pipeline.
- The `CheckResult` names the fields the check judged (on a failure, the ones it found wanting),
  and a failure caps their confidence at `cap` (0.5 by default, under any sensible accept
  threshold, so the gate sends them to review even with `on_fail="warn"`; `cap=None` leaves
  confidence alone). A pass never raises confidence. `on_fail` defaults to `"review"`.
- Messages name the field and the values, e.g. "total 459.00 is not subtotal 412.50 + tax 82.50
  = 495.00 (off by 36.00)".

Numbers and dates are read by `handrail.core.values` (`read_number`, `read_date`), the one
reader the eval scorers use too; docs/values.md states the rule. A value that is not a number
fails the check naming the field ("`total` 'about forty' is not a number"), and so does an
ambiguous one ("`total` '1.234' is ambiguous: 1.234 (decimal point) or 1234 (thousands
separator)"): a person decides, the check does not guess. "1,234" is 1234.

Dates: `parse_date` reads ISO dates and the common written forms (25/12/2018, 25-12-18,
25.12.2018, 25 Dec 2018, December 25, 2018). A numeric date whose first two numbers could each be
the day (03/04/2025: 3 April or March 4) is ambiguous: with `dayfirst=None`, the default, it does
not parse and the check fails, because a pipeline reading documents from more than one country
cannot know which was meant and a wrong due date is worse than a question. Pass `dayfirst=True`
(day/month/year, as in the UK and most of Europe) or `dayfirst=False` (month/day/year, as in the
US) when every document follows one convention. A date only one reading makes real (25/12/2018)
is never ambiguous.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from handrail.core.nodes import Check, OnFail
from handrail.core.records import CheckResult
from handrail.core.state import Document, State
from handrail.core.values import (
    Ambiguous,
    AmbiguousDate,
    NotADate,
    numbers_in,
    parse_date,
    read_date,
    read_number,
)

DEFAULT_CAP = 0.5
"""The confidence a failed ready-made check leaves its fields, unless told otherwise."""

__all__ = [
    "DEFAULT_CAP",
    "AmbiguousDate",
    "appears_in_document",
    "date_parses",
    "in_range",
    "line_amounts",
    "not_before",
    "parse_date",
    "sums_to",
]


# --- reading fields ----------------------------------------------------------------------------


class _MissingField(Exception):
    pass


def _get(output: Any, path: str) -> Any:
    """The value at `path` (`a.b` for nested), or `_MissingField` naming what is not there."""
    value = output
    for part in path.split("."):
        if isinstance(value, BaseModel):
            if part not in type(value).model_fields:
                raise _MissingField(path)
            value = getattr(value, part)
        elif isinstance(value, dict):
            if part not in value:
                raise _MissingField(path)
            value = value[part]
        elif hasattr(value, part):
            value = getattr(value, part)
        else:
            raise _MissingField(path)
    return value


def _top(path: str) -> str:
    """The output field a path belongs to (what a cap lowers)."""
    return path.split(".", 1)[0]


def _check(
    fn: Callable[[Any, State], CheckResult], name: str, on_fail: OnFail, cap: float | None
) -> Check:
    def guarded(output: Any, state: State) -> CheckResult:
        try:
            return fn(output, state)
        except _MissingField as e:
            return CheckResult(
                passed=False,
                message=f"the output has no field `{e}`; check the field names given to `{name}`",
                fields=(_top(str(e)),),
            )
        except _Unreadable as e:
            return CheckResult(passed=False, message=str(e), fields=(e.field,))

    guarded.__name__ = name
    guarded.__doc__ = fn.__doc__
    return Check(guarded, on_fail=on_fail, name=name, cap=cap)


def _fields(*paths: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_top(p) for p in paths))


# --- numbers -----------------------------------------------------------------------------------


class _Unreadable(Exception):
    """A value the check cannot read as a number; the message says which and why, for a
    person. `field` is the output field it belongs to (whose confidence the failure caps)."""

    def __init__(self, label: str, why: str, field: str) -> None:
        super().__init__(f"{label} {why}")
        self.field = field


def _money(value: Decimal) -> str:
    return f"{value:,.2f}"


def _plain(value: Decimal) -> str:
    return f"{value.normalize():f}"


# --- appears_in_document -----------------------------------------------------------------------


def _normal_text(text: str) -> str:
    """Casefolded, punctuation and currency signs as spaces, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    kept = (c if c.isalnum() else " " for c in text)
    return " " + " ".join("".join(kept).split()) + " "


def appears_in_document(
    *fields: str,
    normalize: bool = True,
    on_fail: OnFail = "review",
    cap: float | None = DEFAULT_CAP,
    name: str | None = None,
) -> Check:
    """Each field's value (text or a number) appears in the document's text.

    With `normalize` (the default), text is compared ignoring case, punctuation, currency signs
    and spacing, as whole words ("Harbour & Finch Ltd." matches "HARBOUR & FINCH LTD"); numbers
    are compared as numbers, ignoring their sign and how they are written (1234.5 matches
    "£1,234.50", "1.234,50 €" and "1 234,50"). Without it, `str(value)` must appear as is.
    A value the model made up is the commonest failure of a small model; this catches it.

    For a document with pages (a PDF, a scan, an e-mail's attachments) a pass says where each
    value is: `details["pages"]` maps each field to the numbers of the pages it was found on
    (`{"total": [2]}`; empty when it is only in text without pages, an e-mail's body), and the
    message names them ("`total` on page 2; `vendor` on pages 1, 2"). A failure on a document
    with unread pages (image-only pages left without OCR) says which pages had no text.
    """
    if not fields:
        raise ValueError("appears_in_document needs at least one field name, e.g. ('total',)")
    check_name = name or f"{'_'.join(_fields(*fields))}_in_document"

    def in_document(output: Any, state: State) -> CheckResult:
        text = state.text
        plain = _normal_text(text) if normalize else text
        numbers = {abs(n) for n in numbers_in(text)} if normalize else set()
        missing: dict[str, Any] = {}
        found: dict[str, Any] = {}
        judged: list[str] = []
        for path in fields:
            value = _get(output, path)
            if value is None or value == "":
                continue
            if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
                raise TypeError(
                    f"`{path}` is a {type(value).__name__}; {check_name} compares text and numbers"
                )
            judged.append(path)
            if _appears(value, plain, numbers, normalize):
                found[path] = value
            else:
                missing[path] = value
        if missing:
            listed = ", ".join(f"`{path}` {value!r}" for path, value in missing.items())
            return CheckResult(
                passed=False,
                message=f"{listed} not found in the document{_unread(state.document)}",
                fields=_fields(*missing),
            )
        if not state.document.pages:
            return CheckResult(passed=True, fields=_fields(*judged))
        where = _where(state.document, found, normalize)
        return CheckResult(
            passed=True,
            message="; ".join(f"`{path}` {_said(places)}" for path, places in where.items()),
            details={
                "pages": {path: [p.number for p in ps if p.number] for path, ps in where.items()}
            },
            fields=_fields(*judged),
        )

    return _check(in_document, check_name, on_fail, cap)


def _appears(value: Any, text: str, numbers: set[Decimal], normalize: bool) -> bool:
    """`numbers`: the document's numbers without their sign."""
    if not normalize:
        return str(value) in text
    number = read_number(value)
    readings = number.readings if isinstance(number, Ambiguous) else (number,)
    if any(isinstance(n, Decimal) and abs(n) in numbers for n in readings):
        return True
    if isinstance(value, str):
        wanted = _normal_text(value)
        return wanted.strip() != "" and wanted in text
    return False


@dataclass(frozen=True, slots=True)
class _Region:
    """A stretch of the document a value can be found in: a page, or a part without pages
    (an e-mail's body)."""

    number: int | None
    """The page's number (None for a part without pages)."""
    label: str
    """For the message: `page 2`, `page 3 (invoice.pdf, page 1)`, `body`."""
    start: int
    end: int


def _regions(document: Document) -> list[_Region]:
    regions = [
        _Region(
            page.number,
            f"page {page.number}" + (f" ({page.label})" if document.parts and page.label else ""),
            page.start,
            page.end,
        )
        for page in document.pages
    ]
    regions += [
        _Region(None, part.name, part.start, part.end)
        for part in document.parts
        if not part.pages and part.error is None and part.end > part.start
    ]
    return regions


def _where(document: Document, found: dict[str, Any], normalize: bool) -> dict[str, list[_Region]]:
    """Each found value's pages (and page-less parts), read region by region with the same
    rule as the whole text. A value over a page break is on neither: it is still found."""
    where: dict[str, list[_Region]] = {path: [] for path in found}
    for region in _regions(document):
        text = document.text[region.start : region.end]
        plain = _normal_text(text) if normalize else text
        numbers = {abs(n) for n in numbers_in(text)} if normalize else set()
        for path, value in found.items():
            if _appears(value, plain, numbers, normalize):
                where[path].append(region)
    return where


def _said(regions: Sequence[_Region]) -> str:
    pages = [r for r in regions if r.number is not None]
    others = [r.label for r in regions if r.number is None]
    said = []
    if len(pages) == 1:
        said.append(f"on {pages[0].label}")
    elif pages:
        if any(r.label != f"page {r.number}" for r in pages):
            said.append("on " + ", ".join(r.label for r in pages))
        else:
            said.append("on pages " + ", ".join(str(r.number) for r in pages))
    if others:
        said.append("in " + ", ".join(others))
    return " and ".join(said) if said else "across a page break"


def _unread(document: Document) -> str:
    """`; pages 3, 4 have no text (...)` when pages were left unread, else nothing."""
    unread = [str(page.number) for page in document.pages if page.text_from == "none"]
    if not unread:
        return ""
    which = f"page {unread[0]} has" if len(unread) == 1 else f"pages {', '.join(unread)} have"
    return f"; {which} no text (images not read by OCR: see the document's warnings)"


# --- dates -------------------------------------------------------------------------------------


def _read_date(
    value: Any, dayfirst: bool | None, formats: Sequence[str] | None
) -> date | Ambiguous[date] | NotADate:
    return read_date(value, dayfirst=dayfirst, formats=formats)


def _long(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


def date_parses(
    field: str,
    *,
    dayfirst: bool | None = None,
    formats: Sequence[str] | None = None,
    on_fail: OnFail = "review",
    cap: float | None = DEFAULT_CAP,
    name: str | None = None,
) -> Check:
    """The field is a real date: a `date`, or text `parse_date` reads (see the module docs for
    the forms, and for why an ambiguous 03/04/2025 fails unless `dayfirst` is given)."""
    check_name = name or f"{_top(field)}_parses"
    fields = _fields(field)

    def parses(output: Any, state: State) -> CheckResult:
        value = _get(output, field)
        if value is None or value == "":
            return CheckResult(passed=True, fields=fields)
        found = _read_date(value, dayfirst, formats)
        if not isinstance(found, date):
            # A reviewer reads this: the readings, not the `dayfirst` advice for developers.
            return CheckResult(passed=False, message=f"`{field}` {found.why}", fields=fields)
        return CheckResult(passed=True, details={"date": found.isoformat()}, fields=fields)

    return _check(parses, check_name, on_fail, cap)


def not_before(
    later: str,
    earlier: str,
    *,
    dayfirst: bool | None = None,
    formats: Sequence[str] | None = None,
    on_fail: OnFail = "review",
    cap: float | None = DEFAULT_CAP,
    name: str | None = None,
) -> Check:
    """The date in `later` is on or after the date in `earlier` (a due date not before the
    invoice date). Passes when either is empty or does not parse: that is `date_parses`'s to
    report, once."""
    check_name = name or f"{_top(later)}_not_before_{_top(earlier)}"
    fields = _fields(later, earlier)

    def in_order(output: Any, state: State) -> CheckResult:
        values = _get(output, later), _get(output, earlier)
        if any(v is None or v == "" for v in values):
            return CheckResult(passed=True, fields=fields)
        end, start = (_read_date(v, dayfirst, formats) for v in values)
        if not isinstance(end, date) or not isinstance(start, date):
            return CheckResult(passed=True, message="a date does not parse; not compared")
        if end < start:
            return CheckResult(
                passed=False,
                message=f"`{later}` {_long(end)} is before `{earlier}` {_long(start)}",
                fields=fields,
            )
        return CheckResult(passed=True, fields=fields)

    return _check(in_order, check_name, on_fail, cap)


# --- arithmetic --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Amount:
    value: Decimal | None
    label: str


def _number(value: Any, label: str, field: str) -> _Amount:
    """`value` read as a number (`handrail.core.values.read_number`), or `_Unreadable` saying
    why not: not a number, or ambiguous (1.234: a decimal point or a thousands separator)."""
    if value is None or value == "":
        return _Amount(None, label)
    number = read_number(value)
    if not isinstance(number, Decimal):
        raise _Unreadable(label, number.why, _top(field))
    return _Amount(number, label)


def _line_amounts(lines: Any, lines_field: str, amount: str) -> list[_Amount]:
    if not isinstance(lines, list | tuple):
        return [_number(lines, f"`{lines_field}`", lines_field)]
    found = []
    for index, line in enumerate(lines, start=1):
        label = f"line {index}"
        if isinstance(line, int | float | Decimal | str) and not isinstance(line, bool):
            found.append(_number(line, f"`{lines_field}` {label}", lines_field))
        else:
            found.append(_number(_get(line, amount), f"{label} `{amount}`", lines_field))
    return found


def sums_to(
    total_field: str,
    lines_field: str,
    *,
    amount: str = "amount",
    plus: str | Sequence[str] = (),
    tolerance: float = 0.01,
    on_fail: OnFail = "review",
    cap: float | None = DEFAULT_CAP,
    name: str | None = None,
) -> Check:
    """`total_field` equals the sum of `lines_field` plus the `plus` fields, within `tolerance`.

    `lines_field` is a list of line items (each with an `amount`, or numbers), or a single
    number such as a subtotal: `sums_to("total", "subtotal", plus="tax")`. An empty `plus` field
    counts as 0 (a receipt without tax); a line without an amount fails, since the sum cannot be
    checked. Passes when the total or the lines are empty: nothing is claimed.
    """
    extras = (plus,) if isinstance(plus, str) else tuple(plus)
    check_name = name or f"{_top(total_field)}_adds_up"
    allowed = Decimal(repr(float(tolerance)))
    fields = _fields(total_field, lines_field, *extras)

    def adds_up(output: Any, state: State) -> CheckResult:
        total = _number(_get(output, total_field), f"`{total_field}`", total_field).value
        lines = _get(output, lines_field)
        if total is None or lines is None:
            return CheckResult(passed=True, message="nothing to add up", fields=fields)
        parts = _line_amounts(lines, lines_field, amount)
        blank = [p.label for p in parts if p.value is None]
        if blank:
            return CheckResult(
                passed=False,
                message=f"{', '.join(blank)} of `{lines_field}` has no amount: cannot check "
                f"`{total_field}` {_money(total)}",
                fields=fields,
            )
        lines_sum = sum((p.value for p in parts if p.value is not None), Decimal(0))
        extra = [_number(_get(output, f), f"`{f}`", f) for f in extras]
        expected = lines_sum + sum((e.value or Decimal(0) for e in extra), Decimal(0))
        if abs(total - expected) <= allowed:
            return CheckResult(passed=True, fields=fields)
        if isinstance(lines, list | tuple):
            terms = [f"the {len(parts)} lines of `{lines_field}` ({_money(lines_sum)})"]
        else:
            terms = [f"`{lines_field}` {_money(lines_sum)}"]
        terms += [f"{e.label} {_money(e.value or Decimal(0))}" for e in extra]
        return CheckResult(
            passed=False,
            message=f"`{total_field}` {_money(total)} is not {' + '.join(terms)} = "
            f"{_money(expected)} (off by {_money(abs(total - expected))})",
            details={"total": str(total), "expected": str(expected)},
            fields=fields,
        )

    return _check(adds_up, check_name, on_fail, cap)


def line_amounts(
    lines_field: str,
    *,
    quantity: str = "quantity",
    unit_price: str = "unit_price",
    amount: str = "amount",
    tolerance: float = 0.01,
    on_fail: OnFail = "review",
    cap: float | None = DEFAULT_CAP,
    name: str | None = None,
) -> Check:
    """Each line's `amount` is its `quantity` times its `unit_price`, within `tolerance`.
    A line missing any of the three is not judged."""
    check_name = name or f"{_top(lines_field)}_multiply_out"
    allowed = Decimal(repr(float(tolerance)))
    fields = _fields(lines_field)

    def multiply_out(output: Any, state: State) -> CheckResult:
        lines = _get(output, lines_field)
        if not lines:
            return CheckResult(passed=True, fields=fields)
        wrong = []
        for index, line in enumerate(lines, start=1):
            label = f"line {index}"
            qty = _number(_get(line, quantity), f"{label} `{quantity}`", lines_field).value
            price = _number(_get(line, unit_price), f"{label} `{unit_price}`", lines_field).value
            given = _number(_get(line, amount), f"{label} `{amount}`", lines_field).value
            if qty is None or price is None or given is None:
                continue
            if abs(qty * price - given) > allowed:
                wrong.append(
                    f"{label}: {_plain(qty)} x {_money(price)} = {_money(qty * price)}, "
                    f"not {_money(given)}"
                )
        if wrong:
            return CheckResult(
                passed=False,
                message=f"`{lines_field}` {'; '.join(wrong)}",
                fields=fields,
            )
        return CheckResult(passed=True, fields=fields)

    return _check(multiply_out, check_name, on_fail, cap)


def in_range(
    field: str,
    *,
    min: float | None = None,
    max: float | None = None,
    on_fail: OnFail = "review",
    cap: float | None = DEFAULT_CAP,
    name: str | None = None,
) -> Check:
    """The number in `field` lies within `min` and `max` (inclusive; either may be omitted)."""
    if min is None and max is None:
        raise ValueError(f"in_range({field!r}) needs min=, max= or both")
    if min is not None and max is not None and min > max:
        raise ValueError(f"in_range({field!r}): min={min} is above max={max}")
    low = None if min is None else Decimal(repr(float(min)))
    high = None if max is None else Decimal(repr(float(max)))
    check_name = name or f"{_top(field)}_in_range"
    fields = _fields(field)

    def within(output: Any, state: State) -> CheckResult:
        value = _number(_get(output, field), f"`{field}`", field).value
        if value is None:
            return CheckResult(passed=True, fields=fields)
        if low is not None and value < low:
            return CheckResult(
                passed=False,
                message=f"`{field}` {_plain(value)} is below {_plain(low)}",
                fields=fields,
            )
        if high is not None and value > high:
            return CheckResult(
                passed=False,
                message=f"`{field}` {_plain(value)} is above {_plain(high)}",
                fields=fields,
            )
        return CheckResult(passed=True, fields=fields)

    return _check(within, check_name, on_fail, cap)
