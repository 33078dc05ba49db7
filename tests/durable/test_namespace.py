"""`handrail.durable`'s public names are a contract, like `handrail`'s."""

import handrail.durable


def test_all_is_pinned_and_sorted() -> None:
    assert handrail.durable.__all__ == [
        "DEFAULT_DATABASE",
        "SCHEMA_VERSION",
        "AbandonedRun",
        "AuditCheck",
        "AuditEntry",
        "Claim",
        "DurableRunner",
        "Escalated",
        "Finished",
        "InboxRow",
        "Reviewer",
        "SqlStore",
        "StoreError",
        "StoreUnavailable",
        "StoreVersionError",
        "Submitter",
        "abandon",
        "chain",
        "database_url",
        "review_examples",
    ]
    assert all(hasattr(handrail.durable, name) for name in handrail.durable.__all__)
