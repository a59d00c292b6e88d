"""Schema extensions: read-your-writes waits and error masking."""

from collections.abc import AsyncIterator

from graphql import ExecutionResult, GraphQLError
from strawberry.extensions import MaskErrors, SchemaExtension

from adapters.graphql.consistency import ConsistencyWaiter
from adapters.graphql.context import GraphQLContext, UserError


class ConsistencyExtension(SchemaExtension):
    """Before executing, wait (bounded, holding no thread: adapters/graphql/consistency.py)
    until every projection reached the client's consistency token; otherwise answer with
    an error naming the lag, without executing."""

    async def on_execute(self) -> AsyncIterator[None]:  # type: ignore[override]
        from adapters.observability.metrics import GRAPHQL_OPERATIONS

        operation = self.execution_context.operation_type
        GRAPHQL_OPERATIONS.labels(getattr(operation, "value", str(operation))).inc()
        context = self.execution_context.context
        token = getattr(context, "consistency_token", None)
        if getattr(context, "token_error", None):
            self.execution_context.result = ExecutionResult(
                data=None,
                errors=[
                    GraphQLError(context.token_error, extensions={"code": "BAD_CONSISTENCY_TOKEN"})
                ],
            )
        if isinstance(context, GraphQLContext) and token is not None:
            container = context.container
            timeout = container.settings.consistency_timeout_seconds
            waiter = ConsistencyWaiter.of(container.projections)
            positions = await waiter.wait(container.projections.names, token, timeout)
            behind = {n: p for n, p in positions.items() if p < token}
            missing = [n for n in container.projections.names if n not in positions]
            if behind or missing:
                lag = {n: token - positions.get(n, 0) for n in container.projections.names}
                lag = {n: v for n, v in lag.items() if v > 0}
                self.execution_context.result = ExecutionResult(
                    data=None,
                    errors=[
                        GraphQLError(
                            f"read models did not reach position {token} within {timeout:g} s; "
                            f"lag in events: {lag}",
                            extensions={"code": "CONSISTENCY_TIMEOUT", "token": token, "lag": lag},
                        )
                    ],
                )
        yield


def should_mask(error: GraphQLError) -> bool:
    original = error.original_error
    if original is None:
        return False  # syntax / validation errors are the client's, and safe to show
    return not isinstance(original, UserError)


def masking() -> MaskErrors:
    return MaskErrors(
        should_mask_error=should_mask, error_message="Unexpected error; it has been logged."
    )
