"""The beta-TCVAE stage's kernels on their own: the vectorising exp against NumPy, the fixed-order
row sum against its naive twin, and the estimator stage (float32 and float64, split into blocks,
with the overflow fallback) against the brute-force estimator and its central differences."""

from __future__ import annotations

import numpy as np
import pytest
from naive import central_diff, ref_row_sum, ref_tc_grads, ref_tc_terms
from numba import njit

from betavae_np import losses
from betavae_np._kernels import tc
from betavae_np._kernels.fastexp import (EXP2_HI, EXP2_LO, SHIFT32, SHIFT64, exp2_shifted, fexp,
                                         fexp2)
from betavae_np._kernels.rowsum import lanes_for, row_sum
from betavae_np._kernels.simd import wide_vectors
from betavae_np.config import JIT_SERIAL

ULP = {np.float32: 2.0 ** -23, np.float64: 2.0 ** -52}


@njit(**JIT_SERIAL)
def _exp_all(x, out):  # a vectorised loop, as the kernels use fexp
    for i in range(x.shape[0]):
        out[i] = fexp(x[i])


@njit(**JIT_SERIAL)
def _exp2_all(x, out):
    for i in range(x.shape[0]):
        out[i] = fexp2(x[i])


@njit(**JIT_SERIAL)
def _exp2_shifted_all(y, m, K, out):
    for i in range(y.shape[0]):
        out[i] = exp2_shifted(y[i], K[i], m[i] - 100.0)


@njit(**JIT_SERIAL)
def _exp_narrow(x, out):
    for i in range(x.shape[0]):
        out[i] = fexp2(x[i]) * fexp(x[i])


@njit(**JIT_SERIAL)
def _exp_wide(x, out):
    wide_vectors()
    for i in range(x.shape[0]):
        out[i] = fexp2(x[i]) * fexp(x[i])


@njit(**JIT_SERIAL)
def _row_sums(X, n, out):
    for r in range(X.shape[0]):
        out[r] = row_sum(X, r, n)


@pytest.mark.parametrize("dtype,lo,hi", [(np.float32, -87.3, 88.3), (np.float64, -708.3, 709.4)])
def test_fexp_matches_numpy_exp_across_its_range(dtype, lo, hi):
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(lo, hi, 200_001), rng.uniform(-4, 4, 50_000),
                        [0.0, -0.0, 1e-30, -1e-30, np.log(2.0), -np.log(2.0)]]).astype(dtype)
    out = np.empty_like(x)
    _exp_all(x, out)
    ref = np.exp(x.astype(np.float64))
    rel = np.abs(out.astype(np.float64) - ref) / ref
    assert rel.max() <= 3 * ULP[dtype], f"max error {rel.max() / ULP[dtype]:.2f} ulp"
    # outside the range: flushed to 0 below, inf above; NaN stays NaN
    special = np.array([lo - 0.5, -1e4, -np.inf, hi + 0.5, 1e4, np.inf, np.nan], dtype)
    out = np.empty_like(special)
    _exp_all(special, out)
    np.testing.assert_array_equal(out[:3], 0.0)
    assert np.isposinf(out[3:6]).all() and np.isnan(out[6])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fexp2_matches_numpy_exp2_across_its_range(dtype):
    lo, hi = EXP2_LO[np.dtype(dtype)], EXP2_HI[np.dtype(dtype)]
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(lo, hi, 200_001), rng.uniform(-4, 4, 50_000),
                        [0.0, -0.0, 0.5, -0.5, 1e-30, -1e-30]]).astype(dtype)
    out = np.empty_like(x)
    _exp2_all(x, out)
    ref = np.exp2(x.astype(np.longdouble))
    rel = np.abs(out.astype(np.longdouble) - ref) / ref
    assert rel.max() <= 2 * ULP[dtype], f"max error {float(rel.max()) / ULP[dtype]:.2f} ulp"
    assert out[np.flatnonzero(x == 0.0)].tolist() == [1.0, 1.0]       # p(0) = 1 exactly
    special = np.array([lo - 0.5, -1e4, -np.inf, hi + 0.5, 1e4, np.inf, np.nan], dtype)
    out = np.empty_like(special)
    _exp2_all(special, out)
    np.testing.assert_array_equal(out[:3], 0.0)                       # 0 below LO
    np.testing.assert_array_equal(out[3:6], dtype(2.0) ** dtype(hi))  # 2**HI above HI
    assert np.isnan(out[6])
    assert fexp2(dtype(3.0)) == 8.0 and fexp2(dtype(lo - 1)) == 0.0   # the Python twin


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp2_shifted_is_the_power_of_the_exact_difference(dtype):
    """``2**(y - m)`` for integer shifts ``m`` passed as ``K = SHIFT - m``: the rounding of
    ``y - m`` to an integer and the reduction are exact, so the result is within 2 ulp of the
    power of the difference taken in extended precision; 0 below ``m - 100``, NaN kept."""
    rng = np.random.default_rng(3)
    n = 100_000
    m = rng.integers(-60, 60, n).astype(dtype)
    y = (m + rng.uniform(-99.9, 99.9, n)).astype(dtype)
    K = ((SHIFT32 if dtype == np.float32 else SHIFT64) - m).astype(dtype)
    out = np.empty(n, dtype)
    _exp2_shifted_all(y, m, K, out)
    ref = np.exp2(y.astype(np.longdouble) - m.astype(np.longdouble))
    rel = np.abs(out.astype(np.longdouble) - ref) / ref
    assert rel.max() <= 2 * ULP[dtype], f"max error {float(rel.max()) / ULP[dtype]:.2f} ulp"
    y2 = np.array([m[0] - 100.5, m[0] - 1e4, np.nan], dtype)
    out2 = np.empty(3, dtype)
    _exp2_shifted_all(y2, m[:1].repeat(3), K[:1].repeat(3), out2)
    assert out2[0] == 0.0 and out2[1] == 0.0 and np.isnan(out2[2])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_wide_vectors_changes_the_vector_width_not_the_bits(dtype):
    x = np.random.default_rng(4).uniform(-80, 80, 4099).astype(dtype)   # a ragged tail too
    narrow, wide = np.empty_like(x), np.empty_like(x)
    _exp_narrow(x, narrow)
    _exp_wide(x, wide)
    np.testing.assert_array_equal(wide, narrow)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_sum_adds_in_its_fixed_lane_order(dtype):
    rng = np.random.default_rng(1)
    X = (rng.standard_normal((3, 300)) * 10.0 ** rng.integers(-6, 6, (3, 300))).astype(dtype)
    for n in (0, 1, 3, lanes_for(dtype), 17, 2 * lanes_for(dtype) + 3, 3 * lanes_for(dtype), 4 * lanes_for(dtype) + 1, 256, 300):
        out = np.empty(3, dtype)
        _row_sums(X, n, out)
        for r in range(3):
            want = ref_row_sum(X[r, :n], lanes_for(dtype))
            assert out[r] == want, f"row {r}, n={n}: {out[r]!r} != {want!r}"
            assert row_sum(X, r, n) == want                # the Python fallback too
        np.testing.assert_allclose(out, X[:, :n].astype(np.float64).sum(axis=1),
                                   rtol=1e-4 if dtype == np.float32 else 1e-12, atol=1e-3)


