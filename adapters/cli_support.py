"""What the command-line modules share: opening the container with plain errors."""

import typer
from rich.console import Console

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
