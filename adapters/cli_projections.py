"""`reelpulse projections ...`: projection status and rebuilds (blue/green or in place).

Mounted on the main CLI with `app.add_typer(projections_app, name="projections")`;
also runnable on its own: `python -m adapters.cli_projections status`.
"""

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from adapters.bootstrap import Container
from adapters.cli_support import open_container
from adapters.projections.quarantine import quarantined
from adapters.projections.rebuild import Progress as RebuildProgress
from adapters.projections.rebuild import Rebuilder, RebuildError, RebuildInterrupted
from adapters.projections.status import ProjectionStatus, projection_status
from adapters.readmodel.times import as_utc
from adapters.settings import Settings

app = typer.Typer(
    help="Projection status and rebuilds (blue/green by default, --in-place for a reset).",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True, soft_wrap=True)  # one-line messages stay one line
out = Console()


def _open() -> Container:
    return open_container(console)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f}min"


def _print_table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    right: Sequence[str] = (),
    wrap: Sequence[str] = (),
) -> None:
    """A table as wide as it needs; on a console too narrow for it (a narrow terminal, or
    80 columns when not a terminal), one line per row instead: names, ids and numbers are
    never cut or shortened ("moder..." was ambiguous)."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left",
                         no_wrap=column not in wrap, overflow="fold",
                         max_width=60 if column in wrap else None)  # fmt: skip
    for row in rows:
        table.add_row(*row)
    natural = Measurement.get(out, out.options.update_width(10_000), table).maximum
    if natural <= out.width:
        out.print(table)
        return
    out.print(title, soft_wrap=True)
    for row in rows:
        fields = ", ".join(f"{c} {v}" for c, v in zip(columns[1:], row[1:], strict=True) if v)
        out.print(f"{row[0]}: {fields}", soft_wrap=True, highlight=False, markup=False)


def _status_cells(r: ProjectionStatus, now: datetime) -> list[str]:
    updated = f"{_age((now - r.updated_at).total_seconds())} ago" if r.updated_at else "never"
    return [
        r.name, str(r.version), f"{r.position:,}", f"{r.lag:,}", f"{r.events:,}",
        "-" if r.rate is None else f"{r.rate:,.0f}", _age(r.eta_seconds), updated,
        "-" if r.rebuild_position is None else f"at {r.rebuild_position:,}",
        f"{r.quarantined:,}" if r.quarantined else "-",
        (r.last_error or "").splitlines()[0][:60] if r.last_error else "",
    ]  # fmt: skip


@app.command()
def status(
    sample: Annotated[
        float, typer.Option(help="Seconds between the two reads that measure rates", min=0, max=60)
    ] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout")] = False,
) -> None:
    """Every projection's position, lag behind the store head, rate, quarantined events
    and last error."""
    container = _open()
    try:
        rows = projection_status(container.store, container.read_engine, sample_seconds=sample)
    finally:
        container.close()
    if as_json:
        print(json.dumps([r.as_dict() for r in rows], indent=2))
        return
    columns = ("projection", "v", "position", "lag", "events", "ev/s", "ETA", "updated",
               "rebuild", "quarantined", "last error")  # fmt: skip
    now = datetime.now(UTC)
    cells = [_status_cells(r, now) for r in rows]
    title = f"projections (store head {rows[0].head if rows else 0})"
    _print_table(title, columns, cells, right=columns[1:-1], wrap=("last error",))
    behind = [r for r in rows if r.lag]
    errors = [r for r in rows if r.last_error]
    held = sum(r.quarantined for r in rows)
    out.print(
        f"{len(rows)} projections, {len(behind)} behind the head "
        f"(max lag {max((r.lag for r in rows), default=0):,}), {len(errors)} with errors, "
        f"{held:,} quarantined events"
        + (" (`reelpulse projections quarantine` lists them)" if held else ""),
        soft_wrap=True,
    )


@app.command()
def quarantine(
    name: Annotated[str | None, typer.Argument(help="Only this projection's")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first", min=1)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout")] = False,
) -> None:
    """Events projections could not apply and moved past, with the reason (a rebuild
    tries them again: `reelpulse projections rebuild NAME`)."""
    container = _open()
    try:
        if name is not None and name not in container.projections.names:
            console.print(f"[red]no projection named {name!r}[/red]")
            raise typer.Exit(2)
        with container.read_engine.connect() as conn:
            rows = quarantined(conn, name, limit)
    finally:
        container.close()
    if as_json:
        print(json.dumps([
            {"projection": r.name, "position": r.position, "topic": r.topic,
             "originator_id": r.originator_id, "originator_version": r.originator_version,
             "error": r.error, "quarantined_at": as_utc(r.quarantined_at).isoformat()}
            for r in rows
        ], indent=2))  # fmt: skip
        return
    _print_table(
        "quarantined events",
        ("projection", "position", "topic", "stream", "error"),
        [(r.name, f"{r.position:,}", r.topic.rsplit(".", 1)[-1],
          f"{r.originator_id} v{r.originator_version}", r.error) for r in rows],
        right=("position",), wrap=("error",),
    )  # fmt: skip
    out.print(f"{len(rows)} quarantined events" + (f" of {name}" if name else ""))


@app.command()
def rebuild(
    names: Annotated[list[str] | None, typer.Argument(help="Projections to rebuild")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Rebuild every projection")] = False,
    in_place: Annotated[
        bool, typer.Option("--in-place", help="Reset and rebuild the live tables (no shadow)")
    ] = False,
    restart: Annotated[
        bool, typer.Option(help="Discard an interrupted blue/green build instead of resuming it")
    ] = False,
    require_identical: Annotated[
        bool, typer.Option(help="Refuse to switch if the rebuilt rows differ from the live ones")
    ] = False,
    batch_size: Annotated[
        int | None, typer.Option(help="Events per transaction (default: the setting)", min=1)
    ] = None,
) -> None:
    """Rebuild projections from the first event. Blue/green by default: build into a
    shadow while the live version serves, catch up, verify, switch atomically, drop the
    old rows. Resumable: run the same command again after an interruption."""
    if bool(names) == all_:
        console.print("[red]name the projections to rebuild, or pass --all (not both)[/red]")
        raise typer.Exit(2)
    container = _open()
    try:
        rebuilder = Rebuilder.for_container(container, batch_size=batch_size)
        targets = rebuilder.names if all_ else list(dict.fromkeys(names or []))
        unknown = [n for n in targets if n not in rebuilder.names]
        if unknown:
            console.print(
                f"[red]unknown projection {', '.join(unknown)}[/red] "
                f"(known: {', '.join(rebuilder.names)})"
            )
            raise typer.Exit(2)
        if container.settings.kafka_projections:
            targets = _with_kafka_groups(rebuilder, container.settings, targets, in_place)
        _rebuild_all(rebuilder, targets, in_place, restart, require_identical)
    finally:
        container.close()


def _with_kafka_groups(
    rebuilder: Rebuilder, settings: Settings, targets: list[str], in_place: bool
) -> list[str]:
    """With REELPULSE_KAFKA_PROJECTIONS, keyed projections are run by Kafka consumer groups:
    a group's projections are rebuilt together, blue/green, while its workers run."""
    import asyncio

    from adapters.kafka.projection_consumer import kafka_runs

    rebuilder.kafka = asyncio.run(kafka_runs(settings))
    out: list[str] = []
    for name in targets:
        run = rebuilder.kafka_run(name)
        if run is None:
            out.append(name)
            continue
        if in_place:
            console.print(
                f"[red]{name} is run by the Kafka consumer group {run.group}: rebuild it "
                "blue/green (without --in-place); its workers keep running[/red]"
            )
            raise typer.Exit(2)
        others = [n for n in run.names if n not in targets]
        if others:
            console.print(f"{name} shares {run.group} with {', '.join(others)}: rebuilt together")
        if run.names[0] not in out:
            out.append(run.names[0])  # the group stands for all of its projections
    return out


