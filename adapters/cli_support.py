"""What the command-line modules share: opening the container with plain errors, the
port check and the help layout of `serve` and the rest."""

from typing import TextIO

import typer
from rich.console import Console
from typer.core import MarkupMode

from adapters.bootstrap import Container, bootstrap
from adapters.eventstore.factory import ConfigurationError
from adapters.settings import Settings


def open_container(console: Console, settings: Settings | None = None) -> Container:
    """The container for `settings` (default: from the environment); a bad configuration
    exits 2 and an unreachable store exits 1, each with one plain line, no traceback."""
    settings = settings or Settings()
    try:
        return bootstrap(settings)
    except ConfigurationError as e:
        console.print(f"[red]configuration error:[/red] {e}")
        raise typer.Exit(2) from None
    except Exception as e:  # e.g. database unreachable: say so plainly, no traceback
        console.print(f"[red]cannot open the event store at {settings.database_url}:[/red] {e}")
        raise typer.Exit(1) from None


def port_problem(host: str, port: int) -> str | None:
    """Why `serve` could not listen on host:port, as one line with what to do, or None.

    A trial bind before anything is loaded or printed (uvicorn and granian would only
    fail after the banner, with an errno in a JSON log line). SO_REUSEADDR as the servers
    use it: a port left in TIME_WAIT by a stopped server counts as free."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        return f"cannot listen on {host}:{port}: unknown host ({e.strerror}); try --host 127.0.0.1"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as trial:
        trial.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            trial.bind(address)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                other = port + 1 if port < 65535 else 8080
                return (
                    f"port {port} on {host} is already in use (another server?): stop it, or "
                    f"pick another port with --port, e.g. --port {other}"
                )
            if e.errno == errno.EACCES:
                return f"port {port} needs privileges on {host}: pick one above 1023 with --port"
            return f"cannot listen on {host}:{port}: {e.strerror}; try another --host or --port"
    return None


def help_layout(stream: TextIO, columns: int) -> tuple[MarkupMode, dict[str, int]]:
    """How `--help` is laid out on `stream` (typer's rich_markup_mode, click context
    settings): rich panels on a terminal at least 80 columns wide; elsewhere click's plain
    help, which never shortens a name with an ellipsis (rich tables do when narrow). On a
    terminal it wraps at spaces to the width; into a pipe or file it does not wrap at all,
    so a sentence, URL or option stays on one line for grep and copy."""
    if stream.isatty():
        if columns >= 80:
            return "rich", {}
        return None, {"terminal_width": max(columns, 20), "max_content_width": columns}
    return None, {"terminal_width": 100_000, "max_content_width": 100_000}
