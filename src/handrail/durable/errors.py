"""The store's errors. Meant for `handrail.exceptions` (under a `StoreError` there); kept here until
they move, so the core's exception module is not edited from this package.

```
HandrailError
└── StoreError              the run store cannot be used (a malformed URL, an output with no JSON)
    ├── StoreUnavailable    the database cannot be reached or opened
    └── StoreVersionError   the database was written by a newer handrail
```
"""

from __future__ import annotations

from handrail.exceptions import HandrailError


class StoreError(HandrailError):
    """The run store cannot be used."""


class StoreUnavailable(StoreError):
    """The database cannot be reached (server down, wrong host or port, unwritable file)."""


class StoreVersionError(StoreError):
    """The database's run-record schema is newer than this handrail understands."""
