"""Who may call what. Every REST route declares a Policy (a FastAPI dependency); every
GraphQL root field has an entry in GRAPHQL_POLICY. Tests walk both and fail on any route
or field without one.

Visibility: viewer identifiers (sessions, recommendations by viewer, case timelines with
reporter ids, report reasons and appeal statements) are for moderator and admin (and the
ingest backend, which already knows its viewers, for recommendations). Analysts read
aggregates only."""

import asyncio
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute, Mount

from adapters.auth.principal import ALL_ROLES, Principal, Role, forbidden
from adapters.auth.service import Authenticator

INGEST, CREATOR, MODERATOR, ANALYST, ADMIN = (
    Role.INGEST, Role.CREATOR, Role.MODERATOR, Role.ANALYST, Role.ADMIN,
)  # fmt: skip
COMMAND_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Policy:
    """A route's access rule: the roles allowed (admin always is), or public.
    Commands (POST/PUT/PATCH/DELETE) are charged to the caller's rate-limit bucket."""

    def __init__(self, *roles: Role, public: bool = False, own: bool = False) -> None:
        self.public = public
        self.roles = frozenset(roles) | ({ADMIN} if not public else frozenset())
        self.own = own  # creators only on their own objects (checked in the route)

    def __repr__(self) -> str:
        if self.public:
            return "Policy(public)"
        own = ", creator: own objects only" if self.own else ""
        return f"Policy({', '.join(sorted(self.roles))}{own})"

    def allows(self, role: Role) -> bool:
        return self.public or role in self.roles

    async def __call__(self, request: Request) -> Principal | None:
        # async: on the event loop, no thread-pool hop per request. A key the store has
        # not been asked about within its cache period is looked up in a thread.
        if self.public:
            return None
        auth: Authenticator = request.app.state.auth
        headers = request.headers
        principal = auth.authenticate_cached(headers)
        if principal is None:
            principal = await asyncio.to_thread(auth.authenticate, headers)
        if principal.role not in self.roles:
            raise forbidden(
                f"role {principal.role.value} may not call {request.method} "
                f"{request.url.path} (allowed: {', '.join(sorted(self.roles))})"
            )
        request.state.principal = principal
        if request.method in COMMAND_METHODS:
            auth.charge(principal)
        return principal


def allow(*roles: Role, own: bool = False) -> Any:
    """`dependencies=[allow(MODERATOR)]`: the route's declared policy."""
    return Depends(Policy(*roles, own=own))


PUBLIC = Depends(Policy(public=True))


def principal_of(request: Request) -> Principal:
    """The authenticated caller (set by the route's policy)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:  # a route that reads the caller must declare a non-public policy
        raise RuntimeError(f"{request.url.path} reads the caller without an access policy")
    return principal


async def caller(request: Request) -> Principal:  # async: no thread hop for an attribute
    """The authenticated caller (set by the route's policy)."""
    return principal_of(request)


CallerDep = Annotated[Principal, Depends(caller)]

# Routes the framework adds (docs, static files, GraphQL endpoint): declared here.
# GraphQL authenticates in its context and checks GRAPHQL_POLICY per root field.
FRAMEWORK_ROUTES: dict[str, str] = {
    "/openapi.json": "public",
    "/docs": "public",
    "/docs/oauth2-redirect": "public",
    "/redoc": "public",
    "/static": "public",
    "/static-offline-docs": "public",  # fastapi_offline's Swagger UI and ReDoc files
    "/graphql": "graphql",
}


def iter_routes(routes: list[BaseRoute]) -> Iterator[Any]:
    """Every effective route (included routers flattened, with their prefixes)."""
    return iter_route_contexts(routes)


def route_policy(route: Any) -> Policy | str | None:
    """The declared policy of a route (a Policy, "public"/"graphql"), or None."""
    dependant = getattr(route, "dependant", None)
    for dependency in getattr(dependant, "dependencies", ()):
        if isinstance(dependency.call, Policy):
            return dependency.call
    path = getattr(route, "path", "")
    if isinstance(getattr(route, "original_route", route), Mount) or path in FRAMEWORK_ROUTES:
        return FRAMEWORK_ROUTES.get(path)
    return None


READ = frozenset({CREATOR, MODERATOR, ANALYST, ADMIN})  # aggregates, public content
CASES = frozenset({MODERATOR, ANALYST, ADMIN, CREATOR})  # creators: their own cases only
IDENTITIES = frozenset({MODERATOR, ADMIN})  # viewer identities and free text

GRAPHQL_POLICY: dict[str, dict[str, frozenset[Role]]] = {
    "Query": {
        "video": READ,
        "videos": READ,
        "creator": READ,
        "trending": READ,
        "trendingSeries": READ,
        "summary": READ,
        "features": READ,
        "creatorFeatures": READ,
        "virality": READ,
        "modelMetrics": READ,
        "emergingTrends": READ,
        "sentiment": READ,
        "platformSentiment": READ,
        "sentimentRanking": READ,
        "turningNegativeVideos": READ,
        "videoAnomaly": frozenset({MODERATOR, ANALYST, ADMIN}),
        "moderationQueue": frozenset({MODERATOR, ANALYST, ADMIN}),
        "moderationCase": CASES,
        "alerts": frozenset({MODERATOR, ANALYST, ADMIN}),
        "viewerSessions": IDENTITIES,
        "commentCases": IDENTITIES,  # comment text and author ids, as GET /v1/comment-cases
        "recommendations": frozenset({INGEST, MODERATOR, ADMIN}),
    },
    "Subscription": {
        "summary": READ,
        "videoStats": READ,
        "trending": READ,
        "moderationQueue": frozenset({MODERATOR, ANALYST, ADMIN}),
        "alerts": frozenset({MODERATOR, ANALYST, ADMIN}),
    },
}
# Nested fields with identities or free text, checked by a strawberry permission class.
GRAPHQL_FIELD_POLICY: dict[str, frozenset[Role]] = {
    "ModerationCase.timeline": IDENTITIES,
}
INTROSPECTION = frozenset({"__typename", "__schema", "__type"})

__all__ = [
    "ALL_ROLES",
    "GRAPHQL_POLICY",
    "Policy",
    "allow",
    "caller",
    "principal_of",
    "route_policy",
]
