"""`reelpulse forget viewer ID --yes` and `reelpulse forget reapply` (docs/erasure.md).

Mounted on the main CLI with `app.add_typer(forget_app, name="forget")`; also runnable
on its own: `python -m adapters.cli_erasure viewer ID --yes`.
"""

import json
from typing import Annotated
from uuid import UUID

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from adapters.bootstrap import Container
from adapters.cli_support import open_container
from adapters.erasure.service import forget_viewer, reapply_erasures

app = typer.Typer(
    help="Erasure (GDPR): crypto-shred a viewer's personal data and drop derived rows.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True, soft_wrap=True)
out = Console()


def _open() -> Container:
    return open_container(console)


@app.command()
def viewer(
    viewer_id: Annotated[UUID, typer.Argument(help="The viewer's id")],
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm: the viewer's key is deleted for good")
    ] = False,
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for the projections to catch up", min=0)
    ] = 10.0,
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON on stdout")] = False,
) -> None:
    """Forget a viewer: delete their key (comment texts become unreadable), drop the
    read-model rows derived from them. Cannot be undone."""
    if not yes:
        console.print(
            f"[yellow]refusing without --yes:[/yellow] forgetting viewer {viewer_id} deletes "
            "their data key for good"
        )
        raise typer.Exit(2)
    container = _open()
    try:
        head = max(container.head_position, 1)
        with Progress(
            TextColumn("scanning the log"), BarColumn(),
            TextColumn("{task.completed}/{task.total}"), console=console, transient=True,
        ) as bar:  # fmt: skip
            task = bar.add_task("scan", total=head)
            report = forget_viewer(
                container, viewer_id, wait_seconds=wait,
                progress=lambda position: bar.update(task, completed=position),
            )  # fmt: skip
    finally:
        container.close()
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
    console.print(report.summary())


@app.command()
def reapply() -> None:
    """Drop the read-model rows of every forgotten viewer again (run after a rebuild)."""
    container = _open()
    try:
        rows = reapply_erasures(container)
    finally:
        container.close()
    console.print(f"re-applied erasures: {sum(rows.values())} read-model rows dropped")


if __name__ == "__main__":
    app()
