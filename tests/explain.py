"""Index-only commands, checked: capture every command a client sends, then ``explain`` each.

``ExplainLog`` is a PyMongo ``CommandListener`` that keeps every read (find, aggregate,
count, distinct) and every write filter (update, delete, findAndModify) a client sends,
including those inside transactions. ``offenders`` explains each one on the server as a
``find`` with the same filter and sort (verbosity ``executionStats``, outside any
transaction) and reports the commands that

- are a ``COLLSCAN``;
- examine more than ``max(2 * returned, returned + 10)`` documents, where ``returned`` is
  what the command hands back after its limit (the embedded server's ``nReturned`` counts
  every match, before the limit);
- count more than ``MAX_COUNTED`` documents (``count``, ``count_documents`` and aggregates
  that ``$group`` or ``$count`` their matches).

Database-level aggregates (``$documents`` joined with ``$lookup`` on ``_id``) are point
lookups by construction; a ``$lookup`` on any other field is an offender. Change streams
are not queries and are left out.

Every feature adds its operations to the battery in ``tests/schema/test_explain.py``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.monitoring import (
    CommandFailedEvent,
    CommandListener,
    CommandStartedEvent,
    CommandSucceededEvent,
)

from resolvers.store import Doc

MAX_COUNTED = 1000
READS = {"find", "aggregate", "count", "distinct"}
WRITES = {"update", "delete", "findAndModify"}


@dataclass(frozen=True)
class Probe:
    """One read, or one write's filter, as the server would plan it."""

    command: str
    collection: str
    filter: Doc
    sort: Doc | None
    limit: int  # 0: no limit

    @property
    def shape(self) -> str:
        sort = ",".join(f"{k}:{v}" for k, v in (self.sort or {}).items())
        limited = "limit" if self.limit else "all"
        return f"{self.command} {self.collection} {_shape(self.filter)} sort({sort}) {limited}"


@dataclass(frozen=True)
class Verdict:
    probe: Probe
    stage: str
    examined: int
    returned: int
    problem: str | None

    def line(self) -> str:
        return (
            f"{self.problem or 'ok'}: examined {self.examined}, returned {self.returned}, "
            f"{self.stage} — {self.probe.shape}"
        )


class ExplainLog(CommandListener):
    """The reads and write filters a client sends, in order (handshakes left out)."""

    def __init__(self) -> None:
        self.probes: list[Probe] = []
        self.lookups: list[Doc] = []
        self.enabled = True

    def started(self, event: CommandStartedEvent) -> None:
        if self.enabled and event.command_name in READS | WRITES:
            self.probes.extend(self._probes(event.command_name, copy.deepcopy(event.command)))

    def succeeded(self, event: CommandSucceededEvent) -> None:
        pass

    def failed(self, event: CommandFailedEvent) -> None:
        pass

    def clear(self) -> None:
        self.probes.clear()
        self.lookups.clear()

    def _probes(self, name: str, command: Mapping[str, Any]) -> list[Probe]:
        target = command.get(name)
        if name == "aggregate":
            return self._aggregate(target, list(command.get("pipeline") or []))
        assert isinstance(target, str), command
        if name == "find":
            limit = int(command.get("limit") or 0)
            if command.get("singleBatch") and not limit:
                limit = int(command.get("batchSize") or 0)
            return [
                Probe(name, target, dict(command.get("filter") or {}), command.get("sort"), limit)
            ]
        if name in ("count", "distinct"):
            return [Probe(name, target, dict(command.get("query") or {}), None, 0)]
        if name == "findAndModify":
            return [Probe(name, target, dict(command.get("query") or {}), command.get("sort"), 1)]
        if name == "update":
            return [
                Probe(name, target, dict(u["q"]), None, 0 if u.get("multi") else 1)
                for u in command.get("updates") or []
            ]
        return [  # delete
            Probe(name, target, dict(d["q"]), None, int(d.get("limit") or 0))
            for d in command.get("deletes") or []
        ]

    def _aggregate(self, target: Any, pipeline: list[Doc]) -> list[Probe]:
        self.lookups.extend(_lookups(pipeline))
        if not pipeline or "$changeStream" in pipeline[0]:
            return []
        if not isinstance(target, str):
            assert "$documents" in pipeline[0], pipeline  # a database aggregate: point lookups
            return []
        first = pipeline[0].get("$match")
        if first is None:
            return [Probe("aggregate", target, {}, None, 0)]
        limit = next((int(s["$limit"]) for s in pipeline[1:] if "$limit" in s), 0)
        if any(set(s) & {"$group", "$count"} for s in pipeline[1:]):
            return [Probe("count", target, dict(first), None, 0)]  # counts or sums matches
        return [Probe("aggregate", target, dict(first), None, limit)]


