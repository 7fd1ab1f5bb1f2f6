"""recordWebEvents takes its events as GraphQL coerced them (``schema.web._as_coerced``):
the same mappings ``to_patch`` rebuilds from Strawberry's input objects, field for field,
whether the events come as variables or inline."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from graphql import OperationDefinitionNode, get_argument_values, parse
from graphql.execution.values import get_variable_values
from strawberry.types.arguments import convert_argument
from strawberry.types.base import get_object_definition

from schema import limits
from schema.inputs import to_patch
from schema.schema import schema
from schema.web import WebEventInput

EVENTS: list[dict[str, Any]] = [
    {
        "cookie": "gc-1",
        "type": "FORM_SUBMIT",
        "at": "2026-11-01T09:00:00Z",
        "eventId": "ev-1",
        "url": None,
        "title": "Contact us",
        "attributes": [{"key": "sku", "value": "PH-12"}],
        "provided": {
            "firstName": "Alexis",
            "workEmail": "alexis@example.com",
            "address": {"city": "Columbia", "line1": None},
            "externalIds": [{"source": "crm", "value": "42"}],
            "surveyOptOut": True,
        },
    },
    {"cookie": "gc-2", "type": "PAGE_VIEW", "at": "2026-11-01T09:00:01.5+02:00", "eventId": 7},
    {"cookie": "gc-3", "type": "CUSTOM", "at": "2026-11-01T09:00:02Z", "attributes": None},
]

INLINE = """mutation { recordWebEvents(events: [
  {cookie: "gc-1", type: FORM_SUBMIT, at: "2026-11-01T09:00:00Z", eventId: "ev-1", url: null,
   title: "Contact us", attributes: [{key: "sku", value: "PH-12"}],
   provided: {firstName: "Alexis", workEmail: "alexis@example.com",
              address: {city: "Columbia", line1: null},
              externalIds: [{source: "crm", value: "42"}], surveyOptOut: true}},
  {cookie: "gc-2", type: PAGE_VIEW, at: "2026-11-01T09:00:01.5+02:00", eventId: 7},
  {cookie: "gc-3", type: CUSTOM, at: "2026-11-01T09:00:02Z", attributes: null}
]) { accepted } }"""


@pytest.fixture
def strawberry_objects() -> Iterator[Any]:
    """Strawberry's own conversion, with the hook off for the test's duration."""
    definition = get_object_definition(WebEventInput, strict=True)
    hook, definition.from_input = definition.from_input, None
    registry = schema.schema_converter.scalar_registry

    def build(value: Any) -> Any:
        return convert_argument(value, WebEventInput, registry, schema.config)

    try:
        yield build
    finally:
        definition.from_input = hook


def coerced_from_variables() -> list[Any]:
    operation = parse(
        "mutation($e: [WebEventInput!]!) { recordWebEvents(events: $e) { accepted } }"
    )
    [definition] = operation.definitions
    assert isinstance(definition, OperationDefinitionNode)
    declared = definition.variable_definitions or ()
    values = get_variable_values(schema._schema, declared, {"e": EVENTS})
    assert not isinstance(values, list), values  # not a list of errors
    events: list[Any] = values.coerced["e"]
    return events


def coerced_inline() -> list[Any]:
    [definition] = parse(INLINE).definitions
    assert isinstance(definition, OperationDefinitionNode)
    [field] = definition.selection_set.selections
    mutation = schema._schema.mutation_type
    assert mutation is not None
    arguments = get_argument_values(mutation.fields["recordWebEvents"], field, None)  # type: ignore[arg-type]
    events: list[Any] = arguments["events"]
    return events


@pytest.mark.parametrize("coerced", [coerced_from_variables, coerced_inline])
def test_coerced_events_are_what_to_patch_rebuilds(coerced: Any, strawberry_objects: Any) -> None:
    events = coerced()
    assert [to_patch(strawberry_objects(e)) for e in events] == events
    assert events[1]["eventId"] == "7" and "url" not in events[1]  # an ID; omitted: absent
    assert events[2]["attributes"] is None  # an explicit null stays


def test_the_query_limiter_leaves_a_batch_to_execution(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cost analysis coerces variables only for arguments it reads (a list or connection
    field's): a batch of events is coerced once, by execution, not twice."""
    calls: list[Any] = []
    coerce = get_variable_values

    def counted(*args: Any) -> Any:
        calls.append(args)
        return coerce(*args)

    monkeypatch.setattr(limits, "get_variable_values", counted)
    record = (
        "mutation($e: [WebEventInput!]!) { recordWebEvents(events: $e) { accepted contactIds } }"
    )
    found = limits.analyze(schema._schema, parse(record), variables={"e": EVENTS * 100})
    assert found is not None and not found[1].too_deep
    assert calls == []
    page = 'query($n: Int) { searchContacts(query: "a", first: $n) { edges { node { id } } } }'
    found = limits.analyze(schema._schema, parse(page), variables={"n": 7})
    assert found is not None and len(calls) == 1  # a page's `first` is read as given
