"""Static query limits, checked before anything executes: tokens, depth, aliases and cost.

Over any limit the request fails with ``QUERY_TOO_COMPLEX`` and no resolver runs. The
numbers come from the request's context (``context.limits``, filled in by the gateway
from its settings), so :class:`QueryLimiter` is given to the schema as a class and
Strawberry creates one per request.

The static cost of the selected operation, computed from the document and the schema:

* every selected field costs 1;
* a list field multiplies the cost of its subtree by its size: its ``first`` argument
  (literal, variable or the schema's default), else the length of a list argument it is
  given (``contacts(ids: [...])`` returns one item per id), else ``default_list_size``;
* a connection (a type with an ``edges`` list) passes its ``first`` (or its default, or
  ``default_list_size``) down as the size of its ``edges``/``nodes`` lists;
* fragments count once per spread; introspection fields (``__schema``, ``__type``,
  ``__typename``) cost 1 each without list multiplication and do not count toward depth
  (GraphiQL's own introspection query nests ``ofType`` 9 levels deep); introspection is
  bounded instead by graphql-core's ``MaxIntrospectionDepthRule`` (reported with our code).

``cost = 1 + size * cost(children)`` per field, summed over the selection, saturating at
2**53 - 1. For example ``{ searchContacts(query: "a", first: 10) { totalCount edges {
node { id firstName } } } }`` costs ``1 + (1 + (1 + 10 * (1 + 2)))`` = 33.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLArgument,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    NamedTypeNode,
    OperationDefinitionNode,
    SelectionSetNode,
    Undefined,
    get_argument_values,
    get_named_type,
    get_nullable_type,
    get_operation_ast,
    get_variable_values,
    parse,
)
from graphql.error import GraphQLSyntaxError
from graphql.type import SchemaMetaFieldDef, TypeMetaFieldDef, TypeNameMetaFieldDef
from graphql.validation import MaxIntrospectionDepthRule
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from resolvers.errors import QueryTooComplex

CODE = QueryTooComplex.code
COST_CAP = 2**53 - 1  # the largest integer every JSON client reads exactly
NESTING_SLACK = 40  # selection-set levels allowed beyond max_depth (introspection, fragments)
NESTING_CAP = 200  # never recurse deeper than this, whatever the settings say
CONNECTION_LISTS = ("edges", "nodes")
OPERATION_NAME_KEY = "operation_name"  # set in ``context.extras`` for the request log
QUERY_COST_KEY = "query_cost"


@dataclass(frozen=True)
class QueryLimits:
    """The configured maxima; the gateway builds one from its settings."""

    max_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 5000
    max_cost: int = 50_000
    default_list_size: int = 10

    @property
    def max_nesting(self) -> int:
        return min(self.max_depth + NESTING_SLACK, NESTING_CAP)


DEFAULT_LIMITS = QueryLimits()


@dataclass(frozen=True)
class QueryAnalysis:
    """What the static analysis found in the selected operation."""

    operation_name: str | None
    cost: int
    depth: int  # field levels, introspection excluded
    aliases: int  # aliased fields, fragments expanded
    too_deep: bool  # nested beyond ``max_nesting`` (the walk stopped there)

    def errors(self, limits: QueryLimits, node: OperationDefinitionNode) -> list[GraphQLError]:
        found: list[str] = []
        if self.too_deep:
            found.append(f"Query is nested more than {limits.max_nesting} levels deep.")
        elif self.depth > limits.max_depth:
            found.append(f"Query depth {self.depth} exceeds the limit of {limits.max_depth}.")
        if self.aliases > limits.max_aliases:
            found.append(f"Query uses {self.aliases} aliases; the limit is {limits.max_aliases}.")
        if self.cost > limits.max_cost:
            found.append(f"Query cost {self.cost} exceeds the limit of {limits.max_cost}.")
        return [too_complex(message, node) for message in found]


def too_complex(message: str, node: OperationDefinitionNode | None = None) -> GraphQLError:
    return GraphQLError(message, nodes=node, extensions={"code": CODE})


@dataclass(frozen=True)
class _Metrics:
    cost: int = 0
    depth: int = 0
    aliases: int = 0

    def __add__(self, other: _Metrics) -> _Metrics:
        return _Metrics(
            cost=_saturate(self.cost + other.cost),
            depth=max(self.depth, other.depth),
            aliases=self.aliases + other.aliases,
        )


_ZERO = _Metrics()


def _saturate(value: int) -> int:
    return min(value, COST_CAP)


def _is_list(field: GraphQLField) -> bool:
    return isinstance(get_nullable_type(field.type), GraphQLList)


def _is_connection(named: GraphQLNamedType) -> bool:
    if not isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
        return False
    edges = named.fields.get("edges")
    return edges is not None and _is_list(edges)


def _default(argument: GraphQLArgument) -> Any:
    if argument.default is not None and argument.default.value is not Undefined:
        return argument.default.value
    return argument.default_value


_NOT_YET: Any = object()


class _Walker:
    """One pass over the selected operation, fragments expanded once per distinct use."""

    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        variables: Mapping[str, Any] | None,
        operation: OperationDefinitionNode,
        limits: QueryLimits,
    ) -> None:
        self.schema = schema
        self.limits = limits
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.operation = operation
        self.raw_variables = variables
        self.coerced: Any = _NOT_YET  # the variables, coerced when an argument needs them
        self.memo: dict[tuple[str, int | None, bool], _Metrics] = {}
        self.expanding: set[str] = set()
        self.too_deep = False

    def selection_set(
        self,
        node: SelectionSetNode,
        parent: GraphQLNamedType | None,
        *,
        connection: int | None,
        meta: bool,
        level: int,
    ) -> _Metrics:
        if level > self.limits.max_nesting:
            self.too_deep = True
            return _ZERO
        total = _ZERO
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                total += self.field(
                    selection, parent, connection=connection, meta=meta, level=level
                )
            elif isinstance(selection, InlineFragmentNode):
                inner = self._condition(selection.type_condition, parent)
                total += self.selection_set(
                    selection.selection_set,
                    inner,
                    connection=connection,
                    meta=meta,
                    level=level + 1,
                )
            elif isinstance(selection, FragmentSpreadNode):
                total += self.spread(
                    selection, parent, connection=connection, meta=meta, level=level
                )
        return total

    def spread(
        self,
        node: FragmentSpreadNode,
        parent: GraphQLNamedType | None,
        *,
        connection: int | None,
        meta: bool,
        level: int,
    ) -> _Metrics:
        name = node.name.value
        fragment = self.fragments.get(name)
        if fragment is None or name in self.expanding:  # unknown or cyclic: validation says so
            return _ZERO
        key = (name, connection, meta)
        if key not in self.memo:
            self.expanding.add(name)
            try:
                self.memo[key] = self.selection_set(
                    fragment.selection_set,
                    self._condition(fragment.type_condition, parent),
                    connection=connection,
                    meta=meta,
                    level=level + 1,
                )
            finally:
                self.expanding.discard(name)
        return self.memo[key]

    def field(
        self,
        node: FieldNode,
        parent: GraphQLNamedType | None,
        *,
        connection: int | None,
        meta: bool,
        level: int,
    ) -> _Metrics:
        name = node.name.value
        meta = meta or name.startswith("__")
        aliases = 1 if node.alias is not None else 0
        definition = self._field_definition(parent, name)
        if definition is None:  # unknown field: validation reports it
            return _Metrics(cost=1, depth=0 if meta else 1, aliases=aliases)
        named = get_named_type(definition.type)
        size = 1
        inner_connection: int | None = None
        if not meta:
            arguments: dict[str, Any] | None = None
            if _is_list(definition):
                arguments = self._arguments(definition, node)
                if connection is not None and name in CONNECTION_LISTS:
                    size = connection
                else:
                    size = self._list_size(definition, arguments)
            if _is_connection(named):
                if arguments is None:
                    arguments = self._arguments(definition, node)
                inner_connection = self._first(definition, arguments)
                if inner_connection is None:
                    inner_connection = self.limits.default_list_size
        children = _ZERO
        if node.selection_set is not None:
            children = self.selection_set(
                node.selection_set,
                named,
                connection=inner_connection,
                meta=meta,
                level=level + 1,
            )
        return _Metrics(
            cost=_saturate(1 + size * children.cost),
            depth=0 if meta else 1 + children.depth,
            aliases=aliases + children.aliases,
        )

    def _condition(
        self, condition: NamedTypeNode | None, parent: GraphQLNamedType | None
    ) -> GraphQLNamedType | None:
        if condition is None:
            return parent
        return self.schema.get_type(condition.name.value)

    def _field_definition(self, parent: GraphQLNamedType | None, name: str) -> GraphQLField | None:
        if name == "__typename":
            return TypeNameMetaFieldDef
        if parent is not None and parent is self.schema.query_type:
            if name == "__schema":
                return SchemaMetaFieldDef
            if name == "__type":
                return TypeMetaFieldDef
        if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            definition: GraphQLField | None = parent.fields.get(name)
            return definition
        return None

    @property
    def variables(self) -> Any:
        """The coerced variables (None when invalid: validation reports them), coerced once
        and only for the arguments of a list or connection field: a mutation's 500-item input
        is coerced by execution alone."""
        if self.coerced is _NOT_YET:
            coerced = get_variable_values(
                self.schema,
                self.operation.variable_definitions or (),
                dict(self.raw_variables or {}),
            )
            self.coerced = None if isinstance(coerced, list) else coerced
        return self.coerced

    def _arguments(self, definition: GraphQLField, node: FieldNode) -> dict[str, Any]:
        """The arguments as the resolver would see them (defaults applied)."""
        try:
            # variables only matter to the arguments given (no coercion without any)
            return get_argument_values(definition, node, self.variables if node.arguments else None)
        except Exception:  # invalid arguments fail validation; estimate from the defaults
            return {
                name: _default(argument)
                for name, argument in definition.args.items()
                if _default(argument) is not Undefined
            }

    def _first(self, definition: GraphQLField, arguments: Mapping[str, Any]) -> int | None:
        """``first`` as given, or the schema's default when absent or null."""
        first = arguments.get("first")
        if first is None and "first" in definition.args:
            first = _default(definition.args["first"])
        if isinstance(first, int) and not isinstance(first, bool):
            return max(first, 0)
        return None

    def _list_size(self, definition: GraphQLField, arguments: Mapping[str, Any]) -> int:
        first = self._first(definition, arguments)
        if first is not None:
            return first
        lengths = [len(v) for v in arguments.values() if isinstance(v, list)]
        if lengths:
            return max(lengths)
        return self.limits.default_list_size


