"""Restarts after a crash: `scv serve` SIGKILLed and started again at once on the same data
directory comes up (it waits for the old embedded database, which is still exiting, and
counts an exited one that init has not collected yet as gone); a stale pid file is
ignored; SIGTERM during start-up leaves no embedded database behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]

from gateway.embedded import PREVIOUS_EXIT_WAIT_S, free_port, has_exited_within

START_S = 60.0  # a generous bound for a start on a busy machine


class Serve:
    """`scv serve` as a subprocess on a data directory and a free port."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
        env.update({"SCV_PORT": str(self.port), "SCV_DATA_DIR": str(data_dir)})
        scv = Path(sys.executable).with_name("scv")
        self.err_file = data_dir.with_name(f"serve-{self.port}.err")
        with open(self.err_file, "wb") as err:
            self.process = subprocess.Popen(
                [str(scv), "serve"], env=env, stdout=subprocess.DEVNULL, stderr=err
            )

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.stderr()
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError("scv serve never became ready")

    def database_pid(self) -> int:
        pid_file = self.data_dir.with_name(self.data_dir.name + ".pid")
        deadline = time.monotonic() + START_S
        while not pid_file.exists():
            assert time.monotonic() < deadline and self.process.poll() is None, self.stderr()
            time.sleep(0.01)
        return int(pid_file.read_text())

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.terminate()
        return self.stderr()

    def stderr(self) -> str:
        self.process.wait(timeout=30)
        return self.err_file.read_text()

    def wait_for_stderr(self, text: str) -> None:
        deadline = time.monotonic() + START_S
        while text not in self.err_file.read_text():
            assert time.monotonic() < deadline and self.process.poll() is None, self.stderr()
            time.sleep(0.05)


def test_serve_sigkilled_and_restarted_at_once_comes_up(tmp_path: Path) -> None:
    """The old embedded database is held stopped (SIGSTOP) while its gateway is killed, so it
    is certainly still there, its parent-death SIGTERM pending, when the new one starts."""
    data_dir = tmp_path / "data"
    first = Serve(data_dir)
    try:
        first.wait_healthy()
        old_database = first.database_pid()
        os.kill(old_database, signal.SIGSTOP)
        first.process.kill()
        first.process.wait()
    finally:
        first.stop()
    second = Serve(data_dir)
    try:
        second.wait_for_stderr("waiting up to 10s for the previous embedded database")
        os.kill(old_database, signal.SIGCONT)  # it takes its SIGTERM and exits
        second.wait_healthy()
        assert second.database_pid() != old_database
        assert gone_within(old_database, 0)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(old_database, signal.SIGCONT)
        err = second.stop()
    assert "already in use" not in err


def test_an_exited_process_init_has_not_collected_counts_as_exited() -> None:
    """A zombie is not running: an orphaned database's exit status can wait seconds for init."""
    with subprocess.Popen(
        [sys.executable, "-c", ORPHAN_HOLDER], stdout=subprocess.PIPE, text=True
    ) as parent:
        try:
            assert parent.stdout is not None
            zombie = psutil.Process(int(parent.stdout.readline()))
            deadline = time.monotonic() + START_S
            while zombie.status() != psutil.STATUS_ZOMBIE:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            assert has_exited_within(zombie, PREVIOUS_EXIT_WAIT_S)
            assert zombie.status() == psutil.STATUS_ZOMBIE  # still there: never collected
        finally:
            parent.kill()


# a parent that starts a child which exits at once, and never collects its exit status
ORPHAN_HOLDER = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "pass"])
print(child.pid, flush=True)
time.sleep(60)
"""


def test_a_running_process_has_not_exited() -> None:
    assert not has_exited_within(psutil.Process(os.getpid()), 0.05)


def gone_within(pid: int, seconds: float) -> bool:
    try:
        return has_exited_within(psutil.Process(pid), seconds)
    except psutil.NoSuchProcess:
        return True


def test_a_stale_pid_file_is_ignored(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    data_dir.with_name("data.pid").write_text(str(dead.pid))
    serve = Serve(data_dir)
    try:
        serve.wait_healthy()
    finally:
        err = serve.stop()
    assert "waiting" not in err, err


def test_sigterm_during_start_up_stops_the_embedded_database(tmp_path: Path) -> None:
    serve = Serve(tmp_path / "data")
    database = serve.database_pid()  # the database is starting; the gateway is not serving
    serve.process.send_signal(signal.SIGTERM)
    err = serve.stderr()
    assert serve.process.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    assert gone_within(database, 15), "the embedded database outlived the gateway"
    assert not (tmp_path / "data.pid").exists()
