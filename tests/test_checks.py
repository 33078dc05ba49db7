"""The ready-made checks in `handrail.checks`, on hand-checked cases: passing, failing, missing
fields, empty values, number formats and ambiguous dates; and one run through the gate."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

from handrail import (
    Check,
    CheckResult,
    Confidence,
    Document,
    Extract,
    FakeModel,
    PipelineBuilder,
    Reply,
    Runner,
    RunStatus,
    State,
    appears_in_document,
    date_parses,
    in_range,
    line_amounts,
    not_before,
    sums_to,
)
from handrail.checks import AmbiguousDate, parse_date
from handrail.core.pages import Part, Word
from handrail.core.values import numbers_in
from handrail.documents import Builder, PageContent


class Line(BaseModel):
    description: str
    quantity: float | None = None
    unit_price: float | None = None
    amount: float | None = None


class Invoice(BaseModel):
    vendor: str | None = None
    number: str | None = None
    issued: str | None = None
    due: str | None = None
    lines: list[Line] | None = None
    subtotal: float | None = None
    tax: float | None = None
    total: float | None = None


DOCUMENT = """\
NORTHGATE OFFICE SUPPLIES LTD.
Unit 4, Ferry Lane Trading Estate, Bristol BS2 0XR
VAT reg. no. GB 284 6613 09

Invoice no: NOS-4471            Invoice date: 3 March 2025

2 x Ergonomic mesh chair            £189.00      £378.00
1 x Whiteboard 120x90               £1,012.50    £1.012,50
Subtotal                                        1 390,50
VAT 20%                                           £278.10
TOTAL DUE                                     GBP 1,668.60
"""


def judge(check: Check, output: Any, text: str = DOCUMENT) -> CheckResult:
    return check.evaluate(output, State(Document(text=text, id="doc")))


def invoice(**values: Any) -> Invoice:
    return Invoice(**values)


# --- appears_in_document -----------------------------------------------------------------------


def test_text_is_found_whatever_its_case_punctuation_and_spacing() -> None:
    check = appears_in_document("vendor", "number")
    result = judge(check, invoice(vendor="Northgate  Office Supplies Ltd", number="nos-4471"))
    assert (result.passed, result.fields) == (True, ("vendor", "number"))
    assert check.name == "vendor_number_in_document"
    assert (check.on_fail, check.cap) == ("review", 0.5)


def test_text_must_appear_as_whole_words() -> None:
    result = judge(appears_in_document("vendor"), invoice(vendor="Northgate Office"))
    assert result.passed  # a prefix of the name, but whole words
    result = judge(appears_in_document("vendor"), invoice(vendor="Northgate Off"))
    assert not result.passed


@pytest.mark.parametrize(
    "total",
    [1668.6, 1668.60, "1,668.60", "£1,668.60", 1390.5, 1012.5, 378, -1668.6],
)
def test_numbers_are_matched_as_numbers(total: Any) -> None:
    # 1390.5 is written "1 390,50", 1012.5 both "£1,012.50" and "£1.012,50"; the sign is ignored
    # (a credit note says "credit", not "-").
    result = judge(appears_in_document("total"), {"total": total})
    assert result.passed, result.message


@pytest.mark.parametrize("total", [1668.0, 166.86, 1669.6, "1,668.06"])
def test_a_number_not_in_the_document_fails_and_names_field_and_value(total: Any) -> None:
    result = judge(appears_in_document("vendor", "total"), {"vendor": None, "total": total})
    assert not result.passed
    assert result.message == f"`total` {total!r} not found in the document"
    assert result.fields == ("total",)


def test_only_the_fields_not_found_are_named() -> None:
    output = invoice(vendor="Southgate Supplies", number="NOS-4471", total=99.0)
    result = judge(appears_in_document("vendor", "number", "total"), output)
    assert result.message == (
        "`vendor` 'Southgate Supplies', `total` 99.0 not found in the document"
    )
    assert result.fields == ("vendor", "total")


def test_empty_values_claim_nothing_and_pass() -> None:
    result = judge(appears_in_document("vendor", "total"), invoice(vendor="", total=None))
    assert result.passed and result.fields == ()


def test_without_normalize_the_value_must_appear_as_written() -> None:
    check = appears_in_document("number", normalize=False)
    assert judge(check, invoice(number="NOS-4471")).passed
    assert not judge(check, invoice(number="nos-4471")).passed
    assert not judge(appears_in_document("total", normalize=False), {"total": 1668.6}).passed


def test_a_field_the_output_lacks_is_a_pipeline_mistake() -> None:
    result = judge(appears_in_document("vendor_name"), invoice(vendor="Northgate"))
    assert not result.passed
    assert result.message == (
        "the output has no field `vendor_name`; check the field names given to "
        "`vendor_name_in_document`"
    )


def test_nested_fields_and_mappings() -> None:
    output = {"supplier": {"name": "Northgate Office Supplies"}, "total": "GBP 1,668.60"}
    result = judge(appears_in_document("supplier.name", "total"), output)
    assert result.passed and result.fields == ("supplier", "total")


def test_a_list_value_is_refused() -> None:
    with pytest.raises(TypeError, match="`lines` is a list"):
        judge(appears_in_document("lines"), {"lines": ["chair"]})


def paged(*pages: str, unread: int = 0) -> Document:
    """A PDF-like document with these pages' texts (and `unread` image-only pages after)."""
    builder = Builder()
    for text in pages:
        builder.page(PageContent(text=text, words=_words(text), width=612, height=792))
    for _ in range(unread):
        builder.page(PageContent(text="", width=612, height=792, text_from="none"))
    return builder.build(id="a.pdf", source="a.pdf", media_type="application/pdf")


