"""The embedded daemon's retryable-write record pruning drops what SecantusDB's own scan drops.

SecantusDB's ``_prune_retryable_locked`` walks (and past the cap sorts) every record on
every retryable write; ``gateway.embedded_daemon`` replaces it with an oldest-first pop.
Both run here on the same registries, with an injected clock, and must leave the same
records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
from secantus import cli, server, sessions, storage, transactions
from secantus.server import SecantusDBServer

from gateway import embedded_daemon, embedded_expiry, embedded_index_updates

ORIGINAL = transactions.TransactionRegistry._prune_retryable_locked
ORIGINAL_REGISTER = sessions.SessionRegistry.register


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def registry(clock: Clock) -> transactions.TransactionRegistry:
    return transactions.TransactionRegistry(time_func=clock)


def record(reg: transactions.TransactionRegistry, n: int) -> None:
    # records are stored directly (record_retryable would prune on every call)
    reg._retryable[(b"session", n)] = ({"ok": 1.0, "n": n}, reg._time(), b"identity")


def fill(clock: Clock, ages: list[float]) -> transactions.TransactionRegistry:
    """A registry with one record per age (seconds before now), oldest stored first."""
    reg = registry(clock)
    start = clock.now
    for n, age in enumerate(sorted(ages, reverse=True)):
        clock.now = start - age
        record(reg, n)
    clock.now = start
    return reg


LIFETIME = transactions._RETRYABLE_RECORD_LIFETIME_SECONDS


@pytest.mark.parametrize(
    "ages",
    [
        [],
        [1.0, 2.0, 3.0],
        [LIFETIME + 5, LIFETIME + 1, 10.0, 1.0],  # two stale ones at the front
        [LIFETIME + 5, LIFETIME + 4, LIFETIME + 3],  # every record stale
    ],
)
def test_stale_records_go_as_with_the_scan(ages: list[float]) -> None:
    clock = Clock()
    mine, theirs = fill(clock, ages), fill(clock, ages)
    embedded_daemon.prune_retryable_oldest_first(mine)
    ORIGINAL(theirs)
    assert list(mine._retryable) == list(theirs._retryable)
    assert len(mine._retryable) == sum(1 for a in ages if a <= LIFETIME)


def test_past_the_cap_the_oldest_go_as_with_the_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transactions, "_RETRYABLE_RECORD_MAX", 5)
    clock = Clock()
    ages = [float(age) for age in range(9, 0, -1)]  # 9 live records, 4 over the cap
    mine, theirs = fill(clock, ages), fill(clock, ages)
    embedded_daemon.prune_retryable_oldest_first(mine)
    ORIGINAL(theirs)
    assert list(mine._retryable) == list(theirs._retryable)
    assert [n for _, n in mine._retryable] == [4, 5, 6, 7, 8]  # the five newest


def test_the_daemon_installs_it_and_writes_are_still_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(transactions.TransactionRegistry, "_prune_retryable_locked", ORIGINAL)
    monkeypatch.setattr(cli, "SecantusDBServer", cli.SecantusDBServer)
    for patched in ("_prune_locked",):  # install() replaces these too: put back afterwards
        monkeypatch.setattr(
            transactions.TransactionRegistry,
            patched,
            getattr(transactions.TransactionRegistry, patched),
        )
    for patched in (
        "_iter_indexes",
        "list_indexes",
        "get_collection_options",
        "get_profile",
        "prune_ttl",
        "_delete_index_entries",
        "_write_index_entries",
    ):
        monkeypatch.setattr(storage.Storage, patched, getattr(storage.Storage, patched))
    monkeypatch.setattr(server, "dispatch", server.dispatch)
    monkeypatch.setattr(sessions.SessionRegistry, "register", ORIGINAL_REGISTER)
    monkeypatch.setattr(
        transactions, "_strip_per_attempt_fields", transactions._strip_per_attempt_fields
    )
    embedded_daemon.install()
    assert sessions.SessionRegistry.register is embedded_daemon.register_in_access_order
    assert storage.Storage.prune_ttl is embedded_expiry.prune_ttl_by_index
    assert storage.Storage._write_index_entries is embedded_index_updates.write_index_entries
    assert storage.Storage._delete_index_entries is embedded_index_updates.delete_index_entries
    assert transactions._strip_per_attempt_fields is embedded_daemon.strip_per_attempt_fields
    assert (
        transactions.TransactionRegistry._prune_locked is embedded_daemon.reap_idle_without_waiting
    )
    assert (
        transactions.TransactionRegistry._prune_retryable_locked
        is embedded_daemon.prune_retryable_oldest_first
    )
    clock = Clock()
    reg = registry(clock)
    reply = {"ok": 1.0, "n": 1, "nModified": 1}
    reg.record_retryable(b"session", 1, b"identity", reply)
    assert reg.retryable_reply(b"session", 1, b"identity") == reply  # a retry is answered
    clock.now += LIFETIME + 1
    assert reg.retryable_reply(b"session", 1, b"identity") is None  # and forgotten in time


def open_transaction(
    reg: transactions.TransactionRegistry, lsid: bytes
) -> transactions.Transaction:
    txn, error = reg.for_statement(lsid, None, 1, start=True)
    assert error is None and txn is not None
    return txn


def test_idle_transactions_are_reaped_and_busy_ones_are_passed_over_without_waiting() -> None:
    """The server's own reaping took every open transaction's mutex in turn: a statement
    waited for any statement running elsewhere. Here a transaction whose statement holds its
    mutex (in another thread) is passed over at once, and an idle one is still reaped."""
    import threading

    clock = Clock()
    reg = registry(clock)
    idle, busy = open_transaction(reg, b"idle"), open_transaction(reg, b"busy")
    clock.now += transactions.DEFAULT_LIFETIME_SECONDS + 1  # both past their lifetime
    running, release = threading.Event(), threading.Event()

    def statement() -> None:
        with busy.mutex:
            running.set()
            release.wait(10)

    thread = threading.Thread(target=statement)
    thread.start()
    try:
        assert running.wait(10)
        assert embedded_daemon.reap_idle_without_waiting(reg) == 1  # returns: it did not wait
        assert idle.state is transactions.TxnState.ABORTED
        assert busy.state is transactions.TxnState.IN_PROGRESS
    finally:
        release.set()
        thread.join(10)
    assert embedded_daemon.reap_idle_without_waiting(reg) == 1  # idle now: reaped
    assert busy.state is transactions.TxnState.ABORTED


def test_a_transaction_in_use_is_not_reaped() -> None:
    clock = Clock()
    reg = registry(clock)
    txn = open_transaction(reg, b"live")
    clock.now += transactions.DEFAULT_LIFETIME_SECONDS - 1
    assert embedded_daemon.reap_idle_without_waiting(reg) == 0
    assert txn.state is transactions.TxnState.IN_PROGRESS


def lsid(n: int) -> bytes:
    return n.to_bytes(16, "big")


def test_sessions_idle_past_their_ttl_go_as_with_the_walk() -> None:
    """The same registrations (new sessions, old ones used again, time passing beyond the
    TTL) on two registries, one registered as SecantusDB does, one in access order: after
    every registration both know the same sessions."""
    import random

    clock = Clock()
    mine = sessions.SessionRegistry(idle_ttl_seconds=100.0, time_func=clock)
    theirs = sessions.SessionRegistry(idle_ttl_seconds=100.0, time_func=clock)
    rng = random.Random(11)
    dropped = 0
    for step in range(2_000):
        clock.now += rng.choice([0.0, 0.5, 3.0, 40.0])
        session = lsid(rng.randrange(60) if step % 3 else 1_000 + step)  # reused, or new
        embedded_daemon.register_in_access_order(mine, session)
        before = len(theirs._sessions) + (session not in theirs._sessions)
        ORIGINAL_REGISTER(theirs, session)
        dropped += before - len(theirs._sessions)
        assert mine._sessions == theirs._sessions
    assert dropped > 100  # the TTL was crossed many times over


def test_a_malformed_session_id_is_refused_as_by_the_server() -> None:
    registry = sessions.SessionRegistry()
    with pytest.raises(ValueError):
        embedded_daemon.register_in_access_order(registry, b"short")
    assert len(registry) == 0


def test_stopping_wakes_the_thread_waiting_in_accept(tmp_path: Path) -> None:
    """SecantusDB's stop only closed the listening socket and waited 2 s for the accept thread,
    which a close does not wake on Linux; the daemon's stop shuts the socket down first."""
    daemon = embedded_daemon.ShortTransactionServer(storage_path=str(tmp_path / "db"))
    daemon.start()
    accepting = daemon._thread
    assert accepting is not None and accepting.is_alive()
    daemon.stop()
    assert not accepting.is_alive()


def test_the_address_is_asked_of_the_kernel_once_per_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = embedded_daemon.ShortTransactionServer(
        storage_path=str(tmp_path / "db"), host="127.0.0.1", port=0
    )
    with pytest.raises(RuntimeError):
        _ = daemon.address  # not started: SecantusDB's error, as before
    daemon.start()
    try:
        listening = daemon._socket
        assert listening is not None
        expected = listening.getsockname()[:2]
        asked: list[int] = []
        original = SecantusDBServer.address.fget

        def counted(server: Any) -> tuple[str, int]:
            asked.append(1)
            return cast(tuple[str, int], original(server))

        monkeypatch.setattr(SecantusDBServer, "address", property(counted))
        assert [daemon.address for _ in range(5)] == [expected] * 5
        assert daemon.uri == f"mongodb://{expected[0]}:{expected[1]}/"
        assert len(asked) <= 1
    finally:
        daemon.stop()
