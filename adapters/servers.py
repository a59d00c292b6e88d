"""The HTTP server under `reelpulse serve`: uvicorn (the default) or granian.

Both run the one ASGI app, built in this process around the one container (its group
committer, projections and followers are per process), on one uvloop event loop:

uvicorn  httptools parser; the protocol code runs in Python on the app's loop.
granian  Rust HTTP (hyper) on its own runtime thread, handing each request to the app's
         loop (granian's embedded server: one process, so that `kill` of the server
         stops everything and the container is not shared across a fork).

uvicorn is the default because it measured faster here, under wrk on this project's
routes and on a bare route (README, "Serving"); REELPULSE_SERVER=granian picks the other.
"""

from typing import Any, Literal

ServerName = Literal["uvicorn", "granian"]
SERVERS: tuple[ServerName, ...] = ("uvicorn", "granian")

# granian's own loggers go to the root handlers (our JSON logs) instead of its stdout ones.
_GRANIAN_LOGGING = {
    "loggers": {
        "_granian": {"handlers": [], "propagate": True},
        "granian.access": {"handlers": [], "propagate": True},
    }
}


def run(app: Any, *, server: ServerName, host: str, port: int, log_level: str) -> None:
    """Serve `app` until SIGINT/SIGTERM."""
    if server == "granian":
        _granian(app, host, port, log_level)
    elif server == "uvicorn":
        _uvicorn(app, host, port, log_level)
    else:  # pragma: no cover - Settings only allows SERVERS
        raise ValueError(f"unknown server {server!r} (one of {', '.join(SERVERS)})")


def _uvicorn(app: Any, host: str, port: int, log_level: str) -> None:
    import signal

    import uvicorn

    # After its graceful shutdown uvicorn raises again the signal it stopped on; with the
    # default SIGTERM handler that kills the process before the caller closes the
    # container (projection checkpoints at stop). SystemExit unwinds through it instead.
    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            loop="uvloop",
            http="httptools",
            log_level=log_level,
            log_config=None,  # keep our JSON handler for uvicorn's loggers too
        )
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exit(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _granian(app: Any, host: str, port: int, log_level: str) -> None:
    import asyncio
    import signal

    import uvloop
    from granian.constants import Interfaces
    from granian.log import LogLevels
    from granian.server.embed import Server

    level = log_level.lower()

    async def serve() -> None:
        server = Server(
            app,
            address=host,
            port=port,
            interface=Interfaces.ASGI,  # with lifespan: the app starts its background work
            log_level=LogLevels(level) if level in LogLevels.__members__ else LogLevels.info,
            log_dictconfig=_GRANIAN_LOGGING,
        )
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, server.stop)
        await server.serve()

    uvloop.run(serve())
