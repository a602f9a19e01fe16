"""Disentanglement metrics on codes whose answer is known (rows are samples)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from betavae_np import metrics
from betavae_np.exceptions import InputError
from betavae_np.metrics.supervised import dci_scores, sap_matrix
from naive import ref_mig, ref_mutual_info


def _factorial(values=(3, 4, 5), reps=20):
    """All combinations of the factor values, ``reps`` times: exactly independent factors."""
    grid = np.stack(np.meshgrid(*[np.arange(v) for v in values], indexing="ij"), -1).reshape(-1, len(values))
    return np.tile(grid, (reps, 1))


def _identity(f, rng, noise=0.01):
    return f + rng.normal(0, noise, f.shape)


#: A rotation that spreads every factor equally over all four codes (Hadamard / 2).
H4 = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]]) / 2.0


class ToyData:
    """Ground-truth interface whose observations are the factors plus tiny noise."""

    def __init__(self, values=(3, 4, 5)):
        self.factors_num_values = list(values)
        self.num_factors = len(values)

    def sample_factors(self, n, rng):
        return np.stack([rng.integers(0, v, n) for v in self.factors_num_values], 1)

    def sample_observations_from_factors(self, f, rng):
        return f + rng.normal(0, 0.01, f.shape)


# -- MIG ------------------------------------------------------------------------------------------
def test_mig_identity_codes_score_near_one():
    rng = np.random.default_rng(0)
    f = _factorial()
    assert metrics.mig(_identity(f, rng), f) > 0.95


def test_mig_rotated_codes_score_low():
    rng = np.random.default_rng(1)
    f = _factorial((4, 4, 4, 4), reps=4)
    assert metrics.mig(_identity(f, rng) @ H4, f) < 0.1


def test_mig_constant_code_scores_zero():
    f = _factorial()
    assert metrics.mig(np.full((f.shape[0], 2), 3.0), f) == 0.0


def test_mig_duplicated_codes_score_zero():
    rng = np.random.default_rng(2)
    f = _factorial()
    c = _identity(f, rng)
    assert metrics.mig(np.concatenate([c, c], axis=1), f) == pytest.approx(0.0, abs=1e-12)


def test_mig_hand_computed_tiny_case():
    f = np.array([[0], [0], [1], [1]])
    codes = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 1.0]])
    # code 0 determines f: I = ln 2; code 1 bins {0,0,0 | 1}: I = ln 2 - 3/4 H(2/3, 1/3)
    h = -(2 / 3) * np.log(2 / 3) - (1 / 3) * np.log(1 / 3)
    expected = (np.log(2) - (np.log(2) - 0.75 * h)) / np.log(2)
    assert metrics.mig(codes, f) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_mig_matches_the_definition(seed):
    rng = np.random.default_rng(seed)
    f = np.stack([rng.integers(0, k, 300) for k in (2, 5, 7)], 1)
    codes = np.concatenate([f[:, :2] + rng.normal(0, 0.7, (300, 2)), rng.normal(size=(300, 3))], 1)
    codes[:, 4] = np.round(codes[:, 4])  # ties and values on bin edges
    assert abs(metrics.mig(codes, f, n_bins=20) - ref_mig(codes, f, 20)) < 1e-9
    assert abs(metrics.mig(codes, f, n_bins=7) - ref_mig(codes, f, 7)) < 1e-9


def test_discrete_mutual_info_matches_the_definition():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, (200, 2))
    b = (a[:, :1] + rng.integers(0, 2, (200, 1))) * 10
    got = metrics.discrete_mutual_info(a, b)
    assert got.shape == (2, 1)
    for i in range(2):
        assert got[i, 0] == pytest.approx(ref_mutual_info(list(a[:, i]), list(b[:, 0])), abs=1e-12)
    assert metrics.discrete_entropy(a)[0] == pytest.approx(ref_mutual_info(list(a[:, 0]), list(a[:, 0])))


def test_discrete_mutual_info_agrees_with_scikit_learn():
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 6, (500, 1)), rng.integers(0, 3, (500, 1))
    b[:100, 0] = a[:100, 0]
    assert metrics.discrete_mutual_info(a, b)[0, 0] == pytest.approx(skm.mutual_info_score(a[:, 0], b[:, 0]), abs=1e-12)


def test_mig_rejects_constant_factor_and_bad_shapes():
    f = np.zeros((10, 1), dtype=int)
    with pytest.raises(InputError, match="single value"):
        metrics.mig(np.random.default_rng(0).normal(size=(10, 2)), f)
    with pytest.raises(InputError, match="rows are samples"):
        metrics.mig(np.zeros((10, 2)), np.zeros((9, 1), dtype=int))
    with pytest.raises(InputError):
        metrics.mig(np.zeros((10, 2)), np.zeros((10, 1)))  # float factors


# -- DCI ------------------------------------------------------------------------------------------
def test_dci_scores_of_diagonal_and_uniform_importance():
    assert dci_scores(np.eye(3)) == pytest.approx((1.0, 1.0), abs=1e-8)
    assert dci_scores(np.ones((3, 3))) == pytest.approx((0.0, 0.0), abs=1e-8)
    assert dci_scores(np.zeros((3, 3))) == pytest.approx((0.0, 0.0), abs=1e-8)
    # one code explains both factors: that code is entangled (D = 0), each factor complete (C = 1)
    d, c = dci_scores(np.array([[1.0, 1.0], [0.0, 0.0]]))
    assert d == pytest.approx(0.0, abs=1e-8) and c == pytest.approx(1.0, abs=1e-8)


def test_dci_identity_near_one_rotation_low_constant_zero():
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(0)
    f_tr, f_te = _factorial(reps=5), _factorial(reps=2)
    ident = metrics.dci(_identity(f_tr, rng), f_tr, _identity(f_te, rng), f_te)
    assert ident["disentanglement"] > 0.9 and ident["completeness"] > 0.9 and ident["informativeness"] > 0.95
    f_tr, f_te = _factorial((4, 4, 4, 4), reps=2), _factorial((4, 4, 4, 4))
    rot = metrics.dci(_identity(f_tr, rng) @ H4, f_tr, _identity(f_te, rng) @ H4, f_te)
    assert rot["disentanglement"] < 0.5
    const = metrics.dci(np.zeros((f_tr.shape[0], 2)), f_tr, np.zeros((f_te.shape[0], 2)), f_te)
    assert const["disentanglement"] == pytest.approx(0.0, abs=1e-8)


# -- SAP ------------------------------------------------------------------------------------------
def test_sap_hand_computed_continuous_case():
    f = _factorial((2, 2), reps=5)
    codes = np.stack([f[:, 0], f[:, 0] + f[:, 1]], 1).astype(float)
    # squared correlations: z0~f0 1, z1~f0 1/2, z0~f1 0, z1~f1 1/2  -> gaps 1/2 and 1/2
    np.testing.assert_allclose(sap_matrix(codes, f, codes, f, True), [[1, 0], [0.5, 0.5]], atol=1e-12)
    assert metrics.sap(codes, f, codes, f, continuous_factors=True) == pytest.approx(0.5, abs=1e-12)


def test_sap_discrete_identity_high_constant_zero():
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(0)
    f = _factorial((2, 2, 2), reps=50)
    codes = _identity(f, rng, 0.05)
    m = sap_matrix(codes, f, codes, f)
    assert np.allclose(np.diag(m), 1.0) and (m[~np.eye(3, dtype=bool)] < 0.65).all()
    assert metrics.sap(codes, f, codes, f) > 0.35
    assert metrics.sap(np.zeros((f.shape[0], 3)), f, np.zeros((f.shape[0], 3)), f, True) == 0.0


# -- FactorVAE and BetaVAE scores ----------------------------------------------------------------
def test_factor_vae_score_identity_one_rotation_lower_constant_zero():
    data = ToyData()
    kw = dict(num_train=300, num_eval=150, num_variance_estimate=2000)
    ident = metrics.factor_vae_score(data, lambda x: x, rng=0, **kw)
    assert ident["eval_accuracy"] == 1.0 and ident["train_accuracy"] == 1.0 and ident["num_active_dims"] == 3
    mixed = metrics.factor_vae_score(ToyData((4, 4, 4, 4)), lambda x: x @ H4, rng=0, **kw)
    assert mixed["eval_accuracy"] < 0.6  # every code moves with every factor: votes near chance
    const = metrics.factor_vae_score(data, lambda x: np.zeros((len(x), 2)), rng=0, **kw)
    assert const == {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}


def test_factor_vae_score_prunes_collapsed_dims_and_is_reproducible():
    data = ToyData()
    rep = lambda x: np.concatenate([x, np.full((len(x), 1), 0.01) * x[:, :1]], 1)  # sd < 0.05
    kw = dict(num_train=100, num_eval=50, num_variance_estimate=500)
    a = metrics.factor_vae_score(data, rep, rng=7, **kw)
    assert a["num_active_dims"] == 3 and a == metrics.factor_vae_score(data, rep, rng=7, **kw)


def test_factor_vae_score_runs_on_the_synthetic_market():
    from betavae_np.synth import SyntheticMarket

    m = SyntheticMarket(seed=0)
    kw = dict(rng=0, batch_size=16, num_train=50, num_eval=20, num_variance_estimate=200)
    r = metrics.factor_vae_score(m, lambda X: X[:, -5:], **kw)
    assert 0.0 <= r["eval_accuracy"] <= 1.0 and r["num_active_dims"] >= 1
    assert r == metrics.factor_vae_score(SyntheticMarket(seed=0), lambda X: X[:, -5:], **kw)  # a seed, the same votes


def test_beta_vae_score_identity_high():
    pytest.importorskip("sklearn")
    r = metrics.beta_vae_score(ToyData(), lambda x: x, rng=0, batch_size=16, num_train=300, num_eval=100)
    assert r["eval_accuracy"] > 0.95


def test_missing_scikit_learn_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    f = _factorial((2, 2), reps=3)
    with pytest.raises(ImportError, match=r"dci needs scikit-learn; install it with pip install 'betavae-np\[metrics\]'"):
        metrics.dci(f.astype(float), f, f.astype(float), f)


# -- unsupervised --------------------------------------------------------------------------------
def test_gaussian_total_correlation_of_correlated_pair():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5000, 2))
    z[:, 1] = 0.6 * z[:, 0] + 0.8 * z[:, 1]
    r = np.corrcoef(z.T)[0, 1]
    assert metrics.gaussian_total_correlation(z) == pytest.approx(-0.5 * np.log(1 - r ** 2), rel=1e-9)
    assert metrics.gaussian_total_correlation(rng.normal(size=(20000, 4))) < 1e-3
    assert metrics.gaussian_total_correlation(np.c_[z, np.ones(5000)]) == float("inf")


def test_mutual_info_matrix_and_mean_pairwise_mi():
    rng = np.random.default_rng(0)
    c = rng.normal(size=(4000, 3))
    dup = np.c_[c[:, :1], c[:, :1]]
    m = metrics.mutual_info_matrix(dup)
    assert m.shape == (2, 2) and m[0, 1] == pytest.approx(m[0, 0])
    assert metrics.mean_pairwise_mi(dup) == pytest.approx(m[0, 0])
    assert metrics.mean_pairwise_mi(c) < 0.1 * m[0, 0]


def test_active_units_counts_varying_means():
    rng = np.random.default_rng(0)
    mu = np.c_[rng.normal(size=(500, 3)), 0.01 * rng.normal(size=(500, 2))]
    assert metrics.active_units(mu) == 3
    assert metrics.active_units(mu, threshold=1e-6) == 5


def test_synthetic_report_collects_every_metric():
    pytest.importorskip("sklearn")
    r = metrics.synthetic_report(ToyData((2, 3)), lambda x: x, rng=0, num_train=300, num_test=100,
                                 factor_vae=False, beta_vae=False)
    assert r["mig"] > 0.9 and r["dci_disentanglement"] > 0.9 and r["active_units"] == 2
    assert {"mig", "dci", "sap", "total_correlation", "sample"} <= set(r["seconds"])
    assert "factor_vae" not in r and "beta_vae" not in r


def test_dci_importance_does_not_depend_on_the_number_of_threads():
    from betavae_np.metrics.supervised import dci_importance

    rng = np.random.default_rng(3)
    f = rng.integers(0, 4, (300, 3))
    z = np.c_[f + rng.normal(0, 0.5, f.shape), rng.normal(size=(300, 2))]
    one = dci_importance(z[:200], f[:200], z[200:], f[200:], rng=1, n_jobs=1)
    two = dci_importance(z[:200], f[:200], z[200:], f[200:], rng=1, n_jobs=3)
    np.testing.assert_array_equal(one[0], two[0])
    assert one[1:] == two[1:]
