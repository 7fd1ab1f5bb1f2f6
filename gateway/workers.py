"""``scv serve --workers N`` (``SCV_WORKERS``): N gateway processes over one database.

The parent process owns what must exist once: the embedded database (or MONGODB_URI), the
listening socket, and — without ``SCV_JWT_SECRET`` — the development secret (the data
directory's, as with one process) and the one development token minted from it. It hands them to the workers through their environment
and runs uvicorn's process supervisor, which starts the workers (spawned, so each imports
the app afresh), restarts one that dies, and stops them all on SIGINT/SIGTERM; the embedded
database stops after them. Each worker builds the same Starlette app (:func:`worker_app`)
over the shared database: the gateway keeps no state of its own, and claim races stay
decided by the database's unique index whichever worker a request reaches.

Metrics: prometheus-client's multiprocess mode. Every worker writes its samples to files in
``PROMETHEUS_MULTIPROC_DIR`` (a fresh temporary directory unless the operator sets one), and
``GET /metrics`` on any worker reports the sum over all of them; counters of a worker that
died stay in the sums, its live gauges (open subscriptions) leave them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Final

import uvicorn
from prometheus_client.multiprocess import mark_process_dead
from rich.console import Console
from starlette.applications import Starlette
from uvicorn.supervisors import Multiprocess

from gateway.auth import TOKEN_TTL_S, development_secret, mint_token
from gateway.settings import Settings

__all__ = ["MULTIPROC_DIR", "serve_workers", "worker_app"]

MULTIPROC_DIR: Final = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's own variable
DATABASE_URI: Final = "SCV_WORKER_DATABASE_URI"
SECRET: Final = "SCV_WORKER_JWT_SECRET"
DEV_TOKEN: Final = "SCV_WORKER_DEV_TOKEN"
WORKERS: Final = "SCV_WORKERS"
MAX_WORKERS: Final = 64


def worker_app() -> Starlette:
    """The app of one worker (uvicorn's factory, called in the worker process)."""
    from gateway.app import create_app
    from gateway.logs import configure_logging

    configure_logging()
    settings = Settings()
    return create_app(
        settings,
        uri=os.environ[DATABASE_URI],
        secret=os.environ[SECRET],
        dev_token=os.environ.get(DEV_TOKEN) or None,
    )


@contextlib.contextmanager
def worker_environment(uri: str, secret: str, dev_token: str | None, workers: int) -> Iterator[str]:
    """The variables the workers inherit (set for the block, then restored); yields the
    metrics directory. One made here is removed afterwards; one the operator set is not.
    ``SCV_WORKERS`` is among them (``--workers`` may have set it): each worker sizes its
    share of the database connections by it."""
    own_dir = None if os.environ.get(MULTIPROC_DIR) else tempfile.mkdtemp(prefix="scv-metrics-")
    values = {DATABASE_URI: uri, SECRET: secret, DEV_TOKEN: dev_token or "", WORKERS: str(workers)}
    if own_dir is not None:
        values[MULTIPROC_DIR] = own_dir
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield os.environ[MULTIPROC_DIR]
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if own_dir is not None:
            shutil.rmtree(own_dir, ignore_errors=True)


def serve_workers(settings: Settings, uri: str, where: str, console: Console) -> None:
    """Serve with ``settings.workers`` processes until SIGINT/SIGTERM (database at ``uri``)."""
    secret, dev_token = settings.jwt_secret, None
    if secret is None:  # the data directory's development secret; one token for every worker
        secret = development_secret(settings.dev_secret_file)
        dev_token = mint_token(secret, org="dev", sub="developer")
    base = f"http://{settings.host}:{settings.port}"
    console.print(
        f"scv-gateway on [bold]{base}/graphql[/] using {where}, {settings.workers} workers",
        highlight=False,
    )
    if dev_token:
        console.print(
            "development mode: no SCV_JWT_SECRET, so this token (org dev, every permission) "
            f"is valid on every worker for {TOKEN_TTL_S // 3600} hours; "
            "scv token --org <org> mints more:"
        )
        print(dev_token, flush=True)
    config = uvicorn.Config(
        "gateway.workers:worker_app",
        factory=True,
        workers=settings.workers,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        log_config=None,
        access_log=False,
        ws_max_size=settings.max_body_bytes,
        lifespan="on",
    )
    with worker_environment(uri, secret, dev_token, settings.workers):
        _Supervisor(config, sockets=[config.bind_socket()]).run()


class _Supervisor(Multiprocess):
    """uvicorn's supervisor; a worker it replaces leaves the live gauges (open
    subscriptions), as prometheus-client's multiprocess mode asks."""

    def keep_subprocess_alive(self) -> None:
        before = {process.pid for process in self.processes}
        super().keep_subprocess_alive()
        for pid in before - {process.pid for process in self.processes}:
            if pid is not None:
                mark_process_dead(pid)  # type: ignore[no-untyped-call]
