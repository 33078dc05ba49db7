"""`handrail serve`: the review inbox on uvicorn, and in the same process the worker loop that
continues decided runs (a `DurableRunner(kind="worker")` for one pipeline, on an event loop of
its own in a background thread: DBOS runs once per process, and the web app's requests never
wait for a run to continue).

A decision made in the web app wakes the loop at once (`on_decided`); it also looks every
second (`DurableRunner.serve`: continue decided reviews, apply due escalations, recover stopped
workers' runs, run submitted documents).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from handrail.exceptions import InputError

if TYPE_CHECKING:
    from handrail.core.pipeline import Pipeline
    from handrail.durable import Escalated
    from handrail.durable.schedules import Scheduled
    from handrail.notify import Notifications
    from handrail.review import ReviewService

log = logging.getLogger("handrail.web")

READY_TIMEOUT = 120.0
"""Seconds the server waits for its worker to start before giving up."""


def is_loopback(host: str) -> bool:
    """Whether `host` only listens on this machine (`127.0.0.1`, `::1`, `localhost`)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_host(host: str, *, allow_remote: bool) -> str | None:
    """None for a loopback `host`; the warning to print for another one with `allow_remote`;
    `InputError` without it."""
    if is_loopback(host):
        return None
    if not allow_remote:
        raise InputError(
            f"refusing to listen on {host}: other machines could reach the inbox; handrail "
            "serves 127.0.0.1 unless told otherwise (--allow-remote, behind a TLS proxy)"
        )
    return (
        f"warning: listening on {host} without TLS: reviewer tokens and documents cross the "
        "network in clear text. Put a TLS proxy in front, use --secure-cookies, and name the "
        "host names browsers use with --allowed-host"
    )


def allowed_hosts(host: str, port: int, extra: Sequence[str]) -> list[str]:
    """The Host headers the app answers to: this address and port, localhost's names for a
    loopback one, and `extra` (`--allowed-host`)."""
    names = [f"{_bracket(host)}:{port}"]
    if is_loopback(host):
        names += [f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"]
    return list(dict.fromkeys([*names, *extra]))


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


# --- the worker loop -----------------------------------------------------------------------------


@dataclass(kw_only=True)
class WorkerLoop:
    """A durable worker for `pipeline` on its own thread and event loop."""

    pipeline: Pipeline
    db: str | None
    model: str | None = None
    """`--model`: answer every run with it (else each run's own, as its record says)."""
    target: str | None = None
    """Recorded for the pipeline (so other commands find its code), when given."""
    on_escalated: Callable[[Escalated], object] | None = None
    notify: Notifications | None = None
    """The notification channels: the runs it continues write their outbox rows."""
    schedules: Sequence[Scheduled] = ()
    """Cron schedules it stores in DBOS and fires (`handrail.durable.schedules`)."""
    executor_id: str = ""
    error: BaseException | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _stop: asyncio.Event | None = None
    _wake: asyncio.Event | None = None
    _ready: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self, timeout: float = READY_TIMEOUT) -> None:
        """Start the loop and wait until it serves; re-raises what stopped it from starting."""
        self._thread = threading.Thread(target=self._main, name="handrail-worker", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise InputError(
                f"the worker for `{self.pipeline.name}` did not start within {timeout:.0f} s; "
                "check the database, or start with --no-worker and run `handrail worker`"
            )
        if self.error is not None:
            raise self.error

    def wake(self, run_id: str = "") -> None:
        """Continue decided runs now (called from the web app's threads after a decision)."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)

    def stop(self, timeout: float = 30.0) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as e:  # said by start(), or logged once serving
            if not self._ready.is_set():
                self.error = e
            else:
                log.error("the worker loop stopped: %s", e)
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        from handrail.durable import DurableRunner
        from handrail.providers.specs import build_model, choose_model, model_spec
        from handrail.targets import absolute_target

        self._loop = asyncio.get_running_loop()
        self._stop, self._wake = asyncio.Event(), asyncio.Event()
        chosen = choose_model(self.model)
        async with DurableRunner(
            self.pipeline,
            db=self.db,
            kind="worker",
            model=chosen,
            model_spec=model_spec(chosen),
            model_for=None if self.model is not None else build_model,
            notify=self.notify,
            schedules=self.schedules,
        ) as runner:
            if self.target is not None:
                runner.sql.save_pipeline(self.pipeline.name, absolute_target(self.target))
            self.executor_id = runner.executor_id
            self._ready.set()
            serving = asyncio.ensure_future(
                runner.serve(stop=self._stop, on_escalated=self.on_escalated)
            )
            try:
                await self._continue_when_woken(runner, serving)
            finally:
                self._stop.set()
                await serving

    async def _continue_when_woken(self, runner: Any, serving: asyncio.Future[None]) -> None:
        assert self._stop is not None and self._wake is not None
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            while not self._stop.is_set() and not serving.done():
                woken = asyncio.ensure_future(self._wake.wait())
                waiting: set[asyncio.Future[Any]] = {woken, stopping, serving}
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
                if self._wake.is_set() and not self._stop.is_set():
                    self._wake.clear()
                    try:  # the next round of `serve` tries again after a failure
                        await runner.resume_decided()
                    except Exception as e:
                        log.warning("could not continue decided runs (%s); retrying", e)
        finally:
            stopping.cancel()


def run_server(
    app: Any, *, host: str, port: int, on_ready: Callable[[str], None], log_level: str = "warning"
) -> None:
    """Serve `app` with uvicorn until SIGINT or SIGTERM; `on_ready(url)` once it listens."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                on_ready(f"http://{_bracket(host)}:{port}")

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # uvicorn's own raises the signal again once it has shut down, which would kill
            # the process before the worker loop stops: a signal only stops the server here.
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            handled = (signal.SIGINT, signal.SIGTERM)
            before = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
            try:
                yield
            finally:
                for sig, handler in before.items():
                    signal.signal(sig, handler)

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,  # URLs hold review ids, not secrets, but the log is for problems
        server_header=False,
        proxy_headers=False,  # no proxy is trusted unless one is configured in front
        lifespan="off",
    )
    Server(config).run()


def worker_pipeline(service: ReviewService, target: str | None) -> tuple[Pipeline | None, str]:
    """The pipeline the worker loop serves (`target`, else the one recorded in the database),
    or None and why (nothing recorded yet, or several: which commands continue them)."""
    from handrail.targets import load_pipeline

    if target is not None:
        return load_pipeline(target), ""
    names = recorded_pipelines(service)
    if len(names) == 1:
        return service.pipeline(names[0]), ""
    if not names:
        return None, (
            "note: no pipeline is recorded in the database yet, so this server continues no "
            "runs; run documents with `handrail run TARGET`, then restart it (or give --target)"
        )
    shown = ", ".join(f"`{n}`" for n in names)
    return None, (
        f"note: pipelines {shown} are recorded in the database; this server continues none of "
        "their decided runs: give --target for the one it should continue, and run "
        "`handrail worker TARGET` for each of the others"
    )


def recorded_pipelines(service: ReviewService) -> list[str]:
    """The names of the pipelines recorded in the service's database, sorted (read-only: a
    database that does not exist yet records none)."""
    from handrail.review.records import open_store

    with open_store(service.db) as store:
        if store is None:
            return []
        return sorted(store.pipelines())


__all__ = [
    "READY_TIMEOUT",
    "WorkerLoop",
    "allowed_hosts",
    "check_host",
    "is_loopback",
    "recorded_pipelines",
    "run_server",
    "worker_pipeline",
]
