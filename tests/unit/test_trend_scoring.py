"""How the emerging-trends scorer counts detections, its growth-rate rule, and no leakage."""

from datetime import timedelta

from adapters.evaluation.leakage import check
from adapters.evaluation.trends import Series, _end, growth_rule, judge, predict
from adapters.workload.model import GroundTruth, TrendStart
from adapters.workload.trend_evaluation import START, Launch, synthetic_stream

TREND = TrendStart("hashtag", "new", START + timedelta(hours=2), START + timedelta(hours=8))
TRUTH = GroundTruth((), (), trend_starts=(TREND,))
KEY = ("hashtag", "new")


def test_a_hit_is_the_trends_key_between_its_start_and_its_peak():
    early = judge([(KEY, START + timedelta(hours=5))], TRUTH)
    assert (early.precision, early.recall, early.leads) == (1.0, 1.0, (3.0,))
    late = judge([(KEY, TREND.peak + timedelta(minutes=10))], TRUTH)  # after the peak
    assert (late.precision, late.recall) == (0.0, 0.0)
    other = judge([(KEY, START + timedelta(hours=5)), (("sound", "x"), START)], TRUTH)
    assert (other.precision, other.recall) == (0.5, 1.0)


def test_the_growth_rule_fires_once_when_an_hour_triples_the_one_before():
    b0 = int(START.timestamp() // 600)
    per = {b0 + b: 1 for b in range(12)}  # 6 an hour for two hours
    per |= {b0 + 12 + b: 4 for b in range(12)}  # then 24 an hour for two hours
    s = Series({KEY: per}, set(per))
    # Fires when the trailing hour first reaches 3x the hour before (never before that),
    # and not again while it stays lifted.
    assert growth_rule(s, growth=3.0, floor=2) == [(KEY, _end(b0 + 15))]  # 18 >= 3 x 6


def test_the_models_outputs_do_not_depend_on_later_events():
    launch = Launch("brandnew", START + timedelta(hours=8), top=0.12)
    events = list(enumerate(synthetic_stream(seed=3, days=0.75, launch=launch), start=1))
    assert any(p.model == "emerging_trends.alert" for p in predict(events))
    assert check(predict, events) == []
