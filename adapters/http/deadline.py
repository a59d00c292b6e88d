"""The request deadline, and the routes that own theirs.

Every request gets a deadline when it arrives (`RequestContextMiddleware` puts it in the
ASGI scope as a `time.monotonic()` value, `DEADLINE_SECONDS` ahead). For most routes the
middleware enforces it: no response by then is answered 503 `request_timeout` (a database
that does not answer). That cut cannot know whether the command behind it will still
commit.

A route built with `DeadlineRoute` owns its deadline instead, and the middleware leaves it
alone: the route passes the deadline to the application (the engagement commands' group
commit refuses a request not taken before it, `commands.appending.CommitExpired`) and
answers 503 `not_stored_timeout` exactly when the application says nothing was stored.
Otherwise it waits for the outcome and answers it, however late: a 503 never hides a
command that may still commit.
"""

import time
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute
from starlette.types import Scope

DEADLINE_SECONDS = 10.0  # the event store library retries a lost connection for ~50 s
SCOPE_KEY = "reelpulse.deadline"


class DeadlineRoute(APIRoute):
    """An APIRoute whose endpoint enforces the request deadline itself (see above)."""

    owns_deadline = True


def request_deadline(request: Request) -> float:
    """The request's deadline (time.monotonic()), as set when it arrived."""
    deadline = request.scope.get(SCOPE_KEY)
    return float(deadline) if deadline is not None else time.monotonic() + DEADLINE_SECONDS


def owned_matcher(routes: Sequence[BaseRoute]) -> Callable[[Scope], bool]:
    """`matches(scope)`: True for a request to a route that owns its deadline. Built from
    the app's routes when first needed (routes are added after the middleware)."""
    owned: list[tuple[Any, frozenset[str]]] | None = None

    def matches(scope: Scope) -> bool:
        nonlocal owned
        if owned is None:
            owned = [
                (ctx.path_regex, frozenset(ctx.methods or ()))
                for ctx in iter_route_contexts(routes)
                if getattr(ctx.original_route, "owns_deadline", False)
            ]
        method, path = scope["method"], scope["path"]
        return any(method in methods and regex.match(path) for regex, methods in owned)

    return matches