def _stage(mu, logvar, z, loss, N, beta, dtype, nb):
    """Run gather / prepare / rows per block / terms / grad; return (terms[2:5], G (B, 3L))."""
    B, L = mu.shape
    lc, lw = loss.codes(-1, N)
    lw = np.append(lw, beta)                              # the fused TC weight (tc.TC_BETA)
    tcb = np.full(tc.tc_shape(B, L, nb), np.nan, dtype)   # nothing may be read before written
    H = np.concatenate([mu, logvar], axis=1).astype(dtype)
    tc.tc_gather(tcb, B, L, 0, H, z.astype(dtype))
    terms = np.zeros(8)
    tc.tc_prepare(B, L, nb, tcb)
    for c in range(nb):
        tc.tc_rows(c, nb, lc, lw, B, L, tcb)
    tc.tc_terms(B, L, tcb, terms)
    G = np.zeros((B, 3 * L), dtype)
    tc.tc_grad(lw, B, L, nb, tcb, G)
    return terms[2:5].copy(), G


def _batch(B, L, seed, spread=1.0):
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=(B, L))
    logvar = rng.normal(size=(B, L)) * spread - 1.0
    z = mu + np.exp(0.5 * logvar) * rng.normal(size=(B, L))
    return mu, logvar, z


def _reference(mu, logvar, z, loss, N, beta):
    """Brute-force terms and the central differences of alpha MI + beta TC + gamma KL_dim."""
    def objective():
        mi, tcv, dw = ref_tc_terms(mu, logvar, z, N, loss.estimator)
        return loss.alpha * mi + beta * tcv + loss.gamma * dw
    grads = [central_diff(objective, a, h=1e-6) for a in (z, mu, logvar)]
    return np.array(ref_tc_terms(mu, logvar, z, N, loss.estimator)), np.concatenate(grads, axis=1)


@pytest.mark.parametrize("estimator", ["mws", "mss"])
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-6), (np.float32, 2e-4)])
def test_tc_stage_matches_the_brute_force_estimator_and_its_gradient(estimator, dtype, rtol):
    """B = 37 in two blocks (uneven); float32 within float32 accuracy of the float64 answer."""
    B, L, N, beta = 37, 3, 400, 3.0
    loss = losses.TCVAE(alpha=0.7, beta=beta, gamma=1.3, estimator=estimator, dataset_size=N)
    mu, logvar, z = _batch(B, L, seed=2)
    terms, G = _stage(mu, logvar, z, loss, N, beta, dtype, nb=2)
    ref_terms, ref_G = _reference(mu, logvar, z, loss, N, beta)
    np.testing.assert_allclose(terms, ref_terms, rtol=rtol, atol=rtol * 1e-2,
                               err_msg="MI, TC, KL_dim")
    scale = np.abs(ref_G).max()
    for name, sl in (("dz", slice(0, L)), ("dmu", slice(L, 2 * L)), ("dlogvar", slice(2 * L, 3 * L))):
        np.testing.assert_allclose(G[:, sl], ref_G[:, sl], rtol=rtol * 10, atol=rtol * scale,
                                   err_msg=f"{name} ({estimator}, {np.dtype(dtype).name})")


