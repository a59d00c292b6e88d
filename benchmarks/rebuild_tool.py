"""The projection rebuild tool's rate on a PostgreSQL store (issue 6).

    python -m benchmarks.rebuild_tool [--events 1000000] [--fill-minutes 10]
                                      [--projections stats,trending]

Fills a fresh PostgreSQL database (REELPULSE_TEST_DATABASE_URL, else a throwaway local
server) with the seeded workload generator scaled up, through the application layer
(engagement batches take the bulk COPY path), stopping at --events or after
--fill-minutes, whichever comes first. Then, for each projection: the baseline, an
in-place rebuild (reset, then the runner from the first event into the live tables), and
a blue/green rebuild (shadow schema, recount/checksum verification, atomic switch), in
the same run on the same store. Prints events/s of both and their ratio, and the switch
time (how long live runners of that projection are held off).
"""

import argparse
import time
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from benchmarks.core import tests_on_path

console = Console(stderr=True)


def fill(url: str, events: int, minutes: float) -> tuple[int, float]:
    from adapters.bootstrap import bootstrap
    from adapters.settings import Settings
    from adapters.workload import WorkloadConfig, drive_application, generate

    # ~3,600 events per scale unit and day (the test workload's shape), 3 days.
    base = WorkloadConfig(seed=42, days=3, creators=20, viewers=300, views_per_day=1500,
                          batch_window_seconds=600)  # fmt: skip
    config = base.scale(max(events / (base.days * 3600), 1.0))
    console.print(f"generating {config}")
    workload = generate(config)
    container = bootstrap(Settings(database_url=url, projections_in_process=False))
    deadline, started = time.monotonic() + minutes * 60, time.perf_counter()
    try:
        with Progress(TextColumn("[bold]filling"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=console) as progress:  # fmt: skip
            task = progress.add_task("fill", total=events)

            def commands() -> Iterator[Any]:
                for i, command in enumerate(workload.commands):
                    if i % 50 == 0:
                        head = container.head_position
                        progress.update(task, completed=head)
                        if time.monotonic() > deadline or head >= events:
                            return
                    yield command

            drive_application(container, commands())
        return container.head_position, time.perf_counter() - started
    finally:
        container.close()


def grow(url: str, target: int) -> int:
    """Copy the store's engagement streams inside PostgreSQL, with fresh stream ids (md5 of
    the id and the copy number), until it holds about `target` events; return the head.
    Every row is a real stored event of the library's format; copies repeat the viewers,
    videos and event times of the originals (views of existing videos), so projections
    process them like any other engagement."""
    import psycopg

    from benchmarks.growth import TABLE

    with psycopg.connect(url, autocommit=True) as conn:

        def scalar(sql: str, *args: Any) -> int:
            return int(conn.execute(sql, args).fetchone()[0])  # type: ignore[index]

        head = scalar(f"SELECT count(*) FROM {TABLE}")
        last = scalar(f"SELECT max(notification_id) FROM {TABLE}")
        block = scalar(f"SELECT count(*) FROM {TABLE} WHERE topic LIKE %s", "domain.engagement:%")
        copy = 0
        with Progress(TextColumn("[bold]growing"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=console) as progress:  # fmt: skip
            task = progress.add_task("grow", total=target, completed=head)
            while head + block <= target:
                copy += 1
                conn.execute(
                    f"INSERT INTO {TABLE} (originator_id, originator_version, topic, state) "
                    "SELECT md5(e.originator_id::text || ':' || %s::text)::uuid, "
                    "e.originator_version, e.topic, e.state "
                    f"FROM {TABLE} e WHERE e.notification_id <= %s AND e.topic LIKE %s "
                    "ORDER BY e.notification_id",
                    (copy, last, "domain.engagement:%"),
                )
                head += block
                progress.update(task, completed=head)
        return scalar(f"SELECT max(notification_id) FROM {TABLE}")


def measure(url: str, name: str) -> dict[str, float]:
    from adapters.bootstrap import bootstrap
    from adapters.projections.rebuild import Rebuilder
    from adapters.settings import Settings

    container = bootstrap(Settings(database_url=url, alert_actions_enabled=False))
    try:
        rebuilder = Rebuilder.for_container(container)
        in_place = rebuilder.rebuild(name, in_place=True)
        console.print(in_place.summary())
        blue_green = rebuilder.rebuild(name)
        console.print(blue_green.summary())
        return {
            "events": blue_green.events,
            "in_place": in_place.rate,
            "blue_green": blue_green.rate,
            "switch": blue_green.switch_seconds,
            "identical": float(blue_green.identical),
        }
    finally:
        container.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--fill-minutes", type=float, default=10.0)
    parser.add_argument("--projections", default="stats,trending")
    parser.add_argument(
        "--grow-from", type=int, default=0,
        help="fill only this many events through the application, then copy its engagement "
        "streams inside PostgreSQL up to --events (fast; see grow())",
    )  # fmt: skip
    args = parser.parse_args()
    tests_on_path()
    from support.pgserver import start_session_server

    server = start_session_server()
    try:
        with server.fresh_database() as url:
            head, seconds = fill(url, args.grow_from or args.events, args.fill_minutes)
            console.print(
                f"store filled: head {head:,} in {seconds:.0f}s ({head / seconds:,.0f} ev/s)"
            )
            if args.grow_from:
                head = grow(url, args.events)
                console.print(f"store grown to head {head:,} (engagement streams copied)")
            table = Table(title=f"rebuild on PostgreSQL, store head {head:,}")
            for col in ("projection", "events", "in place ev/s", "blue/green ev/s", "ratio",
                        "switch s", "identical"):  # fmt: skip
                table.add_column(col, justify="left" if col == "projection" else "right")
            for name in args.projections.split(","):
                m = measure(url, name)
                table.add_row(name, f"{m['events']:,.0f}", f"{m['in_place']:,.0f}",
                              f"{m['blue_green']:,.0f}", f"{m['blue_green'] / m['in_place']:.2f}",
                              f"{m['switch']:.2f}", "yes" if m["identical"] else "no")  # fmt: skip
            Console().print(table)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
