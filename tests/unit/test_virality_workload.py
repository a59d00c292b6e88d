"""The virality phase: a video's first day is decided after its first hour, by how its
first viewers watched (observable), not by a coin nor by the first hour's view count."""

import statistics
from dataclasses import replace

import pytest

from adapters.workload.generator import _Simulation
from adapters.workload.model import WorkloadConfig
from adapters.workload.virality import HOUR, TAKEOFF_DELAY, _Takeoff, took_off

SMALL = WorkloadConfig(seed=11, days=2, creators=80, viewers=2000, views_per_day=4000)


@pytest.fixture(scope="module")
def sim() -> _Simulation:
    simulation = _Simulation(SMALL)
    simulation.run()
    return simulation


def _takeoff(video) -> _Takeoff:
    for cell in video.multiplier.__closure__:
        if isinstance(cell.cell_contents, _Takeoff):
            return cell.cell_contents
    raise AssertionError("not a virality multiplier")


def _early(sim: _Simulation):
    for cell in sim.videos[0].multiplier.__closure__:
        if type(cell.cell_contents).__name__ == "_EarlyEngagement":
            return cell.cell_contents
    raise AssertionError("no tally")


def test_some_videos_take_off_and_only_after_their_first_hour(sim):
    decided = [(i, v) for i, v in enumerate(sim.videos) if took_off(v) is not None]
    flown = [v for _, v in decided if took_off(v)]
    assert 0.03 * len(decided) < len(flown) < 0.4 * len(decided)
    for v in flown:
        t = _takeoff(v)
        assert t.start >= v.published + TAKEOFF_DELAY[0] > v.published + HOUR
        assert t.extra(v.published + HOUR) == 0.0 < t.extra(t.start + t.rise)


def test_the_verdict_follows_how_the_first_viewers_watched(sim):
    early = _early(sim)
    decided = [(i, v) for i, v in enumerate(sim.videos) if took_off(v) is not None]
    flown = [early.score(i) for i, v in decided if took_off(v)]
    kept = [early.score(i) for i, v in decided if not took_off(v)]
    assert statistics.fmean(flown) > statistics.fmean(kept) + 0.3


def test_a_seed_gives_the_same_verdicts():
    """The verdicts read the simulation's own signals: still a function of the seed."""
    a, b = _Simulation(replace(SMALL, days=1)), _Simulation(replace(SMALL, days=1))
    a.run()
    b.run()
    assert [v.id for v in a.videos] == [v.id for v in b.videos]
    assert [took_off(v) for v in a.videos] == [took_off(v) for v in b.videos]