def _words(text: str) -> tuple[Word, ...]:
    found = [(m.group(), m.start()) for m in re.finditer(r"\S+", text)]
    return tuple(
        Word(text=w, box=(10.0 * i, 20.0, 10.0 * i + 8, 30.0), start=at)
        for i, (w, at) in enumerate(found)
    )


def judge_document(check: Check, output: Any, document: Document) -> CheckResult:
    return check.evaluate(output, State(document))


def test_on_a_paged_document_a_pass_says_on_which_pages_each_value_is() -> None:
    document = paged(
        "NORTHGATE OFFICE SUPPLIES LTD.\nInvoice no: NOS-4471",
        "Subtotal 1 390,50\nTOTAL DUE GBP 1,668.60\nNorthgate Office Supplies Ltd",
    )
    output = invoice(vendor="Northgate Office Supplies Ltd", number="NOS-4471", total=1668.6)
    result = judge_document(appears_in_document("vendor", "number", "total"), output, document)
    assert result.passed
    assert result.details == {"pages": {"vendor": [1, 2], "number": [1], "total": [2]}}
    assert result.message == "`vendor` on pages 1, 2; `number` on page 1; `total` on page 2"


def test_a_plain_text_document_has_no_pages_to_name() -> None:
    result = judge(appears_in_document("total"), {"total": 1668.6})
    assert result.passed and result.details == {} and result.message == ""


def test_an_email_names_the_attachment_page_and_the_body() -> None:
    builder = Builder()
    start, end = builder.text("Please pay invoice NOS-4471 by Friday.")
    builder.part(Part(name="body", media_type="text/plain", start=start, end=end))
    builder.include(paged("Invoice no: NOS-4471\nTOTAL DUE 1,668.60"), name="invoice.pdf")
    document = builder.build(id="m.eml", source="m.eml", media_type="message/rfc822")
    result = judge_document(
        appears_in_document("number", "total"), {"number": "NOS-4471", "total": 1668.6}, document
    )
    assert result.details == {"pages": {"number": [1], "total": [1]}}
    assert result.message == (
        "`number` on page 1 (invoice.pdf, page 1) and in body; "
        "`total` on page 1 (invoice.pdf, page 1)"
    )


def test_a_failure_on_a_document_with_unread_pages_names_them() -> None:
    document = paged("Invoice no: NOS-4471", unread=2)
    result = judge_document(appears_in_document("total"), {"total": 1668.6}, document)
    assert not result.passed
    assert result.message == (
        "`total` 1668.6 not found in the document; pages 2, 3 have no text (images not read "
        "by OCR: see the document's warnings)"
    )
    one = judge_document(appears_in_document("total"), {"total": 5.0}, paged("x", unread=1))
    assert one.message.endswith(
        "; page 2 has no text (images not read by OCR: see the document's warnings)"
    )