def analyze(
    schema: GraphQLSchema,
    document: DocumentNode,
    *,
    operation_name: str | None = None,
    variables: Mapping[str, Any] | None = None,
    limits: QueryLimits = DEFAULT_LIMITS,
) -> tuple[OperationDefinitionNode, QueryAnalysis] | None:
    """The static analysis of the operation that would execute; None when there is none."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return None
    root = schema.get_root_type(operation.operation)
    walker = _Walker(schema, document, variables, operation, limits)
    try:
        metrics = walker.selection_set(
            operation.selection_set, root, connection=None, meta=False, level=1
        )
    except RecursionError:
        metrics, walker.too_deep = _ZERO, True
    name = operation.name.value if operation.name is not None else None
    analysis = QueryAnalysis(
        operation_name=name,
        cost=metrics.cost,
        depth=metrics.depth,
        aliases=metrics.aliases,
        too_deep=walker.too_deep,
    )
    return operation, analysis


class MaxIntrospectionDepth(MaxIntrospectionDepthRule):
    """graphql-core's guard against nested introspection, reported as QUERY_TOO_COMPLEX."""

    def report_error(self, error: GraphQLError) -> None:
        error.extensions = {**(error.extensions or {}), "code": CODE}
        super().report_error(error)


def _limit_aborted_parse(error: GraphQLError) -> bool:
    """graphql-core aborts parsing over ``max_tokens`` or when nested too deeply."""
    return isinstance(error, GraphQLSyntaxError) and error.message.endswith("Parsing aborted.")


