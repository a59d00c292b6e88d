"""Mount the GraphQL schema on the FastAPI app (HTTP + graphql-transport-ws)."""

from fastapi import FastAPI, Request, WebSocket
from strawberry.fastapi import GraphQLRouter
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from adapters.bootstrap import Container
from adapters.graphql.context import GraphQLContext, Readers
from adapters.graphql.schema import build_schema


def mount_graphql(app: FastAPI, container: Container) -> None:
    readers = Readers.build(container)
    development = container.settings.development

    async def context_getter(
        request: Request = None, websocket: WebSocket = None
    ) -> GraphQLContext:  # type: ignore[assignment]
        conn = request if request is not None else websocket
        raw = conn.headers.get("x-consistency-token") if conn is not None else None
        token, error = None, None
        if raw:
            if raw.isdigit():
                token = int(raw)
            else:
                error = "X-Consistency-Token must be a position (a non-negative integer)"
        return GraphQLContext(
            container=container, readers=readers, consistency_token=token, token_error=error
        )

    router: GraphQLRouter[GraphQLContext, None] = GraphQLRouter(
        build_schema(development=development),
        context_getter=context_getter,
        graphql_ide="graphiql" if development else None,
        subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
    )
    app.include_router(router, prefix="/graphql", tags=["graphql"])