def _rebuild_all(
    rebuilder: Rebuilder, targets: list[str], in_place: bool, restart: bool, identical: bool
) -> None:
    started, results = time.perf_counter(), []
    with Progress(
        TextColumn("[bold]{task.description:<20}"),
        TextColumn("{task.fields[phase]:<8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        for name in targets:
            task = progress.add_task(name, total=None, phase="start", rate="")

            def show(p: RebuildProgress, task: int = task) -> None:
                total = max(p.target - p.start, 1) if p.phase in ("build", "rebuild") else None
                progress.update(
                    task, total=total or progress.tasks[task].total, phase=p.phase,
                    completed=p.position - p.start if total else progress.tasks[task].completed,
                    rate=f"{p.rate:,.0f} ev/s",
                )  # fmt: skip

            try:
                run = rebuilder.kafka_run(name)
                if run is not None:
                    done = rebuilder.rebuild_kafka(
                        run, restart=restart, require_identical=identical, on_progress=show
                    )
                    for other in done[:-1]:
                        progress.console.print(other.summary())
                        results.append(other)
                    result = done[-1]
                else:
                    result = rebuilder.rebuild(
                        name, in_place=in_place, restart=restart, require_identical=identical,
                        on_progress=show,
                    )  # fmt: skip
            except KeyboardInterrupt:
                progress.stop()
                console.print(f"[yellow]{name}: interrupted; run the same command to resume[/]")
                raise typer.Exit(130) from None
            except RebuildInterrupted as e:
                progress.stop()
                console.print(f"[yellow]{e}[/yellow]")
                raise typer.Exit(130) from None
            except RebuildError as e:
                progress.stop()
                console.print(f"[red]{e}[/red]")
                raise typer.Exit(1) from None
            total = progress.tasks[task].total or 1
            progress.update(task, phase="done", completed=total)
            progress.console.print(result.summary())
            results.append(result)
    events = sum(r.events for r in results)
    seconds = time.perf_counter() - started
    different = [r.name for r in results if r.compared and not r.identical]
    console.print(
        f"rebuilt {len(results)} projection(s) ({'in place' if in_place else 'blue/green'}): "
        f"{events:,} events in {seconds:.1f}s ({events / max(seconds, 1e-9):,.0f} ev/s); "
        + (f"changed: {', '.join(different)}" if different else "no changes against live")
    )


if __name__ == "__main__":
    app()
