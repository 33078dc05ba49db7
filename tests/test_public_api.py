"""The public namespace is a contract: adding or removing a name must be deliberate."""

import handrail


def test_all_is_pinned_and_sorted() -> None:
    assert handrail.__all__ == [
        "Action",
        "Attempt",
        "AuthenticationError",
        "Budget",
        "BudgetExceeded",
        "Check",
        "CheckFailed",
        "CheckResult",
        "CheckpointRefused",
        "Classify",
        "Confidence",
        "ContextWindowExceeded",
        "Document",
        "Draft",
        "Edge",
        "ErrorInfo",
        "Escalation",
        "Example",
        "ExampleSignals",
        "Examples",
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
        "InvalidDecision",
        "LLMNode",
        "LiteLLMModel",
        "LoopLimitReached",
        "LowConfidence",
        "Message",
        "Model",
        "ModelNotFound",
        "ModelRequest",
        "ModelResponse",
        "ModelSpec",
        "Node",
        "NotAllowed",
        "OutputInvalid",
        "Page",
        "Part",
        "PermanentProviderError",
        "Pipeline",
        "PipelineBuilder",
        "Place",
        "PromptError",
        "ProviderError",
        "ProviderTimeout",
        "ProviderUnavailable",
        "RateLimited",
        "RecordingModel",
        "ReplayMiss",
        "ReplayModel",
        "Reply",
        "RetriesExhausted",
        "RetryPolicy",
        "Review",
        "ReviewAlreadyDecided",
        "ReviewClaimed",
        "ReviewDecision",
        "ReviewError",
        "ReviewNotFound",
        "ReviewPolicy",
        "ReviewReason",
        "ReviewRequest",
        "Route",
        "Rule",
        "RunError",
        "RunRecord",
        "RunStatus",
        "RunStore",
        "RunTimeout",
        "Runner",
        "SignInFailed",
        "State",
        "StepFailed",
        "StepRecord",
        "StepStatus",
        "StoreError",
        "StoreUnavailable",
        "StoreVersionError",
        "Summarize",
        "TransientError",
        "Usage",
        "Word",
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


def test_every_error_users_raise_or_catch_is_exported_at_the_top() -> None:
    """The README tells users to `raise TransientError`; a `from handrail import` must work for
    every error in the tree, and be the very class the runner checks for."""
    from handrail import exceptions

    for name in exceptions.__all__:
        assert name in handrail.__all__, name
        assert getattr(handrail, name) is getattr(exceptions, name), name


def test_the_readme_import_of_transient_error_works() -> None:
    import subprocess
    import sys

    code = (
        "from handrail import TransientError, ProviderError, HandrailError\n"
        "assert issubclass(TransientError, ProviderError)\n"
        "assert issubclass(ProviderError, HandrailError)\n"
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr
