"""A compiled execution path for plain fields: graphql-core's executor, minus its per-field
machinery where a field is only an attribute read.

A BI page of 1,000 conversations selects some 15 leaf fields per row; graphql-core runs each
one through ``execute_field`` (resolve info, resolver call, awaitable check, value completion
with its null, list and type checks): about 50,000 calls for a page, most of the time it
takes. :class:`PlainFieldsExecutor` plans each selection once per request — the planner
reuses graphql-core's own memoised field collection, so fragments, aliases and
``@skip``/``@include`` are already applied — and evaluates a *plain* field directly:

- a Strawberry field without resolver, permission classes or extensions (graphql-core marks
  its resolver ``_is_default``), without arguments or remaining directives, whose type is a
  leaf (scalar or enum, nullable or not), a list of leaves, or an object or list of objects
  whose own selection is plain in turn and that has no ``is_type_of`` check
  (``IdentifierValue``);
- ``__typename``.

Every other field (resolvers, DataLoaders, permissions, anything async) goes through the
standard ``execute_field`` as before. A plain field whose value does not complete cleanly (a
null for a non-null type, a value the scalar refuses, an object of another type) is handed
back to ``execute_field`` too, which reads the attribute again and raises or nulls exactly as
standard execution does: the response is identical, errors included, which
``tests/schema/test_execution_paths.py`` checks document by document against Strawberry's
standard executor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import EnumMeta
from typing import Any, Final

from graphql import (
    GraphQLEnumType,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.pyutils import Path, Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

__all__ = ["PlainFieldsExecutor"]

TYPENAME: Final = "__typename"
DEFINITION: Final = "strawberry-definition"


class _Unclean(Exception):
    """A plain field's value needs the standard path (which then raises or nulls)."""


@dataclass(frozen=True, slots=True)
class _Step:
    """One response key of a selection: how to compute it, or None for ``execute_field``."""

    key: str
    details: FieldDetailsList
    compute: Callable[[Any], Any] | None


Plan = tuple[_Step, ...]


class PlainFieldsExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor; plain fields are read and completed without ``execute_field``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # id(grouped field set) → (the set, kept alive so its id is not reused; the plan)
        self._plans: dict[int, tuple[GroupedFieldSet, Plan | None]] = {}

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> Any:
        plan = self._plan_for(parent_type, grouped_field_set) if position_context is None else None
        if plan is None:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        results: dict[str, Any] = {}
        standard: dict[str, FieldDetailsList] = {}
        for step in plan:
            if step.compute is not None:
                try:
                    results[step.key] = step.compute(source_value)
                    continue
                except _Unclean:
                    pass
            results[step.key] = None  # keeps the response's key order
            standard[step.key] = step.details
        if not standard:
            return results
        return self._merge(parent_type, source_value, path, standard, results)

    def _merge(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        standard: dict[str, FieldDetailsList],
        results: dict[str, Any],
    ) -> Any:
        """The standard fields of a planned selection, merged into ``results`` in order."""
        done: Any = super().execute_fields(parent_type, source_value, path, standard, None)
        if self.is_awaitable(done):

            async def merged() -> dict[str, Any]:
                return _fill(results, standard, await done)

            return merged()
        return _fill(results, standard, done)

    # --- planning ------------------------------------------------------------------------

    def _plan_for(
        self, parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet
    ) -> Plan | None:
        """The plan of a selection (None: nothing in it is plain), memoised per request."""
        cached = self._plans.get(id(grouped_field_set))
        if cached is not None:
            return cached[1]
        if self.middleware_manager is not None and self.middleware_manager.middlewares:
            plan: Plan | None = None  # field middleware must see every field
        else:
            steps = tuple(
                _Step(key, details, self._compiled(parent_type, details))
                for key, details in grouped_field_set.items()
            )
            plan = steps if any(s.compute is not None for s in steps) else None
        self._plans[id(grouped_field_set)] = (grouped_field_set, plan)
        return plan

    def _compiled(
        self, parent_type: GraphQLObjectType, details: FieldDetailsList
    ) -> Callable[[Any], Any] | None:
        """How to compute a plain field from its parent object, or None if it is not plain."""
        node = details[0].node
        if node.directives or any(d.fragment_variable_values for d in details):
            return None
        name = node.name.value
        if name == TYPENAME:
            type_name = parent_type.name
            return lambda _source: type_name
        field_def = parent_type.fields.get(name)
        if field_def is None or field_def.args or node.arguments:
            return None
        if not getattr(field_def.resolve, "_is_default", False):
            return None
        definition = field_def.extensions.get(DEFINITION)
        attribute = getattr(definition, "python_name", None)
        if not isinstance(attribute, str) or getattr(definition, "base_resolver", None):
            return None
        complete = self._completer(field_def.type, details)
        if complete is None:
            return None
        return _reader(attribute, complete)

    def _completer(
        self, field_type: GraphQLOutputType, details: FieldDetailsList
    ) -> Callable[[Any], Any] | None:
        """The value completion of a type, as graphql-core's ``complete_value`` does it for
        values that complete cleanly; anything else raises ``_Unclean``."""
        if is_non_null_type(field_type):
            assert isinstance(field_type, GraphQLNonNull)
            inner = self._completer(field_type.of_type, details)
            return None if inner is None else _non_null(inner)
        if is_list_type(field_type):
            assert isinstance(field_type, GraphQLList)
            item = self._completer(field_type.of_type, details)
            return None if item is None else _nullable(_list_of(item))
        if is_leaf_type(field_type):
            assert isinstance(field_type, GraphQLLeafType)
            return _nullable(_leaf(field_type))
        if is_object_type(field_type):
            assert isinstance(field_type, GraphQLObjectType)
            if field_type.is_type_of is not None:
                return None  # a type check that may need the resolve info: standard path
            grouped, defers, _ = self.collect_subfields(field_type, details)
            if defers:
                return None
            plan = self._plan_for(field_type, grouped)
            if plan is None or any(step.compute is None for step in plan):
                return None  # only wholly plain objects: no awaitables inside a plain field
            return _nullable(_object(plan))
        return None


