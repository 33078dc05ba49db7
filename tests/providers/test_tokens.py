"""field_confidence_from_tokens: which tokens count for which field, and the numbers."""

from __future__ import annotations

import math

import pytest

from handrail.providers.tokens import field_confidence_from_tokens, top_level_value_spans

LN = math.log


def test_product_of_value_tokens_including_quotes() -> None:
    # {"a": "xy", "b": 12}
    tokens = [
        ('{"a": ', LN(0.9)),  # structure only
        ('"x', LN(0.5)),  # opening quote + first value char
        ('y"', LN(0.8)),  # last char + closing quote
        (', "b": ', LN(0.99)),
        ("12", LN(0.25)),
        ("}", LN(1.0)),
    ]
    got = field_confidence_from_tokens(tokens, '{"a": "xy", "b": 12}')
    assert got == pytest.approx({"a": 0.5 * 0.8, "b": 0.25})


def test_min_reduction() -> None:
    tokens = [('{"a": "', LN(1.0)), ("x", LN(0.5)), ("y", LN(0.8)), ('"}', LN(0.9))]
    text = '{"a": "xy"}'
    assert field_confidence_from_tokens(tokens, text, reduce="min") == pytest.approx({"a": 0.5})
    # product: the opening-quote token (1.0), x, y, and the straddling closing token
    assert field_confidence_from_tokens(tokens, text) == pytest.approx({"a": 0.5 * 0.8 * 0.9})


def test_token_straddling_two_values_counts_for_both() -> None:
    # `1,"b":2` is one token: it wrote the end of a's value and all of b's.
    tokens = [('{"a":', LN(1.0)), ("3", LN(0.6)), ('1,"b":2', LN(0.5)), ("}", LN(1.0))]
    got = field_confidence_from_tokens(tokens, '{"a":31,"b":2}')
    assert got == pytest.approx({"a": 0.6 * 0.5, "b": 0.5})


def test_structure_tokens_do_not_count() -> None:
    tokens = [('{"a"', LN(0.01)), (": ", LN(0.02)), ("true", LN(0.7)), ("}", LN(0.03))]
    assert field_confidence_from_tokens(tokens, '{"a": true}') == pytest.approx({"a": 0.7})


def test_null_and_negative_float() -> None:
    tokens = [('{"a": ', 0.0), ("null", LN(0.4)), (', "b": ', 0.0), ("-1", LN(0.5))]
    tokens += [(".5e3", LN(0.5)), ("}", 0.0)]
    got = field_confidence_from_tokens(tokens, '{"a": null, "b": -1.5e3}')
    assert got == pytest.approx({"a": 0.4, "b": 0.25})


def test_nested_value_is_one_field() -> None:
    text = '{"lines": [{"q": 1}, {"q": 2}], "total": 3}'
    tokens = [
        ('{"lines": ', 0.0),
        ('[{"q": 1}', LN(0.5)),
        (', {"q": 2}]', LN(0.5)),
        (', "total": ', 0.0),
        ("3", LN(0.9)),
        ("}", 0.0),
    ]
    got = field_confidence_from_tokens(tokens, text)
    assert got == pytest.approx({"lines": 0.25, "total": 0.9})


def test_escaped_quotes_inside_a_string() -> None:
    text = '{"name": "say \\"hi\\"", "n": 1}'
    tokens = [('{"name": ', 0.0), ('"say \\"', LN(0.5)), ('hi\\""', LN(0.5))]
    tokens += [(', "n": ', 0.0), ("1", LN(0.8)), ("}", 0.0)]
    got = field_confidence_from_tokens(tokens, text)
    assert got == pytest.approx({"name": 0.25, "n": 0.8})
    assert top_level_value_spans(text)["name"] == (9, 21)


def test_leading_text_around_the_json_is_skipped() -> None:
    tokens = [("```json\n", LN(0.1)), ('{"a": ', 0.0), ("1", LN(0.5)), ("}", 0.0), ("\n```", 0.0)]
    assert field_confidence_from_tokens(tokens, '{"a": 1}') == pytest.approx({"a": 0.5})


def test_repeated_key_keeps_last_value() -> None:
    tokens = [('{"a": ', 0.0), ("1", LN(0.1)), (', "a": ', 0.0), ("2", LN(0.9)), ("}", 0.0)]
    assert field_confidence_from_tokens(tokens, '{"a": 1, "a": 2}') == pytest.approx({"a": 0.9})


def test_empty_object() -> None:
    assert field_confidence_from_tokens([("{}", 0.0)], "{}") == {}


def test_unicode_value() -> None:
    tokens = [('{"c": "', 0.0), ("Café", LN(0.5)), ('"}', 0.0)]
    assert field_confidence_from_tokens(tokens, '{"c": "Café"}') == pytest.approx({"c": 0.5})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "expected a JSON object"),
        ('{"a": 1', "expected ',' or '}'"),
        ('{"a" 1}', "expected ':'"),
        ('{"a": 1} x', "text after the closing"),
        ('{"a": tru}', "invalid JSON object"),
    ],
)
def test_not_a_json_object(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        field_confidence_from_tokens([(text, 0.0)], text)


def test_tokens_must_spell_the_text() -> None:
    with pytest.raises(ValueError, match="do not spell out"):
        field_confidence_from_tokens([('{"a": 2}', 0.0)], '{"a": 1}')


def test_positive_logprob_is_rejected() -> None:
    with pytest.raises(ValueError, match="log-probability"):
        field_confidence_from_tokens([('{"a": 1}', 0.5)], '{"a": 1}')
