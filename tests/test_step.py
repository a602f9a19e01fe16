"""The compiled engine: CBLAS gemm from Numba, the one-call passes and the chunked (split) batches.

References: ``A @ B`` in float64 for :func:`gemm`; the numpy engine (``np.matmul`` per layer,
itself checked against the naive backward and finite differences in ``test_model_grad``) for
the passes; central finite differences for a split batch's gradient.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numba import njit

import betavae_np as bv
from betavae_np._blas import find_gemm, threads_for_batch
from betavae_np._kernels import gemm as G
from betavae_np._kernels import step
from betavae_np.exceptions import ConfigError
from betavae_np.nn import engine
from naive import central_diff

pytestmark = pytest.mark.skipif(not engine.compiled_available(),
                                reason="numpy's CBLAS is not callable from compiled code here")


@njit
def _gemm_call(ta, tb, M, N, K, A, a_off, lda, B, b_off, ldb, C, c_off, ldc, iw):
    G.gemm(ta, tb, M, N, K, A, a_off, lda, B, b_off, ldb, C, c_off, ldc, iw)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
def test_gemm_matches_numpy_at_offsets(dtype, ta, tb):
    rng = np.random.default_rng(0)
    M, N, K = 7, 5, 3
    a = rng.normal(size=(K, M) if ta else (M, K))
    b = rng.normal(size=(N, K) if tb else (K, N))
    A = np.concatenate([rng.normal(size=11), a.ravel()]).astype(dtype)     # matrix at offset 11
    B = np.concatenate([rng.normal(size=4), b.ravel()]).astype(dtype)
    C = np.full(6 + M * N + 3, 7.0, dtype)
    A0, B0 = A.copy(), B.copy()
    _gemm_call(G.TRANS if ta else G.NO_TRANS, G.TRANS if tb else G.NO_TRANS, M, N, K,
               A, 11, a.shape[1], B, 4, b.shape[1], C, 6, N, engine.blas_int_type()(0))
    ref = (a.T if ta else a) @ (b.T if tb else b)
    tol = 1e-5 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(C[6:6 + M * N].reshape(M, N), ref, rtol=tol, atol=tol)
    assert np.all(C[:6] == 7.0) and np.all(C[6 + M * N:] == 7.0), "wrote outside C's block"
    np.testing.assert_array_equal(A, A0)
    np.testing.assert_array_equal(B, B0)


def _model(n_input, hidden, n_latent, act, seed, dtype):
    cfg = bv.VAEConfig(n_input=n_input, hidden=tuple(hidden), n_latent=n_latent, activation=act,
                       dtype=dtype)
    model = bv.BetaVAE(cfg, rng=seed)
    rng = np.random.default_rng(seed)
    model.params[:] += (rng.normal(size=model.params.size) * 0.1).astype(dtype)
    return model, rng


def _passes(model, X, eps, beta, eng, capacity=None):
    ws = model.workspace(capacity or X.shape[0], eng)
    assert ws.engine == eng
    recon, kl = model.forward_train(ws, X, eps)
    model.grads[:] = np.nan
    model.backward_train(ws, beta)
    return recon, kl, ws.kl_per_dim.copy(), ws.mu.copy(), ws.logvar.copy(), model.grads.copy()


@given(n_input=st.integers(1, 40), hidden=st.lists(st.integers(1, 40), max_size=3),
       n_latent=st.integers(1, 6), act=st.sampled_from(["relu", "tanh", "elu", "leaky_relu"]),
       B=st.sampled_from([1, 5, 31, 32, 63, 64, 65, 130]), spare=st.integers(0, 40),
       beta=st.sampled_from([0.0, 1.0, 4.0, -0.5]), dtype=st.sampled_from(["float32", "float64"]),
       seed=st.integers(0, 2**31))
def test_compiled_passes_match_the_numpy_engine(n_input, hidden, n_latent, act, B, spare, beta,
                                                dtype, seed):
    """Unsplit and split batches, workspaces larger than the batch, both dtypes."""
    model, rng = _model(n_input, hidden, n_latent, act, seed, dtype)
    X = rng.random((B, n_input)).astype(dtype)
    eps = rng.normal(size=(B, n_latent)).astype(dtype)
    X0, eps0 = X.copy(), eps.copy()
    got = _passes(model, X, eps, beta, "compiled", B + spare)
    ref = _passes(model, X, eps, beta, "numpy")
    rtol, atol = (2e-4, 1e-5) if dtype == "float32" else (1e-10, 1e-12)
    for name, g, r in zip(("recon", "kl", "kl_per_dim", "mu", "logvar", "grads"), got, ref):
        scale = max(1.0, float(np.abs(r).max()))
        np.testing.assert_allclose(g, r, rtol=rtol, atol=atol * scale, err_msg=name)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(eps, eps0)


def test_split_batch_gradient_matches_finite_differences():
    """A batch of 70 rows runs as two chunks; the summed gradient is that of the whole batch."""
    model, rng = _model(6, (5, 4), 2, "tanh", 3, "float64")
    X = rng.random((70, 6))
    eps = rng.normal(size=(70, 2))
    assert step.n_chunks_for(70) == 2
    ws = model.workspace(70, "compiled")

    def loss():
        recon, kl = model.forward_train(ws, X, eps)
        return recon + 3.0 * kl

    loss()
    model.backward_train(ws, 3.0)
    g = model.grads.copy()
    fd = central_diff(loss, model.params)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-7 * max(1.0, np.abs(fd).max()))


def test_parallel_and_sequential_chunks_give_the_same_bits():
    model, rng = _model(160, (128, 64), 8, "relu", 1, "float32")
    X = rng.random((256, 160)).astype(np.float32)
    eps = rng.normal(size=(256, 8)).astype(np.float32)
    ws = model.workspace(256, "compiled")
    outs = []
    for fwd, bwd in ((step.forward_chunks, step.backward_chunks),
                     (step.forward_chunks_seq, step.backward_chunks_seq)):
        g = np.zeros_like(model.grads)
        kl_dim = np.zeros(8)
        r = fwd(model.params, ws.tab, 2, 1, X, eps, ws.acts, ws.zs, ws.klp, ws.sums, kl_dim,
                ws.chunk_cap, 2, ws.iw, ws.lc, ws.lw, ws.sw, ws.gls, ws.tcb, ws.terms)
        bwd(model.params, g, ws.gparts, ws.tab, 2, 1, X, eps, 4.0, ws.acts, ws.dpre, ws.zs, ws.tmp,
            ws.chunk_cap, 2, ws.iw, ws.lc, ws.lw, ws.G, ws.gls, ws.tcb)
        outs.append((r, kl_dim, g))
    assert outs[0][0] == outs[1][0]
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    np.testing.assert_array_equal(outs[0][2], outs[1][2])


def test_split_rule_depends_on_the_batch_only():
    assert step.n_chunks_for(1) == step.n_chunks_for(step.SPLIT_MIN_B - 1) == 1
    assert step.n_chunks_for(step.SPLIT_MIN_B) == step.n_chunks_for(4096) == step.N_SPLIT


def test_fit_with_split_batches_is_bit_reproducible():
    rng = np.random.default_rng(0)
    X = rng.random((600, 20)).astype(np.float32)
    runs = []
    for _ in range(2):
        model = bv.BetaVAE(bv.VAEConfig(n_input=20, hidden=(16,), n_latent=3), rng=4)
        hist = bv.fit(model, X, epochs=3, batch_size=128, rng=9, validation=X[:100])
        runs.append((model.params.copy(), hist.train_total, hist.val_total))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1:] == runs[1][1:]


def test_engine_choice(monkeypatch):
    assert engine.resolve("numpy") == "numpy"
    assert engine.resolve("compiled") == "compiled"
    monkeypatch.setenv("BETAVAE_NP_ENGINE", "numpy")
    assert engine.resolve() == "numpy"
    model = bv.BetaVAE(bv.VAEConfig(n_input=4, hidden=(3,), n_latent=2))
    assert model.workspace(8).engine == "numpy"
    monkeypatch.setenv("BETAVAE_NP_ENGINE", "torch")
    with pytest.raises(ConfigError, match="engine must be one of"):
        engine.resolve()


def test_compiled_engine_wants_single_threaded_blas():
    assert threads_for_batch(4096, "compiled") == 1
    assert threads_for_batch(4096, "numpy") is None


def test_find_gemm_reports_the_blas_and_can_be_turned_off(monkeypatch):
    sgemm, dgemm, bits = find_gemm()
    assert sgemm and dgemm and sgemm != dgemm and bits in (32, 64)
    monkeypatch.setenv("BETAVAE_NP_BLAS", "numpy")
    assert find_gemm() is None


_CHILD = textwrap.dedent("""
    import json, numpy as np, numba, betavae_np as bv
    from betavae_np._kernels import step
    model = bv.BetaVAE(bv.VAEConfig(n_input=12, hidden=(8,), n_latent=2), rng=0)
    X = np.random.default_rng(0).random((96, 12)).astype(np.float32)
    eps = np.random.default_rng(1).standard_normal((96, 2)).astype(np.float32)
    ws = model.workspace(96)
    g, kl_dim = np.zeros_like(model.grads), np.zeros(2)
    r, k = step.forward_chunks(model.params, ws.tab, 1, 1, X, eps, ws.acts, ws.zs, ws.klp, ws.sums,
                               kl_dim, ws.chunk_cap, 2, ws.iw, ws.lc, ws.lw, ws.sw, ws.gls, ws.tcb,
                               ws.terms)
    step.backward_chunks(model.params, g, ws.gparts, ws.tab, 1, 1, X, eps, 2.0, ws.acts, ws.dpre,
                         ws.zs, ws.tmp, ws.chunk_cap, 2, ws.iw, ws.lc, ws.lw, ws.G, ws.gls, ws.tcb)
    # the same cached kernels run the batch-coupled loss stage (beta-TCVAE, MSS)
    tc = model.workspace(96, loss=bv.losses.TCVAE(estimator="mss", dataset_size=500))
    g2 = np.zeros_like(model.grads)
    step.forward_chunks(model.params, tc.tab, 1, 1, X, eps, tc.acts, tc.zs, tc.klp, tc.sums,
                        kl_dim, tc.chunk_cap, 2, tc.iw, tc.lc, tc.lw, tc.sw, tc.gls, tc.tcb,
                        tc.terms)
    step.backward_chunks(model.params, g2, tc.gparts, tc.tab, 1, 1, X, eps, 2.0, tc.acts, tc.dpre,
                         tc.zs, tc.tmp, tc.chunk_cap, 2, tc.iw, tc.lc, tc.lw, tc.G, tc.gls, tc.tcb)
    hits = sum(f.stats.cache_hits.total() for f in (step.forward_chunks, step.backward_chunks))
    print(json.dumps({"engine": ws.engine, "r": r, "k": k, "g": g.tolist(),
                      "tc": tc.terms[:5].tolist(), "g2": g2.tolist(),
                      "hits": hits, "threads": numba.get_num_threads()}))