def _fill(
    results: dict[str, Any], standard: dict[str, FieldDetailsList], done: dict[str, Any]
) -> dict[str, Any]:
    """``results`` with the standard fields' values in their places (a field graphql-core
    leaves out, it leaves out here too)."""
    for key in standard:
        if key in done:
            results[key] = done[key]
        else:
            del results[key]
    return results


def _reader(attribute: str, complete: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def compute(source: Any) -> Any:
        return complete(getattr(source, attribute))

    return compute


def _non_null(inner: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def complete(value: Any) -> Any:
        completed = inner(value)
        if completed is None:
            raise _Unclean
        return completed

    return complete


def _nullable(inner: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def complete(value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        if isinstance(value, Exception):
            raise _Unclean
        return inner(value)

    return complete


def _leaf(leaf_type: GraphQLLeafType) -> Callable[[Any], Any]:
    coerce = _enum_names(leaf_type) or leaf_type.coerce_output_value

    def complete(value: Any) -> Any:
        try:
            coerced = coerce(value)
        except Exception:
            raise _Unclean from None
        if coerced is None or coerced is Undefined:
            raise _Unclean
        return coerced

    return complete


def _enum_names(leaf_type: GraphQLLeafType) -> Callable[[Any], Any] | None:
    """Strawberry's enum coercion (a scan of the values for the member's value, first match
    wins) as one dict lookup; anything but a member of the enum takes the scan itself."""
    wrapped: Any = getattr(leaf_type, "wrapped_cls", None)
    if not isinstance(leaf_type, GraphQLEnumType) or not isinstance(wrapped, EnumMeta):
        return None
    names: dict[Any, str] = {}  # member → the first name whose value equals its value
    member: Any
    for member in wrapped:
        for name, enum_value in leaf_type.values.items():
            if member.value == enum_value.value:
                names[member] = name
                break
    coerce = leaf_type.coerce_output_value

    def coerce_member(value: Any) -> Any:
        if type(value) is wrapped and value in names:
            return names[value]
        return coerce(value)

    return coerce_member


def _list_of(item: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def complete(value: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise _Unclean  # other iterables (and errors for non-iterables): the standard path
        return [item(element) for element in value]

    return complete


def _object(plan: Plan) -> Callable[[Any], Any]:
    steps = [(step.key, step.compute) for step in plan if step.compute is not None]

    def complete(value: Any) -> Any:
        return {key: compute(value) for key, compute in steps}

    return complete
