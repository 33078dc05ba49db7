"""`handrail serve`: the review inbox (see docs/review-inbox.md). Registered in `cli/main.py`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from handrail.cli.options import Db, Watch, errors

if TYPE_CHECKING:
    from handrail.core.pipeline import Pipeline
    from handrail.notify import Dispatcher
    from handrail.triggers.config import Triggers
    from handrail.triggers.running import Running


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
    watch: Watch = None,
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
        from handrail.cli.commands import configured_triggers
        from handrail.triggers.config import Folder, Triggers

        given = Triggers(
            http=source or [],
            folders=[Folder(path=d) for d in watch or []],
            where="--source/--watch",
        )
        service = ReviewService(db, target=target)
        bell: Dispatcher | None = None
        worker: WorkerLoop | None = None
        running: Running | None = None
        try:
            # pyproject.toml's [tool.handrail.triggers], those beside --target, and the options
            triggers = configured_triggers(target, extra=given)
            pipeline, note = (
                worker_pipeline(service, target) if triggers or not no_worker else (None, "")
            )
            sources = Sources.from_env(list(triggers.http))
            bell = _bell(db)  # notifications ([tool.handrail.notify]): sent from this process
            if triggers:
                running = _start(pipeline, note, model, db, bell, triggers)
            if running is not None and running.schedules and no_worker:
                typer.echo(
                    "note: --no-worker: the schedules fire in `handrail worker` processes only",
                    err=True,
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
                        schedules=running.schedules if running is not None else (),
                    )
                    worker.start()
            intake = running.intake if running is not None else None
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
                if running is not None:
                    for line in running.lines():
                        typer.echo(f"{line} for {running.intake.pipeline.name}")
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
            if running is not None:
                running.stop()
            if bell is not None:
                bell.stop()
            if worker is not None:
                worker.stop()
            if running is not None:
                running.intake.close()
            service.close()
        typer.echo("handrail serve stopped (a signal asked it to)")


def _start(
    pipeline: Pipeline | None,
    note: str,
    model: str | None,
    db: str | None,
    bell: Dispatcher | None,
    triggers: Triggers,
) -> Running:
    """The intake path for the server's pipeline (`note` says why there is none), its runs
    answered by `model` (as `handrail run --model` would, so a document already run is not run
    again), and `triggers`' folders and mailboxes polling through it."""
    from handrail.exceptions import InputError
    from handrail.providers.specs import choose_model, model_spec
    from handrail.triggers.intake import Intake
    from handrail.triggers.running import start_triggers

    if pipeline is None:
        raise InputError(
            f"triggers (--source, --watch, [tool.handrail.triggers]) need the pipeline documents "
            f"are for: give --target ({note})"
        )
    routes = bell.notify.routes if bell is not None else ()
    intake = Intake(pipeline, db=db, model_spec=model_spec(choose_model(model)), routes=routes)
    try:
        return start_triggers(intake, triggers)
    except BaseException:
        intake.close()
        raise


def _bell(db: str | None) -> Dispatcher | None:
    """The notification dispatcher for `./pyproject.toml`'s `[tool.handrail.notify]`, started
    (None without one): see docs/notifications.md."""
    from handrail.notify import Dispatcher, load_notifications

    notify = load_notifications()
    return Dispatcher(notify, db=db).start() if notify is not None else None


__all__ = ["serve"]