def _lookups(pipeline: Iterable[Any]) -> list[Doc]:
    """Every ``$lookup`` stage of a pipeline, those inside ``$facet`` included."""
    found: list[Doc] = []
    for stage in pipeline:
        if not isinstance(stage, Mapping):
            continue
        if "$lookup" in stage:
            found.append(dict(stage["$lookup"]))
        if "$facet" in stage:
            for branch in stage["$facet"].values():
                found.extend(_lookups(branch))
    return found


def _shape(value: Any) -> str:
    """The filter with its values replaced by their types: one shape per query form."""
    if isinstance(value, Mapping):
        inner = ", ".join(f"{k}: {_shape(v)}" for k, v in value.items())
        return "{" + inner + "}"
    if isinstance(value, list):
        kinds = sorted({_shape(v) for v in value})
        return "[" + "|".join(kinds) + "]"
    return type(value).__name__


def _stages(plan: Any) -> list[str]:
    found: list[str] = []
    if isinstance(plan, Mapping):
        if isinstance(plan.get("stage"), str):
            found.append(plan["stage"])
        for value in plan.values():
            found.extend(_stages(value))
    elif isinstance(plan, list):
        for item in plan:
            found.extend(_stages(item))
    return found


async def verdict(db: AsyncDatabase[Doc], probe: Probe) -> Verdict:
    """Explain the probe as a find with its filter and sort; judge what the server did."""
    find: Doc = {"find": probe.collection, "filter": probe.filter}
    if probe.sort:
        find["sort"] = probe.sort
    reply = await db.command({"explain": find, "verbosity": "executionStats"})
    stats = reply["executionStats"]
    stages = _stages(reply["queryPlanner"]["winningPlan"])
    stage = "COLLSCAN" if "COLLSCAN" in stages else "IXSCAN"
    matched = int(stats["nReturned"])
    examined = int(stats["totalDocsExamined"])
    returned = min(matched, probe.limit) if probe.limit else matched
    problem: str | None = None
    if stage == "COLLSCAN":
        problem = "COLLSCAN"
    elif probe.command == "count" and examined > MAX_COUNTED:
        problem = f"count reads more than {MAX_COUNTED}"
    elif examined > max(2 * returned, returned + 10):
        problem = "examines too many"
    return Verdict(probe, stage, examined, returned, problem)


async def verdicts(db: AsyncDatabase[Doc], log: ExplainLog, per_shape: int = 25) -> list[Verdict]:
    """One verdict per captured command (at most ``per_shape`` of each shape)."""
    seen: dict[str, int] = {}
    found: list[Verdict] = []
    for probe in log.probes:
        seen[probe.shape] = seen.get(probe.shape, 0) + 1
        if seen[probe.shape] <= per_shape:
            found.append(await verdict(db, probe))
    for lookup in log.lookups:
        if lookup.get("foreignField") != "_id":
            probe = Probe("$lookup", str(lookup.get("from")), {}, None, 0)
            found.append(Verdict(probe, "LOOKUP", 0, 0, f"$lookup on {lookup.get('foreignField')}"))
    return found


def report(found: list[Verdict], limit: int = 100) -> str:
    """The worst offender of each shape first (most documents examined per returned)."""
    worst: dict[str, Verdict] = {}
    for item in found:
        if item.problem is None:
            continue
        current = worst.get(item.probe.shape)
        if current is None or item.examined > current.examined:
            worst[item.probe.shape] = item
    ranked = sorted(worst.values(), key=lambda v: v.examined - v.returned, reverse=True)
    shapes = len({v.probe.shape for v in found})
    lines = [f"{len(ranked)} of {shapes} distinct commands are offenders:"]
    lines += [v.line() for v in ranked[:limit]]
    return "\n".join(lines)


def as_json(value: Any) -> str:
    return json.dumps(value, default=str)
