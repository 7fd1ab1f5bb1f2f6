"""The embedded server's own process: SecantusDB's daemon, with a short transaction lifetime.

``secantusd-py`` keeps an idle transaction open for 60 s (mongod's
``transactionLifetimeLimitSeconds``) and offers no flag to change it. A gateway killed in
the middle of a merge leaves its transaction open, and every later write to the same
documents conflicts until the server reaps it. The gateway's transactions last
milliseconds and never idle (each statement is bounded by ``SCV_DB_TIMEOUT_MS``), so this
process runs the same daemon (``secantus.cli.main``, same flags) with a
:data:`TRANSACTION_LIFETIME_S` lifetime: the server class the daemon builds is given it.

It also prunes the server's retryable-write records oldest first instead of by a scan:
SecantusDB keeps each retryable write's reply (up to 10,000, 30 minutes) and, on every
retryable write, walks every record for stale ones and, past the cap, sorts them all to
evict the oldest. Under ingest that walk was a quarter of the server's CPU (py-spy, GIL
samples of a 10-client ingest loop: 23.6 % in the list comprehension alone), growing with
the records kept. Records are kept in the order they were stored (a dict's order), so the
oldest are at the front: :func:`prune_retryable_oldest_first` drops stale ones and the
excess over the cap from there, the same records the scan drops, in O(1) amortised.

Sessions are registered the same way (:func:`register_in_access_order`): SecantusDB walked
every known session for idle ones on each command. The reply kept for each retryable write
is copied without ``copy.deepcopy`` (:func:`strip_per_attempt_fields`, 3 % of the server's
GIL samples under ``make load`` before).

Stopping wakes the thread blocked in ``accept`` instead of waiting 2 s for it
(:meth:`ShortTransactionServer.stop`), and the main thread, which alone runs signal
handlers, wakes to run them (:meth:`ShortTransactionServer.wait`): the server exits within
milliseconds of SIGTERM, whichever of its threads the kernel gave it to.

More changes make it serve concurrent clients (``make load``: 50 clients):

* Idle transactions are reaped without waiting (:func:`reap_idle_without_waiting`). The
  server looked for them on every statement, commit and abort by taking each open
  transaction's mutex in turn under its registry's one lock, so every statement waited for
  whatever statement or commit was running anywhere.
* Catalog reads are cached (``gateway/embedded_catalog.py``), and the interpreter hands
  the GIL over every :data:`SWITCH_INTERVAL_S` instead of every 5 ms: the server runs a
  thread per connection behind shared locks, and a thread holding a collection's lock
  waited up to a switch interval for the GIL each time it gave it up, while the threads
  queued behind that lock waited for it (``make load``, 15 s runs: 65-95 req/s with
  multi-second tails and ``SERVICE_UNAVAILABLE`` answers before; see the README).
* Tables are created with a :data:`PAGE_MEMORY_MAX` in-memory page limit instead of
  WiredTiger's 5 MB. Every index entry of every collection lives in one table, whose hot
  pages (the newest keys of an org's contacts) outgrew 5 MB of updates that the open
  transactions still pinned; WiredTiger then kept trying to evict them, and every reader
  and writer of the page slept in ``__wt_page_in_func`` (py-spy ``--native``: the holder of
  the ``contacts`` lock in ``__wt_sleep``, the machine idle) until its transaction timed out.
  In 60 s ``make load`` runs that collapse came in every run (32-37 req/s, 400+
  ``SERVICE_UNAVAILABLE``); with the limit, none (about 140 req/s, 0 errors). Tables of a
  data directory created before keep the limit they were created with.

Run as ``python -m gateway.embedded_daemon <secantusd-py flags>``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Callable
from typing import Any

import wiredtiger  # type: ignore[import-untyped]
from secantus import cli, sessions, transactions
from secantus.server import SecantusDBServer

from gateway.embedded_catalog import CatalogCache
from gateway.embedded_catalog import install as install_catalog_cache
from gateway.embedded_copy import copy_document
from gateway.embedded_expiry import install as install_expiry_by_index
from gateway.embedded_index_updates import install as install_index_updates_by_change

TRANSACTION_LIFETIME_S = 5.0
SWITCH_INTERVAL_S = 0.001
PAGE_MEMORY_MAX = "256MB"
SIGNAL_CHECK_S = 0.2
# for measuring the difference only (bench/faults.py --transaction-lifetime)
LIFETIME_ENV = "SCV_EMBEDDED_TRANSACTION_LIFETIME_S"


class ShortTransactionServer(SecantusDBServer):  # type: ignore[misc]
    def __init__(self, **options: Any) -> None:
        lifetime = float(os.environ.get(LIFETIME_ENV) or TRANSACTION_LIFETIME_S)
        super().__init__(transaction_lifetime_seconds=lifetime, **options)
        self._known_address: tuple[socket.socket, tuple[str, int]] | None = None

    def stop(self) -> None:
        """The accept thread is woken first. SecantusDB only closes the listening socket,
        which on Linux leaves a thread blocked in ``accept`` asleep, then waits 2 s for it:
        every stop took 2 s longer, and a gateway killed and started again at once waited
        for that too."""
        listening = self._socket
        if listening is not None:
            with contextlib.suppress(OSError):
                listening.shutdown(socket.SHUT_RDWR)
        super().stop()

    @property
    def address(self) -> tuple[str, int]:
        """The listening socket's address, asked of the kernel once per socket: SecantusDB
        reads it for every message it receives (``getsockname``, 1.2 % of the server's GIL
        samples under ``make load``). Not started (or stopped): its RuntimeError, as before."""
        listening = self._socket
        known = self._known_address
        if listening is not None and known is not None and known[0] is listening:
            return known[1]
        address: tuple[str, int] = super().address
        self._known_address = (listening, address)
        return address

    def wait(self) -> None:
        """The main thread wakes every :data:`SIGNAL_CHECK_S` to run signal handlers. Python
        runs them only in the main thread, and a blocking wait is only interrupted when the
        kernel hands the signal to that thread: a SIGTERM taken by a connection thread (as
        after the process was stopped and continued, a paused container for one) was never
        acted on, and the server outlived its gateway."""
        while not self._stop_event.wait(SIGNAL_CHECK_S):
            pass


def prune_retryable_oldest_first(registry: Any) -> None:
    """``TransactionRegistry._prune_retryable_locked`` (called under the registry's lock):
    records past their lifetime, then the oldest beyond the cap, taken from the front of the
    insertion-ordered map until the oldest left is live and the map is within the cap.

    A record stored again under the same key keeps its place (a driver's retry is answered
    from the record, so that is rare); a stale record behind it then waits for it to go."""
    records = registry._retryable
    cutoff = registry._time() - transactions._RETRYABLE_RECORD_LIFETIME_SECONDS
    cap = transactions._RETRYABLE_RECORD_MAX
    while records:
        oldest = next(iter(records))
        if len(records) <= cap and records[oldest][1] >= cutoff:
            return
        del records[oldest]


def strip_per_attempt_fields(reply: dict[str, Any]) -> dict[str, Any]:
    """``transactions._strip_per_attempt_fields``: the reply kept for a retryable write's
    retry, without the fields that belong to the first attempt only, copied by
    :func:`copy_document` instead of ``copy.deepcopy``."""
    stripped: dict[str, Any] = copy_document(reply)
    stripped.pop("writeConcernError", None)
    stripped.pop("errorLabels", None)
    return stripped


def register_in_access_order(registry: Any, lsid_bytes: bytes) -> None:
    """``SessionRegistry.register`` (run for the session of every command): note the
    session's last access and drop sessions idle past the registry's TTL. SecantusDB walked
    every session for idle ones on each call; here a session moves to the end of the map when
    it is used, so the map is in order of last access and idle ones are taken from its front,
    the same sessions the walk drops while the clock runs forward."""
    if not isinstance(lsid_bytes, bytes) or len(lsid_bytes) != 16:
        raise ValueError("lsid must be a 16-byte UUID payload")
    last_access = registry._sessions
    with registry._lock:
        moment = registry._time()
        last_access.pop(lsid_bytes, None)
        last_access[lsid_bytes] = moment
        cutoff = moment - registry._idle_ttl
        while True:
            oldest = next(iter(last_access))
            if last_access[oldest] >= cutoff:
                return
            del last_access[oldest]


def reap_idle_without_waiting(registry: Any) -> int:
    """``TransactionRegistry._prune_locked`` (called under the registry's lock on every
    statement, commit and abort): abort the transactions idle past their lifetime, passing
    over any whose mutex is held: a transaction running a statement or committing is not
    idle. Returns how many it aborted."""
    cutoff = registry._time() - registry._lifetime
    reaped = 0
    for txn in list(registry._txns.values()):
        if txn.state is not transactions.TxnState.IN_PROGRESS or txn.last_use >= cutoff:
            continue  # read without its mutex: a stale view only puts the reaping off
        if not txn.mutex.acquire(blocking=False):
            continue
        try:
            if txn.state is transactions.TxnState.IN_PROGRESS and txn.last_use < cutoff:
                registry._rollback_quietly(txn)
                txn.state = transactions.TxnState.ABORTED
                reaped += 1
        finally:
            txn.mutex.release()
    return reaped


def with_page_memory(config: str | None) -> str:
    """A table's WiredTiger configuration with :data:`PAGE_MEMORY_MAX` as its in-memory page
    limit (the last value of a key wins in a WiredTiger configuration string)."""
    setting = f"memory_page_max={PAGE_MEMORY_MAX}"
    return f"{config},{setting}" if config else setting


def create_with_page_memory(original: Callable[..., Any]) -> Callable[..., Any]:
    """``wiredtiger.Session.create``, giving every table it creates :func:`with_page_memory`."""

    def create(session: Any, name: str, config: str | None = None) -> Any:
        if name.startswith("table:"):
            config = with_page_memory(config)
        return original(session, name, config)

    return create


def install() -> None:
    """The daemon's server class, retryable-record pruning, idle-transaction reaping,
    session registration, catalog cache, TTL sweep and index updates (also used by the
    tests)."""
    cli.SecantusDBServer = ShortTransactionServer
    registry = transactions.TransactionRegistry
    registry._prune_retryable_locked = prune_retryable_oldest_first
    registry._prune_locked = reap_idle_without_waiting
    sessions.SessionRegistry.register = register_in_access_order
    transactions._strip_per_attempt_fields = strip_per_attempt_fields
    install_catalog_cache(CatalogCache())
    install_expiry_by_index()
    install_index_updates_by_change()
    if not getattr(wiredtiger.Session.create, "with_page_memory", False):
        wiredtiger.Session.create = create_with_page_memory(wiredtiger.Session.create)
        wiredtiger.Session.create.with_page_memory = True


def main() -> int:
    install()
    code: int = cli.main()
    return code


if __name__ == "__main__":
    sys.exit(main())
