"""reco_model.learn is river's BiasedMF.learn_one, bit for bit (differential test), and
add_error is river's MAE and RMSE update.

Given two identical models, when one learns a stream of ratings through river's own
learn_one and the other through `learn` (new and known viewers and videos, ratings in
[0, 1], repeated pairs), then their weights, optimisers, global mean and the latent
initialiser's random stream are identical after every step, and so are predictions.
"""

import random
from dataclasses import replace

from river import metrics
from support.readmodels import structure

from projections.reco_model import add_error, learn, predict, predict_dot
from projections.recommendations import DEFAULT_PARAMS, new_model


def ratings(seed: int, n: int) -> list[tuple[int, int, float]]:
    rng = random.Random(seed)
    out = []
    for k in range(n):
        u = rng.randrange(1 + k // 3)  # new ids keep appearing, old ones come back
        i = rng.randrange(1 + k // 10)
        y = rng.choice([1.0, 0.0, rng.random()])
        out.append((u, i, y))
    return out


def test_learn_builds_the_model_learn_one_builds():
    reference, fast = new_model(DEFAULT_PARAMS), new_model(DEFAULT_PARAMS)
    for step, (u, i, y) in enumerate(ratings(seed=3, n=3000)):
        reference.learn_one(u, i, y)
        learn(fast, u, i, y)
        if step % 250 == 0:
            assert structure(fast) == structure(reference), f"differs after step {step}"
    assert structure(fast) == structure(reference)
    assert len(fast.u_latents) > 500 and fast.u_bias_optimizer.n_iterations == 3000
    for u, i, _ in ratings(seed=4, n=200):
        assert predict(fast, u, i) == predict(reference, u, i)


def test_learn_reusing_the_predicted_dot_product_builds_the_same_model():
    # As the projection does: predict (metrics), then learn the same pair with its dot
    reference, fast = new_model(DEFAULT_PARAMS), new_model(DEFAULT_PARAMS)
    reused = 0
    for step, (u, i, y) in enumerate(ratings(seed=6, n=3000)):
        predicted, dot = predict_dot(fast, u, i)
        assert predicted == predict(reference, u, i)
        reused += dot is not None
        reference.learn_one(u, i, y)
        learn(fast, u, i, y, dot)
        if step % 250 == 0:
            assert structure(fast) == structure(reference), f"differs after step {step}"
    assert structure(fast) == structure(reference)
    assert reused > 1000  # both factors known: the dot product was passed on


def test_learn_matches_with_other_rates_and_regularisation():
    params = replace(DEFAULT_PARAMS, n_factors=3, bias_lr=0.1, latent_lr=0.2, l2_bias=0.05,
                     l2_latent=0.0, seed=11)  # fmt: skip
    reference, fast = new_model(params), new_model(params)
    for u, i, y in ratings(seed=5, n=800):
        reference.learn_one(u, i, y)
        learn(fast, u, i, y)
    assert structure(fast) == structure(reference)


class StandIn:
    def __init__(self) -> None:
        self.learned: list[tuple[int, int, float]] = []

    def learn_one(self, u: int, i: int, y: float) -> None:
        self.learned.append((u, i, y))


def test_a_learner_that_is_not_a_biased_mf_learns_through_its_own_learn_one():
    stand_in = StandIn()
    learn(stand_in, 1, 2, 0.5)
    assert stand_in.learned == [(1, 2, 0.5)]


def test_add_error_updates_mae_and_rmse_as_river_does():
    rng = random.Random(2)
    reference, fast = (metrics.MAE(), metrics.RMSE()), (metrics.MAE(), metrics.RMSE())
    for _ in range(5000):
        y, p = rng.choice([1.0, 0.0, rng.random()]), rng.random()
        reference[0].update(y, p)
        reference[1].update(y, p)
        add_error(*fast, y, p)
    assert structure(fast) == structure(reference)
    assert fast[0].get() == reference[0].get() and fast[1].get() == reference[1].get()