def test_tc_stage_blocks_change_only_the_summation_order():
    loss = losses.TCVAE(estimator="mss", dataset_size=300)
    mu, logvar, z = _batch(64, 4, seed=3)
    one = _stage(mu, logvar, z, loss, 300, 2.0, np.float64, nb=1)
    two = _stage(mu, logvar, z, loss, 300, 2.0, np.float64, nb=2)
    np.testing.assert_array_equal(one[0], two[0])        # per-row terms, summed in row order
    np.testing.assert_allclose(one[1], two[1], rtol=1e-12, atol=1e-15)


def test_tc_stage_survives_log_densities_that_overflow_the_own_component_shift():
    """Row 0 has a huge variance and row 1 a tiny one centred on z_0: in float32 the
    per-dimension sums shifted by row 0's own density overflow (exp(~90)), so the row is redone
    with the maximum as the shift; the result is finite and matches float64."""
    B, L, N = 6, 2, 100
    loss = losses.TCVAE(estimator="mws", dataset_size=N)
    mu, logvar, z = _batch(B, L, seed=4)
    logvar[0, 0] = 100.0
    z[0, 0] = mu[0, 0] + 3.0
    mu[1, 0], logvar[1, 0], z[1, 0] = z[0, 0], -80.0, z[0, 0]
    t64, G64 = _stage(mu, logvar, z, loss, N, 1.0, np.float64, nb=1)
    t32, G32 = _stage(mu, logvar, z, loss, N, 1.0, np.float32, nb=1)
    assert np.isfinite(t32).all() and np.isfinite(G32).all()
    np.testing.assert_allclose(t32, t64, rtol=1e-5)
    ref_terms, _ = _reference(mu, logvar, z, loss, N, 1.0)
    np.testing.assert_allclose(t64, ref_terms, rtol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tc_stage_carries_a_nan_to_the_terms(dtype):
    """A NaN mean in one row (a diverged step) reaches the terms as NaN, not an error or a
    finite number."""
    loss = losses.TCVAE(estimator="mws", dataset_size=100)
    mu, logvar, z = _batch(10, 3, seed=7)
    mu[4, 1] = np.nan
    terms, G = _stage(mu, logvar, z, loss, 100, 2.0, dtype, nb=2)
    assert np.isnan(terms).all()
    assert np.isnan(G).any()


def test_naive_tc_gradient_twin_matches_central_differences():
    """The un-fused analytic twin the fused kernel is checked against is itself exact."""
    loss = losses.TCVAE(alpha=0.7, beta=3.0, gamma=1.3, estimator="mss", dataset_size=50)
    mu, logvar, z = _batch(9, 3, seed=6)
    _, ref_G = _reference(mu, logvar, z, loss, 50, 3.0)
    G = ref_tc_grads(mu, logvar, z, 50, "mss", 0.7, 3.0, 1.3)
    np.testing.assert_allclose(G, ref_G, rtol=1e-6, atol=1e-9 * np.abs(ref_G).max())


@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_tc_refresh_gives_the_gradient_of_the_backward_beta_when_the_schedule_moves(estimator):
    """The rows fuse the weights with lw[TC_BETA]; a backward with another beta reruns them, and
    its gradient is the un-fused one of that beta (and the same bits as a forward told that beta
    in advance). B = 37 (odd: the last row of a block has no pair) in two blocks."""
    B, L, N = 37, 3, 400
    loss = losses.TCVAE(alpha=0.7, beta=1.0, gamma=1.3, estimator=estimator, dataset_size=N)
    mu, logvar, z = _batch(B, L, seed=5)
    lc, lw = loss.codes(-1, N)
    lw = np.append(lw, 1.0)
    tcb = np.full(tc.tc_shape(B, L, 2), np.nan)
    tc.tc_gather(tcb, B, L, 0, np.concatenate([mu, logvar], axis=1), z)
    terms = np.zeros(8)
    tc.tc_forward(lc, lw, B, L, 2, tcb, terms)
    prev = 1.0
    for beta in (1.0, 4.0, 4.0, 0.25):                   # a schedule: same, new, same, new
        reran = tc.tc_refresh(lc, lw, beta, B, L, 2, tcb)
        assert reran == (beta != prev) and lw[tc.TC_BETA] == beta
        prev = beta
        G = np.zeros((B, 3 * L))
        tc.tc_grad(lw, B, L, 2, tcb, G)
        want = ref_tc_grads(mu, logvar, z, N, estimator, 0.7, beta, 1.3)
        np.testing.assert_allclose(G, want, rtol=1e-9, atol=1e-12 * np.abs(want).max(),
                                   err_msg=f"beta {beta}")
        ahead_terms, ahead_G = _stage(mu, logvar, z, loss, N, beta, np.float64, nb=2)
        np.testing.assert_array_equal(G, ahead_G)
        np.testing.assert_array_equal(terms[2:5], ahead_terms)
