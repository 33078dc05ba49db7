"""litellm, imported once and quietly.

litellm fetches its price map from the network at import unless told to use the copy it ships
(handrail never depends on the network for that), and prints provider lists and debugging hints
to stdout on errors, which would break `handrail run --json`.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm

litellm.suppress_debug_info = True
litellm.telemetry = False

__all__ = ["litellm"]
