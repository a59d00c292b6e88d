"""The recommendation model's learning step: river's BiasedMF, without its overhead.

`learn` is BiasedMF.learn_one without its overhead. river's learn_one builds four
one-entry gradient dicts per rating, dispatches four optimiser steps through isinstance
checks and predicts through predict_one (about 35 µs a rating here, most of the
projection's time); `learn` does the same arithmetic in the same order on the model's own
weights, initialisers and optimisers, so the model is bit for bit the one learn_one
builds (tests/unit/test_reco_model.py runs both side by side). A learner that is not
exactly a BiasedMF (a benchmark's stand-in) learns through its own learn_one.
`add_error` is the MAE and RMSE metrics' update, inlined the same way.
"""

from typing import Any

import numpy as np
from river import metrics, reco
from river.optim import schedulers


def predict(m: Any, u: int, i: int) -> float:
    """The model's rating for (u, i). Reads the weights instead of calling predict_one,
    which would insert random factors for every id it has not learned yet."""
    return predict_dot(m, u, i)[0]


def predict_dot(m: Any, u: int, i: int) -> tuple[float, float | None]:
    """predict, and the dot product of the factors when both were learned (None when
    not): `learn` of the same pair, before any other learning, can reuse it."""
    y = m.global_mean.get() + m.u_biases.get(u, 0.0) + m.i_biases.get(i, 0.0)
    pu, qi = m.u_latents.get(u), m.i_latents.get(i)
    if pu is not None and qi is not None:
        dot = float(np.dot(pu, qi))  # np.dot and @ are one numpy routine for vectors
        return y + dot, dot
    return y, None


def learn(m: Any, u: int, i: int, y: float, dot: float | None = None) -> None:
    """m.learn_one(u, i, y) (river's BiasedMF with SGD optimisers, as of river 0.26).
    `dot`: np.dot of u's and i's factors, from predict_dot of this pair with no learning
    in between (the factors have not changed), else None."""
    if type(m) is not reco.BiasedMF:
        m.learn_one(u, i, y)
        return
    m.global_mean.update(y)
    # predict_one, whose lookups create missing weights in this order (the initialiser's
    # random stream depends on it): user bias, item bias, user factors, item factors.
    ub, ib = m.u_biases[u], m.i_biases[i]
    pu, qi = m.u_latents[u], m.i_latents[i]
    y_pred = m.global_mean.get()
    y_pred += ub
    y_pred += ib
    y_pred += float(np.dot(pu, qi)) if dot is None else dot
    g = m.loss.gradient(y, y_pred)
    g = max(min(g, m.clip_gradient), -m.clip_gradient)
    # The four SGD steps of learn_one, each gradient from the weights before any update.
    # The latent ones element by element on lists: numpy's elementwise float64 arithmetic
    # rounds exactly like Python's (one rounding per operation, nothing fused), and eight
    # elements in a list comprehension cost less than ten numpy calls.
    l2 = m.l2_latent
    p, q = pu.tolist(), qi.tolist()
    rate = _rate(m.u_latent_optimizer)
    pu[:] = [a - rate * (g * b + l2 * a) for a, b in zip(p, q, strict=True)]
    rate = _rate(m.i_latent_optimizer)
    qi[:] = [b - rate * (g * a + l2 * b) for a, b in zip(p, q, strict=True)]
    m.u_biases[u] = ub - _rate(m.u_bias_optimizer) * (g + m.l2_bias * ub)
    m.i_biases[i] = ib - _rate(m.i_bias_optimizer) * (g + m.l2_bias * ib)


def _rate(optimizer: Any) -> float:
    """The rate of the optimiser's next step, which this step counts (as SGD.step does)."""
    lr = optimizer.lr
    # A constant schedule's rate without its property and get() (two calls per step).
    rate: float = (
        lr.learning_rate if type(lr) is schedulers.Constant else lr.get(optimizer.n_iterations)
    )
    optimizer.n_iterations += 1
    return rate


def add_error(mae: Any, rmse: Any, y_true: float, y_pred: float) -> None:
    """mae.update(y_true, y_pred) and rmse.update(y_true, y_pred) for river's MAE and RMSE
    (running means of |error| and error², stats.Mean.update with weight 1.0)."""
    if type(mae) is not metrics.MAE or type(rmse) is not metrics.RMSE:
        mae.update(y_true, y_pred)
        rmse.update(y_true, y_pred)
        return
    mean = mae._mean
    mean.n += 1.0
    mean._mean += (1.0 / mean.n) * (abs(y_true - y_pred) - mean._mean)
    mean = rmse._mean
    mean.n += 1.0
    mean._mean += (1.0 / mean.n) * ((y_true - y_pred) ** 2 - mean._mean)
