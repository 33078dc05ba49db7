"""The public namespace is a contract: adding or removing a name must be deliberate."""

import handrail


def test_all_is_pinned_and_sorted() -> None:
    assert handrail.__all__ == [
        "Action",
        "Attempt",
        "Budget",
        "Check",
        "CheckResult",
        "Classify",
        "Confidence",
        "Document",
        "Draft",
        "Edge",
        "ErrorInfo",
        "Escalation",
        "Extract",
        "Fail",
        "FakeModel",
        "Fallback",
        "Gate",
        "GraphSetupError",
        "HandrailError",
        "Hooks",
        "InMemoryStore",
        "InputError",
        "LLMNode",
        "LiteLLMModel",
        "Message",
        "Model",
        "ModelRequest",
        "ModelResponse",
        "Node",
        "Pipeline",
        "PipelineBuilder",
        "RecordingModel",
        "ReplayModel",
        "Reply",
        "RetryPolicy",
        "Review",
        "ReviewAlreadyDecided",
        "ReviewDecision",
        "ReviewNotFound",
        "ReviewPolicy",
        "ReviewReason",
        "ReviewRequest",
        "Route",
        "Rule",
        "RunRecord",
        "RunStatus",
        "RunStore",
        "Runner",
        "State",
        "StepRecord",
        "StepStatus",
        "Summarize",
        "Usage",
        "__version__",
        "appears_in_document",
        "date_parses",
        "in_range",
        "line_amounts",
        "not_before",
        "sums_to",
    ]
    assert handrail.__all__ == sorted(handrail.__all__)


def test_every_exported_name_exists_and_is_public() -> None:
    for name in handrail.__all__:
        value = getattr(handrail, name)
        if name != "__version__":
            assert value.__module__.startswith("handrail."), name


def test_importing_handrail_does_not_import_litellm() -> None:
    import subprocess
    import sys

    code = "import sys, handrail; print('litellm' in sys.modules, handrail.LiteLLMModel.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "LiteLLMModel"]


def test_exceptions_module_lists_its_tree_under_one_root() -> None:
    from handrail import exceptions

    assert exceptions.__all__ == sorted(exceptions.__all__)
    for name in exceptions.__all__:
        assert issubclass(getattr(exceptions, name), handrail.HandrailError), name
