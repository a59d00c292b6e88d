"""Schema extensions: read-your-writes waits and error masking."""

from collections.abc import AsyncIterator

from graphql import ExecutionResult, GraphQLError
from strawberry.extensions import MaskErrors, SchemaExtension

from adapters.graphql.consistency import ConsistencyWaiter
from adapters.graphql.context import GraphQLContext, UserError, call


class ConsistencyExtension(SchemaExtension):
    """Before executing, wait (bounded, holding no thread: adapters/graphql/consistency.py)
    until every projection reached the client's consistency token; otherwise answer with
    an error naming the lag, without executing. A token that is no position, or beyond
    the head of the event store (no projection can ever reach it), is answered at once
    with a 400."""

    async def on_execute(self) -> AsyncIterator[None]:  # type: ignore[override]
        from adapters.observability.metrics import GRAPHQL_OPERATIONS

        operation = self.execution_context.operation_type
        GRAPHQL_OPERATIONS.labels(getattr(operation, "value", str(operation))).inc()
        context = self.execution_context.context
        token = getattr(context, "consistency_token", None)
        if self.execution_context.result is not None:
            pass  # refused already (access, cost): nothing to wait for
        elif getattr(context, "token_error", None):
            self._refuse(context, context.token_error, "BAD_CONSISTENCY_TOKEN")
        elif isinstance(context, GraphQLContext) and token is not None:
            await self._wait(context, token)
        yield

    async def _wait(self, context: GraphQLContext, token: int) -> None:
        container = context.container
        waiter = ConsistencyWaiter.of(container.projections)
        live = container.projections.live_positions()
        if live is None or any(live.get(n, 0) < token for n in container.projections.names):
            # Not reached yet: a token the store never handed out waits for nothing.
            head = await call(lambda: container.head_position)
            if token > head:
                self._refuse(
                    context,
                    f"consistency token {token} is beyond the head of the event store "
                    f"({head}): send the `position` a command returned",
                    "CONSISTENCY_TOKEN_AHEAD",
                    token=token,
                    head=head,
                )
                return
        timeout = container.settings.consistency_timeout_seconds
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

    def _refuse(self, context: object, message: str, code: str, **extensions: object) -> None:
        """A client error about the request as a whole: HTTP 400 (over HTTP)."""
        response = getattr(context, "response", None)
        if response is not None:
            response.status_code = 400
        self.execution_context.result = ExecutionResult(
            data=None, errors=[GraphQLError(message, extensions={"code": code, **extensions})]
        )


def should_mask(error: GraphQLError) -> bool:
    original = error.original_error
    if original is None:
        return False  # syntax / validation errors are the client's, and safe to show
    return not isinstance(original, UserError)


def masking() -> MaskErrors:
    return MaskErrors(
        should_mask_error=should_mask, error_message="Unexpected error; it has been logged."
    )