""")


def test_parallel_kernels_cached_under_one_thread_count_load_under_another(tmp_path):
    """The split-batch kernels are cached on disk like the serial ones (config notes)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), BETAVAE_NP_ENGINE="compiled")
    env.pop("BETAVAE_NP_NO_CACHE", None)
    out = []
    for threads in ("2", "1"):
        env["NUMBA_NUM_THREADS"] = threads
        res = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True,
                             text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-2000:]
        out.append(json.loads(res.stdout.strip().splitlines()[-1]))
    first, second = out
    assert first["engine"] == second["engine"] == "compiled"
    assert first["hits"] == 0 and second["hits"] == 2, "the second run must load, not compile"
    assert (first["r"], first["k"], first["g"]) == (second["r"], second["k"], second["g"])
    assert (first["tc"], first["g2"]) == (second["tc"], second["g2"])
    assert np.any(np.array(first["g2"]) != np.array(first["g"])), "the TC-VAE step ran"


def test_compiled_forward_train_refuses_arrays_it_would_misread():
    model, rng = _model(6, (5,), 2, "relu", 0, "float32")
    ws = model.workspace(8, "compiled")
    X = rng.random((8, 6)).astype(np.float32)
    eps = rng.normal(size=(8, 2)).astype(np.float32)
    for bad_X, bad_eps in ((X.astype(np.float64), eps), (np.asfortranarray(X), eps),
                           (X, eps[:, ::-1])):
        with pytest.raises(bv.InputError, match="C-contiguous float32 X and eps"):
            model.forward_train(ws, bad_X, bad_eps)


