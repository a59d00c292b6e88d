"""A bound on the work one GraphQL request may ask for, checked before any resolver runs.

Depth, alias and token limits (schema.py) bound the query text, not its work: 15 aliases
of `videos(first: 100) { ... creator { videos(first: 100) { ... } } }` pass them all and
ask for 150,000 videos. Strawberry has no cost limit (strawberry issue #2988; PR #3721 is
still open), so this is ours, kept small.

The estimate is graphql-query-complexity's "simple estimator": every field costs 1, plus
the cost of its selection multiplied by the list size the field asks for, which here is
its `first` argument (a literal, a variable's value, or the argument's default), capped
at the largest page (the resolvers refuse more, without SQL). Fragments count where they
are spread. Lists without `first` count once (connection `edges` are paged by their
parent's `first`). For example

    videos(first: 100) { edges { node { id creator { handle } } } }

costs 1 + 100 * (1 + (1 + (1 + (1 + 1)))) = 501. A batch costs the sum of its operations
(AuthenticatedGraphQLRouter). Over the limit, the operation is answered with an error
naming its cost and the limit (code COST_LIMIT_EXCEEDED) and nothing executes.
"""

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    value_from_ast_untyped,
)
from graphql.type.introspection import SchemaMetaFieldDef, TypeMetaFieldDef, TypeNameMetaFieldDef
from strawberry.extensions import SchemaExtension

from adapters.graphql.context import MAX_PAGE_SIZE

DEFAULT_MAX_COST = 10_000
SIZE_ARGUMENT = "first"
# Deeper selections are refused by the depth limit anyway; the bound keeps the walk of an
# unvalidated document (a batch's pre-check) from recursing without end.
MAX_WALK_DEPTH = 64
CODE = "COST_LIMIT_EXCEEDED"
_META_FIELDS = {
    "__schema": SchemaMetaFieldDef,
    "__type": TypeMetaFieldDef,
    "__typename": TypeNameMetaFieldDef,
}


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
) -> int:
    """The estimated cost of the operation that `operation_name` selects (0 when none)."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    named = [o for o in operations if o.name and o.name.value == operation_name]
    chosen = operations[0] if operation_name is None and operations else next(iter(named), None)
    if chosen is None:
        return 0
    root = schema.get_root_type(chosen.operation)
    values = {
        v.variable.name.value: value_from_ast_untyped(v.default_value)
        for v in chosen.variable_definitions or ()
        if v.default_value is not None
    }
    values.update(variables or {})
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    return _Walk(schema, fragments, values).cost(root, chosen.selection_set, 0)


class _Walk:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        values: Mapping[str, Any],
    ) -> None:
        self.schema, self.fragments, self.values = schema, fragments, values
        # A fragment costs the same wherever it is spread: computed once, so fragments
        # that spread each other twice per level cost a linear walk, not an exponential one.
        self.fragment_costs: dict[str, int] = {}
        self.visiting: set[str] = set()  # a cycle is a validation error: it counts 0

    def cost(self, parent: Any, selection_set: SelectionSetNode | None, depth: int) -> int:
        if selection_set is None or parent is None or depth > MAX_WALK_DEPTH:
            return 0
        return sum(self._selection(parent, s, depth) for s in selection_set.selections)

    def _selection(self, parent: Any, selection: Any, depth: int) -> int:
        if isinstance(selection, FieldNode):
            field = _field(parent, selection.name.value)
            if field is None:
                return 1  # unknown: validation refuses it
            child = get_named_type(field.type)
            return 1 + self._size(field, selection) * self.cost(
                child, selection.selection_set, depth + 1
            )
        if isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition
            on = self.schema.get_type(condition.name.value) if condition else parent
            return self.cost(on, selection.selection_set, depth + 1)
        if isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name not in self.fragment_costs:
                fragment = self.fragments.get(name)
                if fragment is None or name in self.visiting:
                    return 0
                self.visiting.add(name)
                on = self.schema.get_type(fragment.type_condition.name.value)
                self.fragment_costs[name] = self.cost(on, fragment.selection_set, depth + 1)
                self.visiting.discard(name)
            return self.fragment_costs[name]
        return 0

    def _size(self, field: GraphQLField, node: FieldNode) -> int:
        argument = field.args.get(SIZE_ARGUMENT)
        if argument is None:
            return 1
        given = next((a for a in node.arguments or () if a.name.value == SIZE_ARGUMENT), None)
        if given is None:
            value = argument.default_value
        elif isinstance(given.value, VariableNode):
            value = self.values.get(given.value.name.value, argument.default_value)
        else:
            value = value_from_ast_untyped(given.value)
        if not isinstance(value, int) or isinstance(value, bool):
            return MAX_PAGE_SIZE  # no usable size (refused when coerced): assume the largest
        return min(max(value, 1), MAX_PAGE_SIZE)


def _field(parent: Any, name: str) -> GraphQLField | None:
    if name in _META_FIELDS:
        return _META_FIELDS[name]
    fields = getattr(parent, "fields", None)
    return fields.get(name) if fields is not None else None


def cost_error(cost: int, limit: int, *, batch: bool = False) -> GraphQLError:
    what = "the batch's operations cost" if batch else "the operation costs"
    return GraphQLError(
        f"query cost limit exceeded: {what} {cost}, the limit is {limit} (each field "
        "counts 1, a field's selection counts once per item its `first` asks for); "
        "ask for smaller pages or fewer nested lists",
        extensions={"code": CODE, "cost": cost, "limit": limit},
    )


class CostLimitExtension(SchemaExtension):
    """Refuses an operation whose estimated cost is over `max_cost` before it executes
    (after validation: the document is known good; with the request's variables)."""

    def __init__(self, *, max_cost: int) -> None:
        self.max_cost = max_cost

    def on_execute(self) -> Iterator[None]:  # type: ignore[override]
        ctx = self.execution_context
        if ctx.result is None and ctx.graphql_document is not None:
            cost = operation_cost(
                ctx.schema._schema, ctx.graphql_document, ctx.operation_name, ctx.variables
            )
            if cost > self.max_cost:
                ctx.result = ExecutionResult(data=None, errors=[cost_error(cost, self.max_cost)])
        yield
