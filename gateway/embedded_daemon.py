"""The embedded server's own process: SecantusDB's daemon, with a short transaction lifetime.

``secantusd-py`` keeps an idle transaction open for 60 s (mongod's
``transactionLifetimeLimitSeconds``) and offers no flag to change it. A gateway killed in
the middle of a merge leaves its transaction open, and every later write to the same
documents conflicts until the server reaps it. The gateway's transactions last
milliseconds and never idle (each statement is bounded by ``SCV_DB_TIMEOUT_MS``), so this
process runs the same daemon (``secantus.cli.main``, same flags) with a
:data:`TRANSACTION_LIFETIME_S` lifetime: the server class the daemon builds is given it.

Run as ``python -m gateway.embedded_daemon <secantusd-py flags>``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from secantus import cli
from secantus.server import SecantusDBServer

TRANSACTION_LIFETIME_S = 5.0
# for measuring the difference only (bench/faults.py --transaction-lifetime)
LIFETIME_ENV = "SCV_EMBEDDED_TRANSACTION_LIFETIME_S"


class ShortTransactionServer(SecantusDBServer):  # type: ignore[misc]
    def __init__(self, **options: Any) -> None:
        lifetime = float(os.environ.get(LIFETIME_ENV) or TRANSACTION_LIFETIME_S)
        super().__init__(transaction_lifetime_seconds=lifetime, **options)


def main() -> int:
    cli.SecantusDBServer = ShortTransactionServer
    code: int = cli.main()
    return code


if __name__ == "__main__":
    sys.exit(main())
