"""The embedded MongoDB-wire server: SecantusDB's ``secantusd-py`` as a child process.

It runs in its own process on a free loopback port so the gateway and the database use
separate cores. Its data lives in a directory that survives restarts.

Its WiredTiger cache is sized from the machine's memory (:func:`cache_size_bytes`).

Durability and restarts:

* every commit, transactions included, is synced to the journal before it is acknowledged
  (``--sync-on-commit``: the server honours ``j: true`` on single writes but not on
  ``commitTransaction``), so killing the server loses no acknowledged write;
* idle transactions are aborted after 5 s (``gateway/embedded_daemon.py``), so those of a
  killed gateway stop blocking other writers within seconds;
* the child's pid is kept next to the data directory (``<dir>.pid``). A server started on
  a directory whose previous server is still exiting (a gateway SIGKILLed a moment ago:
  its child shuts down on the parent-death signal) waits up to
  :data:`PREVIOUS_EXIT_WAIT_S` for it to exit, and says so; a pid file whose process is
  gone, or a zombie not yet collected by init, is ignored.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import psutil  # type: ignore[import-untyped]

START_TIMEOUT_S = 60.0
PREVIOUS_EXIT_WAIT_S = 10.0
EXIT_POLL_S = 0.02
PR_SET_PDEATHSIG = 1
CACHE_MIN_BYTES = 2**30
CACHE_MAX_BYTES = 4 * 2**30


class EmbeddedServerError(RuntimeError):
    """The embedded server could not start; the message is one line for a person."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _server_command() -> list[str]:
    cache_mib = cache_size_bytes(psutil.virtual_memory().total) // 2**20
    return [
        *[sys.executable, "-m", "gateway.embedded_daemon", "--sync-on-commit"],
        *["--cache-size", f"{cache_mib}M"],
    ]


