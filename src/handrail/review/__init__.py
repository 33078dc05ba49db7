"""The review use-cases (queue, decide, claim, escalate, export, reviewers, audit) that the CLI
and the web app both call."""
