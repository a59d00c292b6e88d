"""`reelpulse export` and `reelpulse replay`: copy part of the event log to a file, and
backtest projections and models on a selected history in a sandbox (docs/replay.md).

Both only read the event store (its tables are never created or changed here) and never
open the live read models. Files are written as `<name>.partial` and renamed when
complete, and the replay sandbox lives in a temporary directory removed at the end, so
Ctrl-C leaves nothing half-written.
"""

import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from adapters.erasure import install_shredding
from adapters.replay import params as P
from adapters.replay.export import ExportFormatError, file_batches, write_export
from adapters.replay.render import render, svg_chart
from adapters.replay.report import dumps
from adapters.replay.run import Config, run_replay
from adapters.replay.sandbox import SandboxError, check_sections, registered_names
from adapters.replay.selection import Batch, Selection, SelectionError, parse_time, store_batches
from adapters.settings import Settings
from commands.base import STORE_NAME, SharedStore

app = typer.Typer(help="Export and replay the event history.", no_args_is_help=True)
err = Console(stderr=True)
out = Console()

BAD_INPUT = (SelectionError, P.ParamError, SandboxError, ExportFormatError)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one line and return the Exit to raise (2: bad input, 1: store unreachable)."""
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True, markup=True)
    return typer.Exit(code)


# -- the store, read-only ----------------------------------------------------------------
def open_store_read_only(url: str) -> SharedStore:
    """The event store without creating tables (a replay must not change it)."""
    from eventsourcing.persistence import InfrastructureFactory
    from eventsourcing.utils import Environment

    from adapters.eventstore.factory import ConfigurationError, eventsourcing_env

    if url.startswith("memory://") or url in ("sqlite://", "sqlite:///:memory:"):
        raise fail(f"{url} is an in-process store: nothing to read here")
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise fail(f"no event store at {url.removeprefix('sqlite:///')}")
    try:
        env = eventsourcing_env(url, pool_size=2)
    except ConfigurationError as e:
        raise fail(str(e)) from None
    env["CREATE_TABLE"] = "n"
    try:
        factory: InfrastructureFactory[Any] = InfrastructureFactory.construct(
            Environment(STORE_NAME, env)
        )
        recorder = factory.process_recorder()
        recorder.max_notification_id()
    except Exception as e:  # unreachable server, no such table: one line, no traceback
        raise fail(f"cannot read the event store: {e}".splitlines()[0], 1) from None
    install_shredding(factory, recorder)  # reads the key table, never creates it
    return SharedStore(env=env, factory=factory, recorder=recorder, extensions=recorder)  # type: ignore[arg-type]


def _mapper(store: SharedStore) -> Any:
    from commands.content import ContentApplication

    return ContentApplication(store).mapper  # the live runners decode with this one too


# -- shared options ------------------------------------------------------------------------
StoreOpt = Annotated[
    str | None, typer.Option("--store", help="Event store URL (default REELPULSE_DATABASE_URL)")
]
FromPos = Annotated[int | None, typer.Option(help="First position (inclusive)")]
ToPos = Annotated[int | None, typer.Option(help="Last position (inclusive)")]
Since = Annotated[
    str | None, typer.Option("--since", "--from", help="Event time from (ISO 8601, inclusive)")
]
Until = Annotated[
    str | None, typer.Option("--until", "--to", help="Event time until (ISO 8601, exclusive)")
]
Types = Annotated[
    str | None, typer.Option(help="Event types, comma-separated, e.g. Engagement.Viewed")
]
Sample = Annotated[float | None, typer.Option("--sample-videos", help="Share of videos (0, 1]")]
SampleSeed = Annotated[int, typer.Option(help="Seed of the video sample")]
BatchSize = Annotated[int, typer.Option(help="Events per batch", min=1, max=100_000)]


def _selection(
    from_position: int | None,
    to_position: int | None,
    since: str | None,
    until: str | None,
    types: str | None,
    sample: float | None,
    sample_seed: int,
) -> Selection:
    return Selection(
        from_position=from_position,
        to_position=to_position,
        since=parse_time(since, "--since") if since else None,
        until=parse_time(until, "--until") if until else None,
        types=tuple(t.strip() for t in (types or "").split(",") if t.strip()),
        sample=sample,
        sample_seed=sample_seed,
    )


@dataclass
class _Meter:
    """Progress over the span of positions, with events/s and ETA."""

    progress: Progress
    task: Any
    start: int
    started: float

    def __call__(self, scanned: int, events: int) -> None:
        rate = events / max(time.perf_counter() - self.started, 1e-9)
        self.progress.update(
            self.task, completed=max(scanned - self.start + 1, 0), rate=f"{rate:,.0f} events/s"
        )


@contextmanager
def _progress(title: str, span: tuple[int, int]) -> Iterator[_Meter]:
    with Progress(
        TextColumn(f"[bold]{title}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=err,
    ) as progress:
        task = progress.add_task(title, total=max(span[1] - span[0] + 1, 0), rate="")
        yield _Meter(progress, task, span[0], time.perf_counter())


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(data)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


# -- export ----------------------------------------------------------------------------------
@app.command("export")
def export_cmd(
    output: Annotated[Path, typer.Argument(help="File to write (gzip JSON lines, *.jsonl.gz)")],
    store: StoreOpt = None,
    from_position: FromPos = None,
    to_position: ToPos = None,
    since: Since = None,
    until: Until = None,
    types: Types = None,
    sample_videos: Sample = None,
    sample_seed: SampleSeed = 0,
    batch_size: BatchSize = 2000,
) -> None:
    """Export selected events to a versioned, compressed JSON-lines file."""
    try:
        selection = _selection(
            from_position, to_position, since, until, types, sample_videos, sample_seed
        )
    except BAD_INPUT as e:
        raise fail(str(e)) from None
    url = store or Settings().database_url
    shared = open_store_read_only(url)
    started = time.perf_counter()
    try:
        span, batches = store_batches(shared, selection, batch_size=batch_size)
        contexts = [0]
        with _progress("exporting", span) as meter:
            counted = _counting(batches, meter, contexts)
            count, last = write_export(output, counted, selection=selection, span=span, source=url)
    except KeyboardInterrupt:
        raise fail("interrupted: no export written", 130) from None
    finally:
        shared.close()
    seconds = time.perf_counter() - started
    selected = count - contexts[0]
    err.print(
        f"exported {count:,} events: {selected:,} selected + {contexts[0]:,} context (creation "
        f"events the selected ones need) (positions {span[0]}-{last or span[0] - 1}) to "
        f"{output} ({output.stat().st_size:,} bytes) in {seconds:.1f}s "
        f"({count / max(seconds, 1e-9):,.0f} events/s)",
        highlight=False,
        soft_wrap=True,
    )


def _counting(batches: Iterator[Batch], meter: _Meter, contexts: list[int]) -> Iterator[Batch]:
    """The batches, counted as they pass: every event for the meter, the context ones
    (records flagged as context: creations the selection needs) into contexts[0]."""
    events = 0
    for scanned, records in batches:
        events += len(records)
        contexts[0] += sum(1 for _, _, context in records if context)
        yield scanned, records
        meter(scanned, events)


# -- replay ----------------------------------------------------------------------------------
@app.command("replay")
def replay_cmd(
    input_file: Annotated[
        Path | None, typer.Option("--input", "-i", help="Replay an export file, not the store")
    ] = None,
    store: StoreOpt = None,
    from_position: FromPos = None,
    to_position: ToPos = None,
    since: Since = None,
    until: Until = None,
    types: Types = None,
    sample_videos: Sample = None,
    sample_seed: SampleSeed = 0,
    projections: Annotated[
        str | None, typer.Option(help="Projections to run, comma-separated (default: all)")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="TOML parameters of config A")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="A parameter of A: section.field=value")
    ] = None,
    config_b: Annotated[Path | None, typer.Option(help="TOML parameters of config B")] = None,
    set_b: Annotated[
        list[str] | None, typer.Option("--set-b", help="A parameter of B (A/B backtest)")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the JSON report here")
    ] = None,
    chart: Annotated[
        Path | None, typer.Option(help="Write an SVG chart of alerts per hour")
    ] = None,
    table: Annotated[bool, typer.Option(help="Print the report as tables")] = True,
    score: Annotated[
        bool,
        typer.Option(help="Also score the models as `reelpulse evaluate` does (holds the events)"),
    ] = True,
    batch_size: BatchSize = 1000,
) -> None:
    """Replay selected history through projections and models in a sandbox and report
    model metrics, alerts (precision/recall against moderators' decisions) and read-model
    summaries; with --config-b/--set-b, run two configurations side by side (A/B)."""
    try:
        selection = _selection(
            from_position, to_position, since, until, types, sample_videos, sample_seed
        )
        a = P.load_toml(config) if config else {}
        P.parse_assignments(set_ or [], into=a)
        configs = [Config("a", a)]
        if config_b is not None or set_b:
            b = P.load_toml(config_b) if config_b else {}
            P.parse_assignments(set_b or [], into=b)
            configs.append(Config("b", b))
        for c in configs:
            P.build(c.overrides)  # validate every value before reading a single event
        names = registered_names()
        if projections:
            chosen = [n.strip() for n in projections.split(",") if n.strip()]
            unknown = [n for n in chosen if n not in names]
            if unknown:
                raise SandboxError(f"unknown projection {unknown[0]!r} (known: {', '.join(names)})")
            names = [n for n in names if n in chosen]
        for c in configs:
            check_sections(c.overrides, names)
        if input_file is not None:
            if store is not None:
                raise SelectionError("use --input or --store, not both")
            span, batches = file_batches(input_file, selection, batch_size=batch_size)
            shared = None
            source = str(input_file)
        else:
            url = store or Settings().database_url
            shared = open_store_read_only(url)
            span, batches = store_batches(shared, selection, batch_size=batch_size)
            source = url.split("@")[-1]
    except BAD_INPUT as e:
        raise fail(str(e)) from None
    started = time.perf_counter()
    try:
        mapper = _mapper(shared) if shared is not None else _file_mapper()
        with _progress("replaying", span) as meter:
            report = run_replay(
                batches, mapper=mapper, selection=selection, names=names, configs=configs,
                on_batch=meter, score=score,
            )  # fmt: skip
        data = dumps(report)
        if output is not None:
            _write_atomically(output, data)
        if chart is not None:
            _write_atomically(chart, svg_chart(report).encode())
    except BAD_INPUT as e:
        raise fail(str(e)) from None
    except KeyboardInterrupt:
        raise fail("interrupted: sandbox removed, no report written", 130) from None
    except Exception as e:  # e.g. a projection rejecting an extreme parameter mid-run
        message = f"replay failed: {type(e).__name__}: {e}".splitlines()[0]
        raise fail(f"{message} (sandbox removed, no report written)", 1) from None
    finally:
        if shared is not None:
            shared.close()
    if table:
        render(report, out)
    seconds = time.perf_counter() - started
    events = report["input"]["events"]
    alerts = ", ".join(
        f"{c.label.upper()} {report['results'][c.label]['alerts']['total']}" for c in configs
    )
    where = f"; report {output} (sha256 {hashlib.sha256(data).hexdigest()[:12]})" if output else ""
    err.print(
        f"replayed {events:,} events from {source} through {len(names)} projections in "
        f"{seconds:.1f}s ({events / max(seconds, 1e-9):,.0f} events/s); alerts: {alerts}{where}",
        highlight=False,
    )


def _file_mapper() -> Any:
    """A mapper for events read from a file: the same transcoder, an in-memory store."""
    from adapters.eventstore import open_shared_store

    return _mapper(open_shared_store("memory://"))


if __name__ == "__main__":
    app()
