"""GraphQL access control: every root field is checked against GRAPHQL_POLICY for the
caller's role, sensitive nested fields by a permission class, and every operation (each
one of a batch, each subscription) is charged to the caller's rate-limit bucket."""

from collections.abc import Iterator
from typing import Any
from uuid import UUID

from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from strawberry.extensions import SchemaExtension
from strawberry.permission import BasePermission
from strawberry.types import Info

from adapters.auth.policy import GRAPHQL_FIELD_POLICY, GRAPHQL_POLICY, INTROSPECTION
from adapters.auth.principal import Principal, Role
from adapters.auth.ratelimit import RateLimited
from adapters.graphql.context import UserError


class Forbidden(UserError):
    def __init__(self, message: str) -> None:
        super().__init__(message, code="FORBIDDEN")


def _root_fields(selection_set: SelectionSetNode, fragments: dict[str, Any]) -> Iterator[str]:
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection.name.value
        elif isinstance(selection, InlineFragmentNode):
            yield from _root_fields(selection.selection_set, fragments)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                yield from _root_fields(fragment.selection_set, fragments)


def root_fields(document: Any, operation_name: str | None) -> tuple[str, list[str]]:
    """(root type name, root field names) of the operation that will run."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {d.name.value: d for d in document.definitions if hasattr(d, "type_condition")}
    chosen = next(
        (
            o
            for o in operations
            if operation_name is None or (o.name and o.name.value == operation_name)
        ),
        operations[0] if operations else None,
    )
    if chosen is None:
        return "Query", []
    root = chosen.operation.value.capitalize()
    return root, list(dict.fromkeys(_root_fields(chosen.selection_set, fragments)))


def _error(message: str, **extensions: Any) -> ExecutionResult:
    return ExecutionResult(data=None, errors=[GraphQLError(message, extensions=extensions)])


class AccessExtension(SchemaExtension):
    """Runs before execution: unauthenticated -> UNAUTHENTICATED, a root field the role may
    not read -> FORBIDDEN (nothing runs), an empty bucket -> RATE_LIMITED (HTTP 429 with
    Retry-After over HTTP)."""

    def on_execute(self) -> Iterator[None]:  # type: ignore[override]
        ctx = self.execution_context
        context = ctx.context
        auth = getattr(context, "auth", None)
        if auth is None:  # schema used without the HTTP router (scripts)
            yield
            return
        principal: Principal | None = getattr(context, "principal", None)
        if principal is None:
            ctx.result = _error("credentials required", code="UNAUTHENTICATED")
            yield
            return
        root, fields = root_fields(ctx.graphql_document, ctx.operation_name)
        table = GRAPHQL_POLICY.get(root, {})
        denied = [
            f for f in fields if f not in INTROSPECTION and principal.role not in table.get(f, ())
        ]
        if denied:
            ctx.result = _error(
                f"role {principal.role.value} may not read {root}.{', '.join(denied)}",
                code="FORBIDDEN",
                fields=denied,
            )
            yield
            return
        try:
            auth.charge(principal)
        except RateLimited as e:
            response = getattr(context, "response", None)
            if response is not None:  # over HTTP: a real 429
                response.status_code = 429
                response.headers["Retry-After"] = e.header
            ctx.result = _error(str(e), code="RATE_LIMITED", retryAfter=e.header)
        yield


def principal_of(info: Info[Any, Any]) -> Principal | None:
    return getattr(info.context, "principal", None)


def check_creator_owns(info: Info[Any, Any], creator_id: UUID) -> None:
    """Object-level check: a creator reads only its own moderation cases."""
    who = principal_of(info)
    if who is not None and who.role is Role.CREATOR and who.subject_id != creator_id:
        raise Forbidden("a creator key may read only its own moderation cases")


def field_permission(field: str) -> type[BasePermission]:
    """A permission class for a nested field listed in GRAPHQL_FIELD_POLICY."""
    roles = GRAPHQL_FIELD_POLICY[field]

    class RolePermission(BasePermission):
        message = f"{field} is visible to {', '.join(sorted(roles))} only"
        error_class = Forbidden

        def has_permission(self, source: Any, info: Info[Any, Any], **kwargs: Any) -> bool:
            who = principal_of(info)
            if getattr(info.context, "auth", None) is None:
                return True  # schema used without the HTTP router
            return who is not None and who.role in roles

    RolePermission.__name__ = f"{field.replace('.', '')}Permission"
    return RolePermission