def cache_size_bytes(memory_bytes: int) -> int:
    """The embedded server's WiredTiger cache: half the memory beyond 1 GiB (mongod's rule),
    at most :data:`CACHE_MAX_BYTES`, at least SecantusDB's own 1 GiB.

    With 1 GiB, ``make load`` with 2 workers stalled every write for 5 s in 4 of 12 runs, each
    45-55 s into the run (threads asleep in WiredTiger's ``__wt_page_in_func`` on the index
    table until the transactions of the requests waiting on them hit their deadline;
    checkpoints every 15 s did not prevent it). WiredTiger caps a page's in-memory size at a
    tenth of the cache, so a hot page was forced out at 100 MB rather than at
    ``PAGE_MEMORY_MAX``. With 4 GiB: 0 of 4 runs, one of them 180 s long. It is a cap: the
    cache holds only what the data needs."""
    return max(CACHE_MIN_BYTES, min(CACHE_MAX_BYTES, (memory_bytes - 2**30) // 2))


class EmbeddedServer:
    """Start with ``start()`` (or ``with``); ``uri`` is then a directConnection URI."""

    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        test_commands: bool = False,
        log_path: Path | None = None,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port
        self.test_commands = test_commands
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.stopped = False  # stop() was called: not running, on purpose
        self.announce = announce  # told, in one line, when start() waits for a predecessor

    @property
    def uri(self) -> str:
        return f"mongodb://{self.host}:{self.port}/?directConnection=true"

    def start(self) -> EmbeddedServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.stopped = False
        self._wait_for_previous()
        if self.port is None:
            self.port = free_port(self.host)
        elif not _port_is_free(self.host, self.port):
            raise EmbeddedServerError(f"port {self.port} on {self.host} is already in use")
        log_path = self.log_path or self.data_dir.with_name(self.data_dir.name + ".log")
        command = [
            *_server_command(),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--storage-path",
            str(self.data_dir),
            "--log-level",
            "WARNING",
        ]
        if self.test_commands:
            command.append("--enable-test-commands")
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=str(self.data_dir.parent),
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        try:
            self.pid_file.write_text(str(self.process.pid))
            self._wait_ready(log_path)
        except BaseException:  # a failed start, or a signal meanwhile: no child left behind
            self.stop()
            raise
        self.uri_file.write_text(self.uri)
        return self

    @property
    def pid_file(self) -> Path:
        """The running child's pid, so the next server on this directory can wait for it."""
        return self.data_dir.with_name(self.data_dir.name + ".pid")

    def _wait_for_previous(self) -> None:
        """A previous server of this directory that is still exiting is waited for."""
        previous = _previous_server(self.pid_file, self.data_dir)
        if previous is None:
            return
        if self.announce is not None:
            self.announce(
                f"waiting up to {PREVIOUS_EXIT_WAIT_S:.0f}s for the previous embedded database"
                f" of {self.data_dir} (pid {previous.pid}) to exit"
            )
        if not has_exited_within(previous, PREVIOUS_EXIT_WAIT_S):
            raise EmbeddedServerError(
                f"the data directory {self.data_dir} is already in use by another server"
                f" (pid {previous.pid}, still running after {PREVIOUS_EXIT_WAIT_S:.0f}s)"
            )

    @property
    def uri_file(self) -> Path:
        """Where a running server leaves its URI, so CLI tools can share it."""
        return self.data_dir.with_name(self.data_dir.name + ".uri")

    def _wait_ready(self, log_path: Path) -> None:
        assert self.process is not None and self.port is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedServerError(_failure_reason(log_path, self.data_dir))
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise EmbeddedServerError(f"the embedded database did not start within {START_TIMEOUT_S}s")

    def exit_reason(self) -> str | None:
        """None while the child process runs; else one line saying why it does not."""
        process = self.process
        if process is None:
            return (
                "embedded database process was stopped"
                if self.stopped
                else "embedded database process is not running"
            )
        code = process.poll()
        if code is None:
            return None
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = str(-code)
            return f"embedded database process was killed by signal {name}"
        return f"embedded database process exited (code {code})"

    def stop(self) -> None:
        process, self.process = self.process, None
        self.stopped = True
        if process is None:
            return
        self.uri_file.unlink(missing_ok=True)
        if process.poll() is None:
            _terminate(process)
        self.pid_file.unlink(missing_ok=True)  # only once the process is gone

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the child's process group, SIGKILL if it has not exited after 10 s."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def _previous_server(pid_file: Path, data_dir: Path) -> psutil.Process | None:
    """The process a pid file names, if it is alive and serves ``data_dir`` (a pid reused
    by another program, a zombie or a missing process: None, the file is stale)."""
    try:
        process = psutil.Process(int(pid_file.read_text().strip()))
        alive = not has_exited_within(process, 0)
        serves = str(data_dir) in process.cmdline()
    except (OSError, ValueError, psutil.Error):
        return None
    return process if alive and serves else None


def has_exited_within(process: psutil.Process, seconds: float) -> bool:
    """Whether ``process`` exits within ``seconds``: is gone, or is a zombie. The previous
    server is an orphan (its gateway died), so its exit status waits for init to collect it,
    which may take seconds; ``psutil.Process.wait`` counts that time as running, though a
    zombie holds no file, lock or port."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if process.status() == psutil.STATUS_ZOMBIE or not process.is_running():
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(EXIT_POLL_S)


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, get SIGTERM when the gateway process dies, however
    it dies (uvicorn re-raises SIGTERM after its shutdown, which skips ``finally`` blocks)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            pass


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _failure_reason(log_path: Path, data_dir: Path) -> str:
    try:
        tail = log_path.read_text(errors="replace")[-4000:]
    except OSError:
        tail = ""
    lowered = tail.lower()
    if "address already in use" in lowered:
        return "the embedded database's port is already in use"
    if "resource busy" in lowered or "lock" in lowered:
        return f"the data directory {data_dir} is already in use by another server"
    last = next((line for line in reversed(tail.splitlines()) if line.strip()), "no output")
    return f"the embedded database exited at start-up: {last[:200]}"


def running_uri(data_dir: Path) -> str | None:
    """The URI of an embedded server already serving ``data_dir`` (started by `scv serve`)."""
    uri_file = data_dir.with_name(data_dir.name + ".uri")
    try:
        uri = uri_file.read_text().strip()
    except OSError:
        return None
    host_port = uri.removeprefix("mongodb://").split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return uri
    except (OSError, ValueError):
        return None