class QueryLimiter(SchemaExtension):
    """Refuses over-limit operations before execution and reports ``extensions.cost``.

    Give the schema the class: Strawberry makes one per request, and each reads the
    request's ``context.limits`` (a :class:`QueryLimits`; the defaults without one).
    """

    def __init__(self, *, execution_context: Any = None) -> None:
        self.limits = DEFAULT_LIMITS
        self.analysis: QueryAnalysis | None = None

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        limits = getattr(context, "limits", None)
        self.limits = limits if isinstance(limits, QueryLimits) else DEFAULT_LIMITS
        self.execution_context.parse_options["max_tokens"] = self.limits.max_tokens
        yield

    def on_parse(self) -> Iterator[None]:
        execution = self.execution_context
        if execution.graphql_document is None and execution.query:
            # a document seen before is not parsed again (a failing parse is left to
            # Strawberry, so its error is reported and reworded below as usual)
            with contextlib.suppress(GraphQLError):
                execution.graphql_document = _parse_cached(execution.query, self.limits.max_tokens)
        yield
        for error in self.execution_context.pre_execution_errors or ():
            if _limit_aborted_parse(error):
                if "tokens" in error.message:
                    error.message = (
                        f"Query has more than {self.limits.max_tokens} tokens;"
                        f" the limit is {self.limits.max_tokens}."
                    )
                else:
                    error.message = "Query is nested too deeply."
                error.extensions = {"code": CODE}

    def on_validate(self) -> Iterator[None]:
        execution = self.execution_context
        document = execution.graphql_document
        if document is not None:
            found = analyze(
                execution.schema._schema,
                document,
                operation_name=execution.operation_name,
                variables=execution.variables,
                limits=self.limits,
            )
            if found is not None:
                operation, self.analysis = found
                self._record(self.analysis)
                errors = self.analysis.errors(self.limits, operation)
                if errors:
                    # Set before validation runs, so Strawberry skips it and nothing executes.
                    execution.pre_execution_errors = errors
        # graphql-core's guard against nested introspection, but with our code
        rules = [r for r in execution.validation_rules if r is not MaxIntrospectionDepthRule]
        execution.validation_rules = (*rules, MaxIntrospectionDepth)
        if document is not None and execution.pre_execution_errors is None:
            # validation depends only on the schema, the document and the rules: a document
            # seen before (the same object, thanks to the parse cache) is not validated again
            execution.pre_execution_errors = list(
                _validate_cached(execution.schema._schema, document, execution.validation_rules)
            )
        yield

    def _record(self, analysis: QueryAnalysis) -> None:
        extras = getattr(self.execution_context.context, "extras", None)
        if isinstance(extras, dict):
            extras[OPERATION_NAME_KEY] = analysis.operation_name
            extras[QUERY_COST_KEY] = analysis.cost

    def get_results(self) -> dict[str, Any]:
        if self.analysis is None:
            return {}
        return {
            "cost": {
                "requestedQueryCost": self.analysis.cost,
                "maximumAvailable": self.limits.max_cost,
            }
        }


CACHE_SIZE = 256


@lru_cache(maxsize=CACHE_SIZE)
def _parse_cached(query: str, max_tokens: int) -> DocumentNode:
    return parse(query, max_tokens=max_tokens)


@lru_cache(maxsize=CACHE_SIZE)
def _validate_cached(
    schema: GraphQLSchema, document: DocumentNode, rules: tuple[type[ASTValidationRule], ...]
) -> tuple[GraphQLError, ...]:
    return tuple(validate_document(schema, document, rules))
