"""Intervention-based metrics on a ground-truth data source: FactorVAE score and BetaVAE score.

``data`` is any object with disentanglement_lib's ground-truth interface (``num_factors``,
``sample_factors(n, rng)``, ``sample_observations_from_factors(factors, rng)``), e.g.
:class:`betavae_np.synth.SyntheticMarket`; ``represent`` maps observations (m, ...) to codes
(m, n_codes), e.g. ``lambda X: model.encode(X)[0]``. Definitions and defaults as disentanglement_lib
``evaluation/metrics/factor_vae.py`` and ``beta_vae.py``. Batches are generated many at a time
(the sampled distribution is the same as one batch per call).
"""

from __future__ import annotations

import numpy as np

from ..exceptions import ConfigError, InputError
from .discrete import require_sklearn

__all__ = ["factor_vae_score", "beta_vae_score"]

#: Observations generated and represented per call (bounds memory).
CHUNK = 16_384


def _rng(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _positive(**kw):
    for name, v in kw.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ConfigError(f"{name} must be a positive integer, got {v!r}")


def _represent(data, represent, factors, rng) -> np.ndarray:
    """Codes (m, n_codes) float64 of fresh observations of ``factors`` (m, n_factors), in chunks."""
    parts = []
    for a in range(0, factors.shape[0], CHUNK):
        obs = data.sample_observations_from_factors(factors[a:a + CHUNK], rng)
        z = np.asarray(represent(obs), dtype=np.float64)
        if z.ndim != 2 or z.shape[0] != obs.shape[0]:
            raise InputError(f"represent must return (n_observations, n_codes), got shape {z.shape}")
        parts.append(z)
    return np.concatenate(parts)


def _fixed_batches(data, num_points, batch_size, rng):
    """Factors of ``num_points`` batches sharing one factor: (num_points, batch_size, K), index (P,)."""
    k = rng.integers(0, data.num_factors, size=num_points)
    f = np.asarray(data.sample_factors(num_points * batch_size, rng)).reshape(num_points, batch_size, -1)
    rows = np.arange(num_points)
    f[rows, :, k] = f[rows, 0, k][:, None]
    return f, k


def _votes(data, represent, rng, batch_size, num_points, variances, active) -> np.ndarray:
    """votes (n_factors, n_codes): factor of each batch vs its argmin normalised variance (active dims)."""
    votes = np.zeros((data.num_factors, variances.shape[0]), dtype=np.int64)
    per = max(1, CHUNK // batch_size)
    for a in range(0, num_points, per):
        p = min(per, num_points - a)
        f, k = _fixed_batches(data, p, batch_size, rng)
        z = _represent(data, represent, f.reshape(p * batch_size, -1), rng).reshape(p, batch_size, -1)
        local = np.var(z, axis=1, ddof=1)  # (p, n_codes)
        arg = np.argmin(local[:, active] / variances[active], axis=1)
        np.add.at(votes, (k, arg), 1)
    return votes


def factor_vae_score(data, represent, rng=0, batch_size: int = 64, num_train: int = 10_000,
                     num_eval: int = 5_000, num_variance_estimate: int = 10_000,
                     prune_threshold: float = 0.05) -> dict:
    """FactorVAE disentanglement score (Kim & Mnih 2018), disentanglement_lib's variant.

    Parameters
    ----------
    data : ground-truth data source (see module notes)
    represent : callable
        Observations (m, ...) -> codes (m, n_codes).
    rng : int or numpy.random.Generator
    batch_size : int
        Observations per vote (one factor fixed across the batch).
    num_train, num_eval : int
        Votes that build / evaluate the majority-vote classifier.
    num_variance_estimate : int
        Observations for the global variance of each code.
    prune_threshold : float
        Codes whose global sd is below this are left out (collapsed dimensions).

    Returns
    -------
    dict
        ``{"train_accuracy", "eval_accuracy", "num_active_dims"}``; the score is ``eval_accuracy``.
        No active dimension gives zeros.

    Notes
    -----
    Per vote: pick factor ``k`` uniformly, draw a batch with ``v_k`` fixed, take the code variances
    over the batch (ddof=1) divided by the global ones, vote ``(k, argmin over active codes)``. The
    classifier maps each (active) code to its most voted factor; accuracy = share of votes it gets
    right. ``num_active_dims`` counts the active codes (disentanglement_lib reports the number of
    all codes there, ``len`` of its boolean mask).
    """
    _positive(batch_size=batch_size, num_train=num_train, num_eval=num_eval,
              num_variance_estimate=num_variance_estimate)
    if batch_size < 2:
        raise ConfigError("batch_size must be at least 2 (a variance over the batch)")
    rng = _rng(rng)
    z = _represent(data, represent, np.asarray(data.sample_factors(num_variance_estimate, rng)), rng)
    variances = np.var(z, axis=0, ddof=1)
    active = np.sqrt(variances) >= prune_threshold
    if not active.any():
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}
    train = _votes(data, represent, rng, batch_size, num_train, variances, active)
    classifier = np.argmax(train, axis=0)
    cols = np.arange(train.shape[1])
    evals = _votes(data, represent, rng, batch_size, num_eval, variances, active)
    return {"train_accuracy": float(train[classifier, cols].sum() / train.sum()),
            "eval_accuracy": float(evals[classifier, cols].sum() / evals.sum()),
            "num_active_dims": int(active.sum())}


def _beta_points(data, represent, rng, batch_size, num_points):
    """Features (P, n_codes): mean |z1 - z2| over pairs sharing one factor; labels (P,)."""
    feats, labels = [], []
    per = max(1, CHUNK // (2 * batch_size))
    for a in range(0, num_points, per):
        p = min(per, num_points - a)
        k = rng.integers(0, data.num_factors, size=p)
        f1 = np.asarray(data.sample_factors(p * batch_size, rng)).reshape(p, batch_size, -1)
        f2 = np.asarray(data.sample_factors(p * batch_size, rng)).reshape(p, batch_size, -1)
        rows = np.arange(p)
        f2[rows, :, k] = f1[rows, :, k]
        both = np.concatenate([f1.reshape(p * batch_size, -1), f2.reshape(p * batch_size, -1)])
        z = _represent(data, represent, both, rng)
        z1, z2 = z[:p * batch_size].reshape(p, batch_size, -1), z[p * batch_size:].reshape(p, batch_size, -1)
        feats.append(np.mean(np.abs(z1 - z2), axis=1))
        labels.append(k)
    return np.concatenate(feats), np.concatenate(labels)


def beta_vae_score(data, represent, rng=0, batch_size: int = 64, num_train: int = 10_000,
                   num_eval: int = 5_000) -> dict:
    """BetaVAE disentanglement score (Higgins et al. 2017), disentanglement_lib's variant.

    Parameters
    ----------
    data, represent, rng
        As :func:`factor_vae_score`.
    batch_size : int
        Pairs of observations averaged per point.
    num_train, num_eval : int
        Points for training / evaluating the classifier.

    Returns
    -------
    dict
        ``{"train_accuracy", "eval_accuracy"}`` of a scikit-learn ``LogisticRegression`` (defaults,
        ``random_state`` from ``rng``) predicting the fixed factor from ``mean |z1 - z2|``.

    Notes
    -----
    A point: factor ``k`` uniform, ``batch_size`` pairs of factor draws sharing ``v_k``, feature
    ``mean_b |z(x1_b) - z(x2_b)|`` (n_codes,). Needs scikit-learn.
    """
    require_sklearn("beta_vae_score")
    from sklearn.linear_model import LogisticRegression

    _positive(batch_size=batch_size, num_train=num_train, num_eval=num_eval)
    rng = _rng(rng)
    seed = int(rng.integers(0, 2**31 - 1))
    x_tr, y_tr = _beta_points(data, represent, rng, batch_size, num_train)
    x_ev, y_ev = _beta_points(data, represent, rng, batch_size, num_eval)
    model = LogisticRegression(random_state=seed)
    model.fit(x_tr, y_tr)
    return {"train_accuracy": float(model.score(x_tr, y_tr)), "eval_accuracy": float(model.score(x_ev, y_ev))}
