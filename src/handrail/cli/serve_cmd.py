"""`handrail serve`: the review inbox (see docs/review-inbox.md). Registered in `cli/main.py`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from handrail.cli.options import Db, errors

if TYPE_CHECKING:
    from handrail.core.pipeline import Pipeline
    from handrail.notify import Dispatcher
    from handrail.triggers.folder import FolderWatch
    from handrail.triggers.intake import Intake


def serve(
    db: Db = None,
    host: Annotated[
        str,
        typer.Option("--host", help="The address to listen on (loopback unless --allow-remote)."),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="The port.")] = 8765,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            metavar="TARGET",
            help="The pipeline's code (path/to/file.py:attr); default: the one pipeline the "
            "database records (its code must be inside this folder).",
            show_default=False,
        ),
    ] = None,
    no_worker: Annotated[
        bool,
        typer.Option(
            "--no-worker", help="Only record decisions; `handrail worker` continues the runs."
        ),
    ] = False,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote",
            help="Allow a --host other machines can reach (no TLS: put a TLS proxy in front).",
        ),
    ] = False,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            metavar="HOST",
            help="Another Host name browsers use for this server (name or name:port); "
            "repeatable. Requests naming any other host are refused.",
            show_default=False,
        ),
    ] = None,
    secure_cookies: Annotated[
        bool,
        typer.Option("--secure-cookies", help="Mark cookies Secure (the inbox is behind HTTPS)."),
    ] = False,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Continue every run with this model (fake, local, local/PATH.gguf or a litellm "
            "model string) instead of the one each run started with.",
            show_default=False,
        ),
    ] = None,
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            metavar="NAME",
            help="Take documents by HTTP from this source, signed with the secret in "
            "HANDRAIL_SOURCE_<NAME>_SECRET (POST /api/v1/pipelines/PIPELINE/documents; "
            "docs/triggers.md); repeatable.",
            show_default=False,
        ),
    ] = None,
    watch: Annotated[
        list[str] | None,
        typer.Option(
            "--watch",
            metavar="DIR",
            help="Take the files dropped in this folder (moved to DIR/processed/ or "
            "DIR/failed/ once taken; docs/triggers.md); repeatable.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the review inbox in the browser (and its JSON API).

    Reviewers sign in with their token, see their queues, and decide with the document beside
    the output. Decided runs continue in this process (--no-worker
    leaves that to `handrail worker`). Prints one line once it serves; Ctrl-C stops it."""
    from handrail.review import ReviewService
    from handrail.triggers.http import Sources
    from handrail.web import create_app
    from handrail.web.intake import intake_router
    from handrail.web.server import (
        WorkerLoop,
        allowed_hosts,
        check_host,
        run_server,
        worker_pipeline,
    )

    with errors():
        warning = check_host(host, allow_remote=allow_remote)
        if warning is not None:
            typer.echo(warning, err=True)
        sources = Sources.from_env(source or [])
        service = ReviewService(db, target=target)
        bell = _bell(db)  # notifications ([tool.handrail.notify]): sent from this process
        worker: WorkerLoop | None = None
        intake: Intake | None = None
        folders: list[FolderWatch] = []
        try:
            takes = bool(sources.names or watch)
            pipeline, note = (
                worker_pipeline(service, target) if takes or not no_worker else (None, "")
            )
            if not no_worker:
                if pipeline is None:
                    typer.echo(note, err=True)
                else:
                    worker = WorkerLoop(
                        pipeline=pipeline,
                        db=db,
                        model=model,
                        target=target,
                        on_escalated=lambda done: typer.echo(
                            f"escalated review {done.review_id}: {done.action}: {done.detail}"
                        ),
                        notify=bell.notify if bell is not None else None,
                    )
                    worker.start()
            if takes:
                intake = _intake(pipeline, note, model, db, bell)
            folders = _watch(intake, watch or [])
            hosts = allowed_hosts(host, port, allowed_host or [])
            app = create_app(
                service,
                allowed_hosts=hosts,
                secure_cookies=secure_cookies,
                on_decided=worker.wake if worker is not None else None,
                intake=None
                if intake is None or not sources.names
                else intake_router({intake.pipeline.name: intake}, sources),
            )

            def ready(url: str) -> None:
                if worker is not None:
                    typer.echo(
                        f"worker {worker.executor_id} continues the decided runs of "
                        f"{worker.pipeline.name}"
                    )
                for folder in folders:
                    typer.echo(
                        f"takes documents for {folder.trigger.intake.pipeline.name} "
                        f"from the folder {folder.trigger.folder}"
                    )
                if intake is not None and sources.names:
                    typer.echo(
                        f"takes documents for {intake.pipeline.name} from "
                        f"{', '.join(sources.names)}: POST "
                        f"{url}/api/v1/pipelines/{intake.pipeline.name}/documents"
                    )
                typer.echo(f"handrail serve: {url} (db {service.url})")
                sys.stdout.flush()

            run_server(app, host=host, port=port, on_ready=ready)
        finally:
            for folder in folders:
                folder.stop()
            if bell is not None:
                bell.stop()
            if worker is not None:
                worker.stop()
            if intake is not None:
                intake.close()
            service.close()
        typer.echo("handrail serve stopped (a signal asked it to)")


def _intake(
    pipeline: Pipeline | None,
    note: str,
    model: str | None,
    db: str | None,
    bell: Dispatcher | None,
) -> Intake:
    """The intake path for the server's pipeline (`note` says why there is none), its runs
    answered by `model` (as `handrail run --model` would, so a document already run is not run
    again)."""
    from handrail.exceptions import InputError
    from handrail.providers.specs import choose_model, model_spec
    from handrail.triggers.intake import Intake

    if pipeline is None:
        raise InputError(
            f"--source and --watch need the pipeline documents are for: give --target ({note})"
        )
    routes = bell.notify.routes if bell is not None else ()
    return Intake(pipeline, db=db, model_spec=model_spec(choose_model(model)), routes=routes)


def _watch(intake: Intake | None, folders: list[str]) -> list[FolderWatch]:
    """The folder trigger of each `--watch DIR`, polling (docs/triggers.md#the-folder-trigger)."""
    from handrail.triggers.folder import FolderTrigger, FolderWatch

    if intake is None:
        return []
    return [FolderWatch(trigger=FolderTrigger(intake, folder)).start() for folder in folders]


def _bell(db: str | None) -> Dispatcher | None:
    """The notification dispatcher for `./pyproject.toml`'s `[tool.handrail.notify]`, started
    (None without one): see docs/notifications.md."""
    from handrail.notify import Dispatcher, load_notifications

    notify = load_notifications()
    return Dispatcher(notify, db=db).start() if notify is not None else None


__all__ = ["serve"]
