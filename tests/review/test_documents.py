"""How a review shows its document: e-mails split into headers and body, text as written."""

from handrail.review.documents import document_view

EMAIL = (
    "From: Aiko Tanaka <aiko@example.jp>\n"
    "Subject: Charged twice\n"
    'Content-Type: text/plain; charset="utf-8"\n'
    "\n"
    "Amount: €64.50, naïve café\n"
)


def test_an_email_body_keeps_its_non_ascii_text() -> None:
    view = document_view(EMAIL, [], name="07.eml")
    assert view.kind == "email"
    assert view.headers["Subject"] == "Charged twice"
    assert view.body == "Amount: €64.50, naïve café\n"


def test_a_quoted_printable_body_is_decoded() -> None:
    text = (
        "From: a@example.com\n"
        'Content-Type: text/plain; charset="utf-8"\n'
        "Content-Transfer-Encoding: quoted-printable\n"
        "\n"
        "Amount: =E2=82=AC64.50\n"
    )
    assert document_view(text, [], name="x.eml").body == "Amount: €64.50\n"
