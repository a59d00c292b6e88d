"""The workload's taste phase: sessions of one viewer, for-you sessions that follow the
viewer's interests, and the slot's view count unchanged."""

from collections import Counter
from itertools import pairwise

from adapters.workload import taste
from adapters.workload.generator import _Simulation
from adapters.workload.model import WorkloadConfig


def simulation(seed: int = 3) -> _Simulation:
    sim = _Simulation(WorkloadConfig(seed=seed, creators=60, viewers=400))
    sim.population()
    sim.catalogue()
    return sim


def slot(sim: _Simulation, count: int) -> tuple[list, list, list, list]:
    eligible, weights = sim.eligible(list(range(len(sim.videos))), 12 * 3600.0)
    picks = sim.rng.choices(eligible, cum_weights=weights, k=count)
    watchers = sim.rng.choices(sim.viewers, cum_weights=sim.viewer_cum, k=count)
    return eligible, weights, picks, watchers


def test_views_come_in_sessions_and_keep_the_count():
    sim = simulation()
    phase = taste.Taste(sim)
    eligible, weights, picks, watchers = slot(sim, 3000)
    views = phase.views(picks, watchers, (eligible, weights), 0.0, 3600.0)
    assert len(views) == len(picks)
    runs = sum(a[0] != b[0] for a, b in pairwise(views)) + 1
    assert 3000 / runs > taste.SESSION_MEAN * 0.7  # one viewer watches several in a row
    assert all(0.0 <= t < 3600.0 + 60 * 45.0 for _, _, t in views)


def test_for_you_sessions_follow_the_viewers_interests():
    sim = simulation()
    phase = taste.Taste(sim)
    eligible, weights, picks, watchers = slot(sim, 6000)
    views = phase.views(picks, watchers, (eligible, weights), 0.0, 3600.0)

    def in_interests(viewer, video) -> bool:
        return bool(set(phase.topics_of[video]) & set(phase.interests[viewer]))

    taste_share = sum(in_interests(v, i) for v, i, _ in views) / len(views)
    global_share = sum(in_interests(v, i) for v, i in zip(watchers, picks, strict=True)) / len(
        picks
    )
    assert taste_share > 2 * global_share  # the feed follows taste; popularity alone does not
    strongest = Counter(max(i, key=i.get) for i in phase.interests.values())
    assert len(strongest) > 10  # interests spread over many topics, not only the big ones


def test_the_same_seed_gives_the_same_views():
    runs = []
    for _ in range(2):
        sim = simulation(seed=8)
        phase = taste.Taste(sim)
        eligible, weights, picks, watchers = slot(sim, 500)
        runs.append(phase.views(picks, watchers, (eligible, weights), 0.0, 3600.0))
    assert runs[0] == runs[1]