def _gemm_types(A, B, C, iw):
    """Compile a fresh caller of gemm for these argument types (typing errors surface here)."""
    @njit
    def call(A, B, C, iw):
        G.gemm(G.NO_TRANS, G.NO_TRANS, 2, 2, 2, A, 0, 2, B, 0, 2, C, 0, 2, iw)
    call(A, B, C, iw)


@pytest.mark.parametrize("which", ["A", "B", "C"])
def test_gemm_refuses_mixed_dtypes_at_compile_time(which):
    from numba.core.errors import TypingError
    bufs = {k: np.zeros(4, np.float64) for k in "ABC"}
    bufs[which] = np.zeros(4, np.float32)
    with pytest.raises(TypingError, match="gemm needs A, B and C of one dtype"):
        _gemm_types(bufs["A"], bufs["B"], bufs["C"], engine.blas_int_type()(0))


@pytest.mark.parametrize("which", ["A", "B", "C"])
def test_gemm_refuses_non_contiguous_buffers_at_compile_time(which):
    from numba.core.errors import TypingError
    bufs = {k: np.zeros(4, np.float64) for k in "ABC"}
    bufs[which] = np.zeros(8, np.float64)[::2]
    with pytest.raises(TypingError, match="C-contiguous"):
        _gemm_types(bufs["A"], bufs["B"], bufs["C"], engine.blas_int_type()(0))


def test_gemm_refuses_integer_buffers_and_a_float_width_argument():
    from numba.core.errors import TypingError
    f, i = np.zeros(4, np.float64), np.zeros(4, np.int64)
    with pytest.raises(TypingError, match="float32 or float64"):
        _gemm_types(i, i, i, engine.blas_int_type()(0))
    with pytest.raises(TypingError, match="iw"):
        _gemm_types(f, f, f, 0.0)
