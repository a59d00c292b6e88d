"""The `reelpulse` command line: serve the APIs, load demo data, manage the database."""

import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from adapters.bootstrap import Container
from adapters.cli_erasure import app as forget_app
from adapters.cli_evaluate import evaluate_cmd
from adapters.cli_keys import app as keys_app
from adapters.cli_projections import app as projections_app
from adapters.cli_replay import export_cmd, replay_cmd
from adapters.cli_support import help_layout, open_container, port_problem
from adapters.replay.export import redact
from adapters.runtime import tune_gc
from adapters.settings import Settings

if TYPE_CHECKING:
    from adapters.workload import WorkloadConfig
    from adapters.workload.live import LiveTraffic

app = typer.Typer(
    help="ReelPulse: event-sourced engagement and moderation analytics for short-video "
    "platforms.\n\nConfiguration comes from REELPULSE_* environment variables (see README); "
    "with none set, everything runs in this process on SQLite under ./var/.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Event store and read-model database.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.command("export")(export_cmd)
app.command("replay")(replay_cmd)
app.command("evaluate")(evaluate_cmd)
app.add_typer(projections_app, name="projections")
app.add_typer(forget_app, name="forget")
app.add_typer(keys_app, name="keys")
# soft_wrap: lines are never broken or cut by rich (a pipe would get 80 columns), so URLs,
# keys and names stay whole; a terminal wraps long lines itself.
console = Console(stderr=True, soft_wrap=True)


def _open(settings: Settings) -> Container:
    return open_container(console, settings)


def _load_demo(
    container: Container | None, config: "WorkloadConfig", url: str | None = None
) -> None:
    """Load the demo workload into `container`, or send it to the REST API at `url`."""
    import httpx

    from adapters.workload import drive_application, drive_http, generate

    started = time.perf_counter()
    workload = generate(config)
    with Progress(
        TextColumn("[bold]loading demo workload"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("demo", total=workload.items, rate="")

        def advance(n: int) -> None:
            elapsed = time.perf_counter() - started
            progress.update(
                task,
                advance=n,
                rate=f"{progress.tasks[0].completed / max(elapsed, 1e-9):,.0f} items/s",
            )

        if url is not None:
            with httpx.Client(base_url=url, timeout=60) as client:
                stats = drive_http(client, workload.commands, progress=advance)
        else:
            assert container is not None
            stats = drive_application(container, workload.commands, progress=advance)
    console.print(
        f"demo loaded (seed {config.seed}, {config.days:g} simulated days ending "
        f"{config.end:%Y-%m-%d %H:%M:%S} UTC): {stats.summary()}"
    )


def _catch_up(container: Container) -> None:
    """Run every projection to the head in this process, with a progress bar."""
    manager = container.projections
    head = container.head_position
    start = min(manager.positions().get(n, 0) for n in manager.names)
    started = time.perf_counter()
    with Progress(
        TextColumn("[bold]building read models"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("catch-up", total=max(head - start, 0), rate="")
        # One batch per projection per round (one read, one commit), until all are idle.
        while manager.group.round():
            low = min(manager.positions().get(n, 0) for n in manager.names)
            rate = (low - start) / max(time.perf_counter() - started, 1e-9)
            progress.update(task, completed=min(low, head) - start, rate=f"{rate:,.0f} pos/s")
        manager.group.checkpoint_behind()
        progress.update(task, completed=max(head - start, 0))
    console.print(
        f"read models at position {head} ({len(manager.names)} projections) "
        f"in {time.perf_counter() - started:.1f}s"
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000)")] = None,
    demo: Annotated[bool, typer.Option(help="Load demo data first if the store is empty")] = False,
    demo_days: Annotated[int, typer.Option(help="Simulated days of demo data", min=1)] = 1,
    seed: Annotated[int, typer.Option(help="Demo workload seed")] = 42,
    live: Annotated[
        bool,
        typer.Option(
            help="With --demo: keep generated traffic flowing while serving, at "
            "REELPULSE_DEMO_LIVE_EVENTS_PER_SECOND (default 20)"
        ),
    ] = True,
) -> None:
    """Serve the REST command API (OpenAPI docs at /docs) with uvicorn (REELPULSE_SERVER:
    uvicorn or granian).

    Exits 2 at once, before loading anything, if the port is taken (one line: use --port)."""
    from adapters import servers
    from adapters.http.app import create_app

    settings = Settings()
    host = host or settings.host
    port = port or settings.port
    if (problem := port_problem(host, port)) is not None:
        console.print(problem, markup=False, highlight=False)
        raise typer.Exit(2)
    container = _open(settings)
    # Handles of creators registered before handles were reserved: reserved once per store
    # now, not in the first registration a client sends (docs/architecture.md).
    container.content.reserve_existing_handles()
    stream = None
    if demo:
        from datetime import UTC, datetime

        from adapters.workload.live import demo_config

        config = demo_config(seed, demo_days, datetime.now(UTC))
        if container.head_position == 0:
            _load_demo(container, config)
            if settings.projections_in_process:
                _catch_up(container)  # so the demo's read models are complete when serving
        if live and settings.demo_live_events_per_second > 0:
            stream = _live_traffic(container, config, settings.demo_live_events_per_second)
    _banner(container, host, port, stream)
    from adapters.observability.logging import configure_logging

    configure_logging(settings.log_level, json=settings.log_json)
    if stream is not None:
        stream.start()
    try:
        servers.run(
            create_app(container),
            server=settings.server,
            host=host,
            port=port,
            log_level=settings.log_level,
        )
    finally:
        if stream is not None:
            console.print(f"demo live traffic stopped: {stream.stop().summary()}")
        container.close()


def _live_traffic(
    container: Container, config: "WorkloadConfig", events_per_second: float
) -> "LiveTraffic | None":
    """The demo's live stream, continuing `config`'s history; None (said why) when the
    store does not hold that demo (another seed or --demo-days, or no demo at all)."""
    from adapters.workload.live import LiveStream, LiveTraffic

    # The head position salts the stream: a restart sends new traffic, not a replay.
    stream = LiveStream(
        config, events_per_second=events_per_second, salt=str(container.head_position)
    )
    if stream.sim.creators[0].id not in container.content.repository:
        console.print(
            f"demo live traffic off: the store does not hold the demo of seed {config.seed} "
            f"over {config.days} days (serve --demo with the --seed and --demo-days it was "
            "loaded with)"
        )
        return None
    return LiveTraffic(container, stream)


def _banner(container: Container, host: str, port: int, stream: "LiveTraffic | None") -> None:
    """Where everything is: one line each, never cut (the console soft-wraps)."""
    from rich.markup import escape

    from adapters.auth.dev import dev_key_line

    settings = container.settings
    base = f"http://{host}:{port}"
    console.print(f"[bold green]ReelPulse[/bold green] on {escape(redact(settings.database_url))}")
    console.print(f"  REST API:   {base}/v1  (OpenAPI docs: {base}/docs)")
    console.print(f"  dashboard:  {base}/dashboard")
    page = "  (query page: open it in a browser)" if settings.development else ""
    console.print(f"  GraphQL:    {base}/graphql{page}")
    console.print(f"  health:     {base}/healthz, {base}/readyz; metrics: {base}/metrics")
    if stream is not None:
        console.print(
            f"  demo:       live traffic, about {settings.demo_live_events_per_second:g} events/s "
            "(--no-live or REELPULSE_DEMO_LIVE_EVENTS_PER_SECOND=0 turn it off)"
        )
    console.print(f"  {escape(dev_key_line(container))}")


@app.command("demo")
def demo_cmd(
    seed: Annotated[int, typer.Option(help="Workload seed (same seed, same workload)")] = 42,
    days: Annotated[int, typer.Option(help="Simulated days", min=1)] = 1,
    url: Annotated[
        str | None,
        typer.Option(
            help="Send the workload to a running server's REST API (e.g. "
            "http://127.0.0.1:8000) instead of the configured store"
        ),
    ] = None,
) -> None:
    """Generate a deterministic workload (seeded; its simulated days end now) and load it
    through the application layer, or through the REST API with --url."""
    from datetime import UTC, datetime

    from adapters.workload.live import demo_config

    config = demo_config(seed, days, datetime.now(UTC))
    if url is not None:
        _load_demo(None, config, url=url)
        return
    container = _open(Settings())
    try:
        _load_demo(container, config)
    finally:
        container.close()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the event store schema and migrate the read models (Alembic)."""
    from adapters.readmodel.db import current_revision

    settings = Settings()
    container = _open(settings)  # creates event store tables, runs `alembic upgrade head`
    try:
        console.print(
            f"event store schema up to date on {settings.database_url} "
            f"(head position {container.head_position}); read models at Alembic revision "
            f"{current_revision(container.read_engine)}"
        )
    finally:
        container.close()


@app.command()
def project(
    once: Annotated[bool, typer.Option(help="Catch up to the head, then exit")] = False,
) -> None:
    """Run the projections as a separate worker process (catch-up, then live).

    Use with REELPULSE_PROJECTIONS_IN_PROCESS=false on the `serve` processes. Safe to
    kill at any time: each batch commits with its tracking position, so a restart resumes
    exactly where the last commit left off.
    """
    import signal
    import threading

    settings = Settings()
    container = _open(settings)
    try:
        _catch_up(container)
        if once:
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        container.start_background(projections=True)
        console.print("following new events (Ctrl-C to stop)")
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        console.print("stopped")
    finally:
        container.close()


@app.command()
def relay(
    once: Annotated[bool, typer.Option(help="Publish up to the head, then exit")] = False,
) -> None:
    """Publish every stored event to Kafka in global order (at least once, keyed by video).

    Needs REELPULSE_KAFKA_BOOTSTRAP_SERVERS. Safe to kill at any time: the position
    advances only after the broker acknowledged, so a restart resumes without loss."""
    import asyncio

    from adapters.kafka.relay import Relay

    settings = Settings()
    if not settings.kafka_bootstrap_servers:
        console.print("[red]set REELPULSE_KAFKA_BOOTSTRAP_SERVERS to run the relay[/red]")
        raise typer.Exit(2)
    import signal

    container = _open(settings)
    relay_ = Relay(settings, container.store)
    signal.signal(signal.SIGTERM, lambda *_: relay_.stop())  # finish the batch, then exit
    started = time.perf_counter()
    try:
        start = relay_.position
        head = container.head_position
        with Progress(
            TextColumn("[bold]relaying"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("relay", total=max(head - start, 0), rate="")

            def on_batch(stats: object) -> None:
                rate = relay_.stats.published / max(time.perf_counter() - started, 1e-9)
                done = min(relay_.stats.position, head) - start
                progress.update(task, completed=done, rate=f"{rate:,.0f} ev/s")

            asyncio.run(relay_.run(until_caught_up=True, on_batch=on_batch))
        console.print(
            f"relay at position {relay_.stats.position or relay_.position}: published "
            f"{relay_.stats.published} events in {time.perf_counter() - started:.1f}s"
        )
        if not once:
            console.print("following new events (Ctrl-C to stop)")
            asyncio.run(relay_.run())
    except KeyboardInterrupt:
        console.print(f"stopped at position {relay_.position}")
    finally:
        container.close()


@app.command()
def ingest(
    once: Annotated[
        bool, typer.Option(help="Stop when every partition is read to its end")
    ] = False,
    group: Annotated[str, typer.Option(help="Consumer group id")] = "reelpulse-ingest",
) -> None:
    """Consume raw engagement signals from Kafka (<prefix>.ingest.engagement.v1) into the
    event store; invalid or rejected messages go to the dead-letter topic.

    Offsets are committed only after the events are stored: safe to kill at any time."""
    import asyncio
    import signal

    from adapters.kafka.ingest import IngestStats, IngestWorker, progress_rate

    settings = Settings()
    if not settings.kafka_bootstrap_servers:
        console.print("[red]set REELPULSE_KAFKA_BOOTSTRAP_SERVERS to run ingestion[/red]")
        raise typer.Exit(2)
    container = _open(settings)
    worker = IngestWorker(settings, container, group_id=group)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    try:
        with Progress(
            TextColumn("[bold]ingesting"),
            TextColumn("{task.completed:,.0f} messages"),
            TextColumn("{task.fields[rate]}"),
            console=console,
        ) as progress:
            task = progress.add_task("ingest", total=None, rate="")

            def on_batch(stats: IngestStats) -> None:
                # stats.seconds is the run so far; no rate over its first, tiny interval
                rate = progress_rate(stats.consumed, stats.seconds)
                progress.update(task, completed=stats.consumed, rate=rate)

            asyncio.run(worker.run(until_idle=once, on_batch=on_batch))
    except KeyboardInterrupt:
        worker.stop()
    finally:
        console.print(worker.stats.summary())
        container.close()


@app.command("kafka-project")
def kafka_project(
    once: Annotated[
        bool, typer.Option(help="Stop when the assigned partitions are caught up")
    ] = False,
    feed: Annotated[
        str,
        typer.Option(
            help="What to run: `video` (stats, moderation, trending from <prefix>.feed.video.v1), "
            "`viewer` (sessions from <prefix>.feed.viewer.v1), `engagement` (the per-video "
            "engagement counters from <prefix>.engagement.v1), or `all` of them"
        ),
    ] = "all",
    group: Annotated[
        str | None, typer.Option(help="Consumer group id (one feed only; default per feed)")
    ] = None,
) -> None:
    """Run the keyed projections from Kafka as a consumer-group member: start N of these to
    split the partitions (docs/scaling.md). Offsets are stored with the read-model changes,
    so every event takes effect exactly once; serve with REELPULSE_KAFKA_PROJECTIONS=true
    leaves these projections to the workers."""
    import asyncio
    import signal

    from adapters.kafka.envelope import FEEDS
    from adapters.kafka.projection_consumer import DEFAULT_GROUP, KafkaProjectionWorker

    settings = Settings()
    if not settings.kafka_bootstrap_servers:
        console.print("[red]set REELPULSE_KAFKA_BOOTSTRAP_SERVERS to run Kafka projections[/red]")
        raise typer.Exit(2)
    choices = (*FEEDS, "engagement")
    feeds = list(choices) if feed == "all" else [feed]
    if any(f not in choices for f in feeds):
        console.print(f"[red]--feed must be one of {', '.join(choices)} or all[/red]")
        raise typer.Exit(2)
    if group is not None and len(feeds) > 1:
        console.print("[red]--group needs one --feed (each feed has its own group)[/red]")
        raise typer.Exit(2)
    container = _open(settings)
    workers = [
        KafkaProjectionWorker.for_container(container, group_id=group or DEFAULT_GROUP)
        if f == "engagement"
        else KafkaProjectionWorker.for_feed(container, f, group_id=group)
        for f in feeds
    ]

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signal_number, lambda: [w.stop() for w in workers])
        with Progress(
            TextColumn("[bold]projecting from Kafka"),
            TextColumn("{task.completed:,.0f} events"),
            TextColumn("position {task.fields[position]:,}"),
            console=console,
        ) as progress:
            task = progress.add_task("kafka", total=None, position=0)

            def advanced(_: Any) -> None:
                progress.update(
                    task,
                    completed=sum(w.stats.applied for w in workers),
                    position=min(w.stats.position for w in workers if w.tracked)
                    if any(w.tracked for w in workers)
                    else 0,
                )

            await asyncio.gather(*(w.run(until_idle=once, on_batch=advanced) for w in workers))

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    finally:
        for w in workers:
            console.print(f"kafka projection {w.group_id} stopped: {w.stats}")
        container.close()


def main() -> None:
    import shutil

    tune_gc()
    # Help that never cuts a word or name: rich panels on a wide terminal, else plain.
    app.rich_markup_mode, context = help_layout(sys.stdout, shutil.get_terminal_size().columns)
    app.info.context_settings = {**(app.info.context_settings or {}), **context}
    try:
        app()
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
