"""Restarts after a crash: `scv serve` SIGKILLed and started again at once on the same data
directory comes up (it waits for the old embedded database, which is still exiting); a
stale pid file is ignored; SIGTERM during start-up leaves no embedded database behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]

from gateway.embedded import free_port

START_S = 60.0  # a generous bound for a start on a busy machine


class Serve:
    """`scv serve` as a subprocess on a data directory and a free port."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
        env.update({"SCV_PORT": str(self.port), "SCV_DATA_DIR": str(data_dir)})
        scv = Path(sys.executable).with_name("scv")
        self.process = subprocess.Popen(
            [str(scv), "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
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
        _, err = self.process.communicate(timeout=30)
        return err.decode()


def gone_within(pid: int, seconds: float) -> bool:
    try:
        psutil.Process(pid).wait(timeout=seconds)
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        return False
    return True


def test_serve_sigkilled_and_restarted_at_once_comes_up(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = Serve(data_dir)
    try:
        first.wait_healthy()
        old_database = first.database_pid()
        first.process.kill()
        first.process.wait()
        assert psutil.pid_exists(old_database)  # still shutting down: the case at hand
    finally:
        first.stop()
    second = Serve(data_dir)
    try:
        second.wait_healthy()
        assert second.database_pid() != old_database
        assert not psutil.pid_exists(old_database)
    finally:
        err = second.stop()
    assert "waiting up to 10s for the previous embedded database" in err, err
    assert "already in use" not in err


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
