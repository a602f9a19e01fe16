"""Dense-layer kernels against their plain-NumPy twins in ``tests/naive.py``."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from betavae_np._kernels.dense import act_backward_bias, bias_act, col_sum
from naive import ACT_CODES, ref_act, ref_act_backward_bias, ref_bias_act

ACTS = ["identity", "relu", "tanh", "elu", "leaky_relu"]
DTYPES = [np.float32, np.float64]


def _tol(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


@given(B=st.integers(1, 7), n=st.integers(1, 19), act=st.sampled_from(ACTS),
       dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**31))
def test_bias_act_matches_naive(B, n, act, dtype, seed):
    rng = np.random.default_rng(seed)
    Y = rng.normal(size=(B, n)).astype(dtype)
    b = rng.normal(size=n).astype(dtype)
    b0, Y0 = b.copy(), Y.copy()
    bias_act(Y, b, ACT_CODES[act])
    np.testing.assert_allclose(Y, ref_bias_act(Y0, b0, act), **_tol(dtype), err_msg=act)
    np.testing.assert_array_equal(b, b0)


@given(B=st.integers(1, 7), n=st.integers(1, 19), act=st.sampled_from(ACTS),
       dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**31))
def test_act_backward_bias_matches_naive(B, n, act, dtype, seed):
    rng = np.random.default_rng(seed)
    U = rng.normal(size=(B, n))
    U[np.abs(U) < 1e-3] = 0.5                       # away from the relu kink
    A = ref_act(U, act).astype(dtype)
    dA = rng.normal(size=(B, n)).astype(dtype)
    A0, dA0 = A.copy(), dA.copy()
    db = np.full(n, np.nan, dtype)                  # must be overwritten, not accumulated
    act_backward_bias(dA, db, A, ACT_CODES[act])
    dU_ref, db_ref = ref_act_backward_bias(dA0.astype(np.float64), U, act)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dA, dU_ref, **tol, err_msg=f"dU ({act})")
    np.testing.assert_allclose(db, db_ref, **tol, err_msg=f"db ({act})")
    np.testing.assert_array_equal(A, A0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_col_sum_overwrites_with_column_sums(dtype):
    G = np.arange(12, dtype=dtype).reshape(4, 3)
    G0 = G.copy()
    db = np.full(3, 99.0, dtype)
    col_sum(db, G)
    np.testing.assert_allclose(db, G0.sum(axis=0))
    np.testing.assert_array_equal(G, G0)


def test_bias_act_elu_is_continuous_and_saturates():
    Y = np.array([[-50.0, -1e-9, 0.0, 1e-9, 2.0]])
    bias_act(Y, np.zeros(5), ACT_CODES["elu"])
    np.testing.assert_allclose(Y, [[-1.0, -1e-9, 0.0, 1e-9, 2.0]], atol=1e-15)
