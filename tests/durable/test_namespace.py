"""`handrail.durable`'s public names are a contract, like `handrail`'s."""

import handrail.durable


def test_all_is_pinned_and_sorted() -> None:
    assert handrail.durable.__all__ == [
        "SCHEMA_VERSION",
        "SqlStore",
        "StoreError",
        "StoreUnavailable",
        "StoreVersionError",
    ]
    assert all(hasattr(handrail.durable, name) for name in handrail.durable.__all__)
