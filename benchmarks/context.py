"""What every row function gets: the server, the template, the workload and the sizes."""

from dataclasses import dataclass, field

from benchmarks.env import Server, Workload


@dataclass(frozen=True)
class Scale:
    views: int  # the workload's views per day (signals: about 1.2x that)
    creators: int
    b1_signals: int
    b2_signals: int  # distinct signals B2's wrk script rotates through (new viewers each pass)
    b2_seconds: float  # per B2 round (wrk -d)
    b3_seconds: float  # per B3 round and side
    b4_signals: int  # signals ingested into the store that B4 rebuilds
    b5_rate: float
    b5_seconds: float
    b67_seconds: float  # per B6/B7 round and side (one connection)
    b10_seconds: float  # per B10 round, query and side
    b9_seconds: float  # the sustained load of each B9 run
    b9_batch: int  # items per B9 batch request
    b11_seconds: float  # each B11 run
    b11_clients: tuple[int, int]  # B11 connections: the smaller, then the larger
    growth: tuple[int, int]  # B8 store sizes (events)


SCALES = {
    "tiny": Scale(
        views=600, creators=10, b1_signals=300, b2_signals=300, b2_seconds=2, b3_seconds=2,
        b4_signals=300, b5_rate=50, b5_seconds=2, b67_seconds=1, b10_seconds=1,
        b9_seconds=4, b9_batch=50, b11_seconds=2, b11_clients=(4, 8), growth=(2_000, 4_000),
    ),
    "default": Scale(
        views=30_000, creators=200, b1_signals=10_000, b2_signals=20_000, b2_seconds=15,
        b3_seconds=15, b4_signals=12_000, b5_rate=500, b5_seconds=6, b67_seconds=4,
        b10_seconds=4, b9_seconds=60, b9_batch=500, b11_seconds=60, b11_clients=(32, 64),
        growth=(40_000, 120_000),
    ),
}  # fmt: skip


@dataclass
class Context:
    srv: Server
    template: str
    work: Workload
    scale: Scale
    repeat: int
    window: int | None = None  # B8: rebuild only the first `window` events of each store
    b9_rate: float | None = None  # B9's offered events/s when given (--b9-rate)
    measured: dict[str, float] = field(default_factory=dict)  # e.g. B4b's rate, for B9
