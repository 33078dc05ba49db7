"""Evals: run a pipeline over example documents with known answers and score it (DESIGN §7).

- `suite`: the suite files (`evals/<suite>/suite.yaml`, `cases.jsonl`) and their loader.
- `scorers`, `calibration`: small, public, pure scoring functions (labels, fields, routes,
  calibration, the review-rate curve, distributions).
- `run`, `report`, `compare`, `html`: running a suite, the report, the baseline gate and the HTML
  page.
- `judge`: the opt-in LLM judge for free text; `export`: reviewers' decisions as new cases.

`handrail eval SUITE` (docs/evals.md) puts them together.
"""
