"""Two pipelines whose reviews are overdue the moment they are raised, for
`handrail review escalate`: one rejects an overdue review, the other moves it to `supervisors`.
The classifier's gate is above anything the heuristic fake model reaches, so every document
waits for review."""

from datetime import timedelta

from handrail import Classify, Escalation, Gate, PipelineBuilder, ReviewPolicy, Rule


def _pipeline(name: str, escalation: Escalation):
    policy = ReviewPolicy(deadline=timedelta(microseconds=1), on_deadline=escalation)
    return (
        PipelineBuilder(name, review=policy)
        .add(Classify("category", labels=["refund", "bug"], gate=Gate(accept=0.999)))
        .add(Rule("act", lambda s: f"handle {s['category']}"), after="category")
        .build()
    )


reject_late = _pipeline("reject_late", Escalation.reject("nobody looked in time"))
move_late = _pipeline("move_late", Escalation.to_queue("supervisors"))
