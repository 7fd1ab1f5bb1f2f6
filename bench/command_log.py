"""Counting database commands per GraphQL query: shared by the benchmark and the tests.

``tests/schema/test_command_counts.py`` asserts on a small data set what ``python -m bench``
reports on a large one, with the same listener and the same two queries, so the two numbers
are comparable: a query costs a constant number of commands per nesting level.
"""

from __future__ import annotations

from pymongo.monitoring import (
    CommandFailedEvent,
    CommandListener,
    CommandStartedEvent,
    CommandSucceededEvent,
)

# commands that are not the query's own work
NOISE = frozenset(
    {"hello", "ismaster", "isMaster", "ping", "endSessions", "buildInfo", "saslStart"}
)


class CommandLog(CommandListener):
    """Every database command a client sends (handshakes and pings left out)."""

    def __init__(self) -> None:
        self.events: list[CommandStartedEvent] = []

    def started(self, event: CommandStartedEvent) -> None:
        if event.command_name not in NOISE:
            self.events.append(event)

    def succeeded(self, event: CommandSucceededEvent) -> None:
        pass

    def failed(self, event: CommandFailedEvent) -> None:
        pass

    def clear(self) -> None:
        self.events.clear()

    def names(self, *, get_more: bool = True) -> list[str]:
        """``name:collection`` of each command (``aggregate:1`` is a database aggregate)."""
        found = []
        for event in self.events:
            if event.command_name == "getMore" and not get_more:
                continue
            target = event.command.get(event.command_name)
            if event.command_name == "getMore":
                target = event.command.get("collection")
            found.append(f"{event.command_name}:{target}")
        return found

    def count(self, *, get_more: bool = True) -> int:
        return len(self.names(get_more=get_more))


# A BI pull: conversations with their contact, individual, its merge set and identifiers.
BI_QUERY = """
query Pull($first: Int!) {
  conversations(first: $first) {
    edges { node {
      id startedAt channel
      contact { id }
      individual { id mergeSet { contactIds } identifiers { value } }
    } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
BI_LEVELS = 2  # node.contact/individual, then individual.mergeSet/identifiers
# the page itself: the org's density of the day before (its hour count buckets), sizing the
# first time window, and that window; then one command per level
BI_BUDGET = 2 + BI_LEVELS

# A journey tab: the journey's summary and a page of its conversations with their contacts.
JOURNEY_QUERY = """
query Journey($id: ID!, $first: Int!) {
  journey(contactId: $id) {
    contact { id firstName }
    contactIds conversationCount channels
    conversations(first: $first) {
      edges { node {
        id startedAt
        contact { id firstName readOnly }
        individual { id mergeSet { contactIds size } }
      } }
    }
  }
}
"""
JOURNEY_LEVELS = 4  # journey, its fields (summary), node.contact/individual, mergeSet
JOURNEY_BUDGET = 1 + JOURNEY_LEVELS  # the contact's link, then one command per level
