"""Adam: compiled kernel against the naive reference, validation, and that it minimises."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import betavae_np as bv
from betavae_np.exceptions import ConfigError, InputError
from naive import ref_adam_step

finite = st.floats(-10, 10, allow_nan=False, width=32)


@given(
    n=st.integers(1, 50),
    data=st.data(),
    steps=st.integers(1, 4),
    lr=st.floats(1e-4, 0.5),
    wd=st.sampled_from([0.0, 0.01, 0.3]),
    clip=st.sampled_from([None, 0.1, 1.0, 100.0]),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_adam_step_matches_reference(n, data, steps, lr, wd, clip, dtype):
    p0 = data.draw(hnp.arrays(dtype, n, elements=finite))
    grads = [data.draw(hnp.arrays(dtype, n, elements=finite)) for _ in range(steps)]
    opt = bv.Adam(lr=lr, betas=(0.8, 0.99), eps=1e-6, weight_decay=wd, clip_norm=clip)
    p = p0.copy()
    rp, rm, rv = p0.astype(np.float64), np.zeros(n), np.zeros(n)
    for t, g in enumerate(grads, start=1):
        g_before = g.copy()
        norm = opt.step(p, g)
        np.testing.assert_array_equal(g, g_before)  # grads not mutated
        rp, rm, rv, rnorm = ref_adam_step(rp, rm, rv, g, t, lr, (0.8, 0.99), 1e-6, wd, clip)
        assert norm == pytest.approx(rnorm, rel=1e-5, abs=1e-6)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(p, rp, **tol, err_msg="params")
    np.testing.assert_allclose(opt.m, rm, **tol, err_msg="m")
    np.testing.assert_allclose(opt.v, rv, **tol, err_msg="v")
    assert opt.t == steps and p.dtype == dtype


def test_adam_clipping_limits_first_step():
    # with clipping at 1 and a huge gradient, the clipped gradient has norm 1 and the moments see it
    opt = bv.Adam(lr=0.1, clip_norm=1.0)
    p = np.zeros(4)
    g = np.array([300.0, 400.0, 0.0, 0.0])
    assert opt.step(p, g) == pytest.approx(500.0)
    np.testing.assert_allclose(opt.m, 0.1 * g / 500.0)


def test_adam_weight_decay_shrinks_with_zero_gradient():
    opt = bv.Adam(lr=0.1, weight_decay=0.5)
    p = np.full(3, 2.0)
    opt.step(p, np.zeros(3))
    np.testing.assert_allclose(p, 2.0 * (1 - 0.05))


def test_adam_minimises_quadratic():
    rng = np.random.default_rng(0)
    a = rng.uniform(0.5, 5.0, 20)
    target = rng.normal(size=20)
    p = np.zeros(20)
    opt = bv.Adam(lr=0.05)
    start = np.sum(a * (p - target) ** 2)
    for _ in range(2000):
        opt.step(p, 2 * a * (p - target))
    assert np.sum(a * (p - target) ** 2) < 1e-6 * start


def test_adam_state_allocated_lazily_matching_buffer():
    opt = bv.Adam()
    assert opt.m is None and opt.v is None
    p = np.zeros(7, np.float32)
    opt.step(p, np.ones(7, np.float32))
    assert opt.m.shape == (7,) and opt.m.dtype == np.float32 and opt.v.dtype == np.float32


def test_adam_rejects_mismatched_buffers():
    with pytest.raises(InputError):
        bv.Adam().step(np.zeros(3, np.float32), np.zeros(3, np.float64))
    opt = bv.Adam()
    opt.step(np.zeros(3), np.zeros(3))
    with pytest.raises(InputError, match="reset"):
        opt.step(np.zeros(4), np.zeros(4))


@pytest.mark.parametrize("kw", [dict(lr=0), dict(lr=-1), dict(lr=float("nan")), dict(betas=(1.0, 0.9)),
                                dict(betas=(0.9,)), dict(eps=0), dict(weight_decay=-0.1),
                                dict(clip_norm=0), dict(lr="fast")])
def test_adam_rejects_bad_hyperparameters(kw):
    with pytest.raises(ConfigError):
        bv.Adam(**kw)


def test_adam_state_dict_round_trip_continues_identically():
    rng = np.random.default_rng(1)
    g = [rng.normal(size=5) for _ in range(4)]
    a, pa = bv.Adam(lr=0.01, clip_norm=1.0), np.ones(5)
    for x in g[:2]:
        a.step(pa, x)
    b, pb = bv.Adam(), pa.copy()
    b.load_state_dict(a.state_dict())
    for x in g[2:]:
        a.step(pa, x)
        b.step(pb, x)
    np.testing.assert_array_equal(pa, pb)