def test_a_value_over_a_page_break_is_found_but_on_no_page() -> None:
    document = paged("Supplied by Northgate", "Office Supplies Ltd")
    result = judge_document(
        appears_in_document("vendor"), {"vendor": "Northgate Office Supplies"}, document
    )
    assert result.passed
    assert result.details == {"pages": {"vendor": []}}
    assert result.message == "`vendor` across a page break"


@pytest.mark.parametrize(
    ("token", "readings"),
    [
        ("1,234.50", {"1234.50"}),
        ("1.234,50", {"1234.50"}),
        ("1 234,50", {"1234.50", "1", "234.50"}),  # "1 234,50" may be two numbers
        ("1'234.5", {"1234.5"}),
        ("1,234", {"1234"}),  # a lone comma before three digits groups thousands
        ("1.234", {"1.234", "1234"}),  # a lone point before three digits: both
        ("12,50", {"12.50"}),
        ("1.234.567", {"1234567"}),
        ("42", {"42"}),
    ],
)
def test_document_numbers_in_every_reading(token: str, readings: set[str]) -> None:
    assert numbers_in(token) == {Decimal(r) for r in readings}


# --- dates -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2018-12-25",
        "2018/12/25",
        "2018-12-25T09:14:22",
        "25/12/2018",
        "25-12-18",
        "25.12.2018",
        "12/25/2018",
        "25 Dec 2018",
        "25-Dec-18",
        "25th December 2018",
        "Tue, 25 December 2018",
        "December 25, 2018",
        "Dec. 25 2018",
    ],
)
def test_common_forms_parse(text: str) -> None:
    assert parse_date(text) == date(2018, 12, 25)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("31/02/2025", "'31/02/2025' is not a real date"),
        ("2025-13-01", "'2025-13-01' is not a real date"),
        ("next Tuesday", "'next Tuesday' is not a date in a form handrail reads"),
        ("25 Dex 2018", "'25 Dex 2018' is not a date in a form handrail reads"),
    ],
)
def test_what_does_not_parse_says_why(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_date(text)
    assert str(info.value) == message


def test_an_ambiguous_date_fails_unless_told_which_comes_first() -> None:
    with pytest.raises(AmbiguousDate) as info:
        parse_date("03/04/2025")
    assert info.value.readings == (date(2025, 4, 3), date(2025, 3, 4))
    assert str(info.value) == (
        "'03/04/2025' is ambiguous: 3 April 2025 (day first) or 4 March 2025 (month first); "
        "pass dayfirst=True or dayfirst=False if every document uses one order"
    )
    assert parse_date("03/04/2025", dayfirst=True) == date(2025, 4, 3)
    assert parse_date("03/04/2025", dayfirst=False) == date(2025, 3, 4)
    # The same either way, or only one reading real: never ambiguous.
    assert parse_date("04/04/2025") == date(2025, 4, 4)
    assert parse_date("13/04/2025", dayfirst=False) == date(2025, 4, 13)


def test_explicit_formats_are_the_only_ones_tried() -> None:
    assert parse_date("20181225", formats=["%Y%m%d"]) == date(2018, 12, 25)
    with pytest.raises(ValueError, match=r"matches none of the formats \['%Y%m%d'\]"):
        parse_date("2018-12-25", formats=["%Y%m%d"])


def test_date_parses() -> None:
    check = date_parses("issued")
    assert check.name == "issued_parses"
    result = judge(check, invoice(issued="3 March 2025"))
    assert result.passed and result.details == {"date": "2025-03-03"}
    assert judge(check, invoice(issued=None)).passed
    assert judge(check, {"issued": date(2025, 3, 3)}).passed

    result = judge(check, invoice(issued="04/03/2025"))
    assert not result.passed and result.fields == ("issued",)
    assert result.message == (
        "`issued` '04/03/2025' is ambiguous: 4 March 2025 (day first) or 3 April 2025 (month first)"
    )
    assert judge(date_parses("issued", dayfirst=True), invoice(issued="04/03/2025")).passed
    result = judge(check, invoice(issued="30 February 2025"))
    assert result.message == "`issued` '30 February 2025' is not a real date"


def test_not_before() -> None:
    check = not_before("due", "issued")
    assert check.name == "due_not_before_issued"
    assert judge(check, invoice(issued="3 March 2025", due="2025-04-02")).passed
    assert judge(check, invoice(issued="3 March 2025", due="03/03/2025")).passed  # same day
    result = judge(check, invoice(issued="3 March 2025", due="2 March 2025"))
    assert not result.passed and result.fields == ("due", "issued")
    assert result.message == "`due` 2 March 2025 is before `issued` 3 March 2025"
    # Empty or unparseable: nothing to compare, and date_parses reports the bad date once.
    assert judge(check, invoice(issued="3 March 2025", due=None)).passed
    assert judge(check, invoice(issued="soon", due="2 March 2025")).passed


# --- arithmetic --------------------------------------------------------------------------------

LINES = [
    Line(description="Mesh chair", quantity=2, unit_price=189.0, amount=378.0),
    Line(description="Whiteboard", quantity=1, unit_price=1012.5, amount=1012.5),
]


def test_sums_to_lines_plus_tax() -> None:
    check = sums_to("total", "lines", plus="tax")
    assert check.name == "total_adds_up"
    right = invoice(lines=LINES, tax=278.10, total=1668.60)
    result = judge(check, right)
    assert result.passed and result.fields == ("total", "lines", "tax")

    result = judge(check, invoice(lines=LINES, tax=278.10, total=1686.60))
    assert not result.passed
    assert result.message == (
        "`total` 1,686.60 is not the 2 lines of `lines` (1,390.50) + `tax` 278.10 = 1,668.60 "
        "(off by 18.00)"
    )
    assert result.details == {"total": "1686.6", "expected": "1668.6"}


def test_sums_to_a_subtotal_and_within_the_tolerance() -> None:
    check = sums_to("total", "subtotal", plus=["tax"])
    assert judge(check, invoice(subtotal=1390.5, tax=278.1, total=1668.6)).passed
    assert judge(check, invoice(subtotal=1390.5, tax=278.1, total=1668.61)).passed  # 0.01
    result = judge(check, invoice(subtotal=1390.5, tax=278.1, total=1668.62))
    assert result.message == (
        "`total` 1,668.62 is not `subtotal` 1,390.50 + `tax` 278.10 = 1,668.60 (off by 0.02)"
    )
    assert judge(
        sums_to("total", "subtotal", tolerance=0.5), {"total": 10.4, "subtotal": 10}
    ).passed


def test_sums_to_with_empty_values() -> None:
    check = sums_to("total", "lines", plus="tax")
    # No tax on a receipt counts as 0; no total or no lines claims nothing.
    assert judge(check, invoice(lines=LINES, tax=None, total=1390.5)).passed
    assert judge(check, invoice(lines=LINES, total=None)).passed
    assert judge(check, invoice(lines=None, total=5.0)).passed
    # An empty list is a claim: no lines, so the total is the tax alone.
    result = judge(check, invoice(lines=[], tax=1.0, total=5.0))
    assert result.message == (
        "`total` 5.00 is not the 0 lines of `lines` (0.00) + `tax` 1.00 = 1.00 (off by 4.00)"
    )
    # A line without an amount makes the sum unknowable.
    blank = [LINES[0], Line(description="Delivery")]
    result = judge(check, invoice(lines=blank, total=390.0))
    assert not result.passed
    assert result.message == "line 2 `amount` of `lines` has no amount: cannot check `total` 390.00"


def test_sums_to_plain_numbers_and_negative_totals() -> None:
    check = sums_to("total", "lines")
    assert judge(check, {"total": -358.8, "lines": [-189.0, "-169.80"]}).passed
    assert judge(check, {"total": "£1,390.50", "lines": [378, 1012.5]}).passed


def test_line_amounts() -> None:
    check = line_amounts("lines")
    assert check.name == "lines_multiply_out"
    assert judge(check, invoice(lines=LINES)).passed
    wrong = [*LINES, Line(description="Pens", quantity=12, unit_price=1.25, amount=16.0)]
    result = judge(check, invoice(lines=wrong))
    assert result.message == "`lines` line 3: 12 x 1.25 = 15.00, not 16.00"
    assert result.fields == ("lines",)
    partial = [Line(description="Pens", quantity=12, amount=16.0)]  # no unit price: not judged
    assert judge(check, invoice(lines=partial)).passed


def test_in_range() -> None:
    check = in_range("tax", min=0, max=10_000)
    assert check.name == "tax_in_range"
    assert judge(check, invoice(tax=0.0)).passed
    assert judge(check, invoice(tax=None)).passed
    assert judge(check, invoice(tax=-1.5)).message == "`tax` -1.5 is below 0"
    assert judge(check, invoice(tax=10_000.01)).message == "`tax` 10000.01 is above 10000"
    with pytest.raises(ValueError, match="needs min=, max= or both"):
        in_range("tax")
    with pytest.raises(ValueError, match="min=5 is above max=1"):
        in_range("tax", min=5, max=1)


def test_a_text_where_a_number_belongs_fails_naming_the_field() -> None:
    result = judge(sums_to("total", "lines"), {"total": "about forty", "lines": [40]})
    assert (result.passed, result.message) == (False, "`total` 'about forty' is not a number")
    assert result.fields == ("total",)
    result = judge(sums_to("total", "lines"), {"total": 40, "lines": [{"amount": "forty"}]})
    assert result.message == "line 1 `amount` 'forty' is not a number"
    assert result.fields == ("lines",)


def test_sums_to_reads_amounts_as_written() -> None:
    # "1,234" is 1234 (a lone comma before three digits groups thousands), as the scorer reads it.
    check = sums_to("total", "lines", plus="tax")
    assert judge(check, {"total": "1,234", "lines": ["1.000,00", "€ 200"], "tax": "34"}).passed
    result = judge(check, {"total": "1.234", "lines": [1000, 200], "tax": 34})
    assert result.message == (
        "`total` '1.234' is ambiguous: 1.234 (decimal point) or 1234 (thousands separator)"
    )
    assert result.fields == ("total",)


def test_every_factory_takes_on_fail_cap_and_name() -> None:
    for check in [
        appears_in_document("total", on_fail="warn", cap=None, name="a"),
        date_parses("issued", on_fail="warn", cap=None, name="a"),
        not_before("due", "issued", on_fail="warn", cap=None, name="a"),
        sums_to("total", "lines", on_fail="warn", cap=None, name="a"),
        line_amounts("lines", on_fail="warn", cap=None, name="a"),
        in_range("tax", min=0, on_fail="warn", cap=None, name="a"),
    ]:
        assert (check.name, check.on_fail, check.cap) == ("a", "warn", None)


# --- through the runner ------------------------------------------------------------------------


async def test_in_a_pipeline_a_failure_caps_the_fields_it_judged() -> None:
    pipeline = (
        PipelineBuilder("invoices")
        .add(
            Extract(
                "invoice",
                Invoice,
                checks=[sums_to("total", "subtotal", plus="tax"), date_parses("issued")],
            )
        )
        .build()
    )
    output = {"issued": "3 March 2025", "subtotal": 1390.5, "tax": 278.1, "total": 1686.6}
    fields = {name: 0.9 for name in Invoice.model_fields}
    model = FakeModel({"invoice": Reply(output, field_confidence=fields)})
    record = await Runner(pipeline, model=model).run(DOCUMENT)

    assert record.status is RunStatus.NEEDS_REVIEW
    (step,) = record.steps
    capped = Confidence(value=0.5, source="checks")
    assert {k: v for k, v in step.field_confidence.items() if v == capped} == {
        "subtotal": capped,
        "tax": capped,
        "total": capped,
    }
    assert step.field_confidence["issued"] == Confidence(value=0.9, source="scripted")
    assert record.review is not None
    assert [(r.kind, r.field, r.check) for r in record.review.reasons] == [
        ("check", None, "total_adds_up"),
        ("field_low_confidence", "subtotal", "total_adds_up"),
        ("field_low_confidence", "tax", "total_adds_up"),
        ("field_low_confidence", "total", "total_adds_up"),
    ]
