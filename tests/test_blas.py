"""numpy's BLAS: thread control (fit picks the count for small batches and always restores it)
and the gemm binding of the compiled engine (numpy's own library, confirmed width, self-test)."""

import ctypes
import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import betavae_np as bv
from betavae_np import _blas
from betavae_np.nn import engine


needs_openblas = pytest.mark.skipif(_blas.get_threads() is None,
                                    reason="numpy's OpenBLAS thread API not found")


@pytest.fixture
def no_user_env(monkeypatch):
    for k in _blas._USER_ENV:
        monkeypatch.delenv(k, raising=False)


def test_threads_for_batch_single_thread_only_for_small_batches():
    assert _blas.threads_for_batch(1) == 1
    assert _blas.threads_for_batch(_blas.SINGLE_THREAD_MAX_BATCH) == 1
    assert _blas.threads_for_batch(_blas.SINGLE_THREAD_MAX_BATCH + 1) is None


def test_blas_threads_none_is_noop():
    before = _blas.get_threads()
    with _blas.blas_threads(None):
        assert _blas.get_threads() == before


@needs_openblas
def test_blas_threads_sets_and_restores(no_user_env):
    before = _blas.get_threads()
    with _blas.blas_threads(1):
        assert _blas.get_threads() == 1
    assert _blas.get_threads() == before


@needs_openblas
def test_blas_threads_restores_after_error(no_user_env):
    before = _blas.get_threads()
    with pytest.raises(RuntimeError):
        with _blas.blas_threads(1):
            raise RuntimeError("boom")
    assert _blas.get_threads() == before


@needs_openblas
@pytest.mark.parametrize("var", _blas._USER_ENV)
def test_blas_threads_treats_user_env_as_a_cap(monkeypatch, var):
    monkeypatch.setenv(var, str(_blas.get_threads()))
    before = _blas.get_threads()
    with _blas.blas_threads(before + 1):
        assert _blas.get_threads() == before          # never above the user's setting
    with _blas.blas_threads(1):
        assert _blas.get_threads() == 1               # fewer is allowed (compiled engine)
    assert _blas.get_threads() == before


def _threads_seen_during_fit(batch_size):
    seen = []
    model = bv.BetaVAE(bv.VAEConfig(n_input=12, hidden=(8,), n_latent=2), rng=0)
    X = np.random.default_rng(0).random((128, 12))
    bv.fit(model, X, epochs=1, batch_size=batch_size, rng=0,
           on_batch=lambda info: seen.append(_blas.get_threads()))
    return set(seen)


@pytest.fixture
def two_blas_threads(no_user_env):
    """Run with two OpenBLAS threads, so that "one thread" is a change fit had to make."""
    with _blas.blas_threads(2):
        if _blas.get_threads() != 2:
            pytest.skip("numpy's OpenBLAS runs fewer than 2 threads here")
        yield 2


@needs_openblas
def test_fit_numpy_engine_one_thread_for_small_batches_only_and_restores(monkeypatch,
                                                                          two_blas_threads):
    # the numpy engine decides by batch size (the compiled one always asks for 1, see below)
    monkeypatch.setenv("BETAVAE_NP_ENGINE", "numpy")
    assert _threads_seen_during_fit(16) == {1}
    assert _blas.get_threads() == 2
    assert _threads_seen_during_fit(_blas.SINGLE_THREAD_MAX_BATCH + 1) == {2}
    assert _blas.get_threads() == 2


@needs_openblas
@pytest.mark.skipif(not engine.compiled_available(), reason="the compiled engine is not available here")
def test_fit_compiled_engine_one_blas_thread_at_any_batch_and_restores(monkeypatch,
                                                                        two_blas_threads):
    monkeypatch.setenv("BETAVAE_NP_ENGINE", "compiled")
    assert _threads_seen_during_fit(_blas.SINGLE_THREAD_MAX_BATCH + 1) == {1}
    assert _blas.get_threads() == 2


# -- binding numpy's CBLAS gemm for compiled code ------------------------------------------------

#: A minimal LP64 CBLAS (row-major sgemm/dgemm with alpha/beta); WRONG ignores lda (a broken ABI).
_FAKE_CBLAS = r"""
#ifdef WRONG
#define LDA(lda, k) (k)
#else
#define LDA(lda, k) (lda)
#endif
#define GEMM(NAME, T) \
void NAME(int order, int ta, int tb, int M, int N, int K, T alpha, const T *A, int lda, \
          const T *B, int ldb, T beta, T *C, int ldc) { \
    for (int i = 0; i < M; i++) for (int j = 0; j < N; j++) { \
        T s = 0; \
        for (int k = 0; k < K; k++) { \
            T a = ta == 112 ? A[k * LDA(lda, M) + i] : A[i * LDA(lda, K) + k]; \
            T b = tb == 112 ? B[j * ldb + k] : B[k * ldb + j]; \
            s += a * b; } \
        C[i * ldc + j] = alpha * s + (beta == 0 ? 0 : beta * C[i * ldc + j]); } }
GEMM(cblas_sgemm, float)
GEMM(cblas_dgemm, double)
"""


def _fake_blas(tmp_path, wrong=False):
    if shutil.which("cc") is None:
        pytest.skip("no C compiler for the stand-in BLAS")
    src = tmp_path / "fake_cblas.c"
    src.write_text(_FAKE_CBLAS)
    lib = tmp_path / ("libfakeblas_wrong.so" if wrong else "libfakeblas.so")
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", *(["-DWRONG"] if wrong else []), str(src),
                    "-o", str(lib)], check=True, capture_output=True)
    return str(lib)


def _use_library(monkeypatch, path, width):
    monkeypatch.delenv("BETAVAE_NP_BLAS", raising=False)
    monkeypatch.setattr(_blas, "_numpy_blas_lib", lambda: (ctypes.CDLL(path), path))
    monkeypatch.setattr(_blas, "config_width", lambda: width)


def test_find_gemm_binds_the_blas_numpy_links_with_its_stated_width(monkeypatch):
    monkeypatch.delenv("BETAVAE_NP_BLAS", raising=False)
    lib, name = _blas._numpy_blas_lib()
    if lib is None:
        pytest.skip(f"numpy's BLAS not found here: {name}")
    try:
        from numpy._core import _multiarray_umath as mu
    except ImportError:   # numpy < 2
        from numpy.core import _multiarray_umath as mu
    assert name in _blas._elf_needed(mu.__file__)
    found = _blas.find_gemm()
    assert found is not None
    stated = _blas.config_width()
    if stated is not None:
        assert found[2] == stated


def test_find_gemm_lp64_library_passes_the_self_test(tmp_path, monkeypatch):
    path = _fake_blas(tmp_path)
    _use_library(monkeypatch, path, 32)
    found = _blas.find_gemm()
    lib = ctypes.CDLL(path)
    assert found == (ctypes.cast(lib.cblas_sgemm, ctypes.c_void_p).value,
                     ctypes.cast(lib.cblas_dgemm, ctypes.c_void_p).value, 32)


def test_find_gemm_falls_back_with_a_logged_reason_when_the_product_is_wrong(tmp_path, monkeypatch,
                                                                           caplog):
    _use_library(monkeypatch, _fake_blas(tmp_path, wrong=True), 32)
    with caplog.at_level(logging.WARNING, logger="betavae_np._blas"):
        assert _blas.find_gemm() is None
    assert "disagrees with np.matmul" in caplog.text and "numpy's matmul" in caplog.text


def test_find_gemm_falls_back_when_the_width_cannot_be_confirmed(tmp_path, monkeypatch, caplog):
    _use_library(monkeypatch, _fake_blas(tmp_path), None)     # unsuffixed symbols, no config
    with caplog.at_level(logging.WARNING, logger="betavae_np._blas"):
        assert _blas.find_gemm() is None
    assert "cannot be confirmed" in caplog.text


def test_find_gemm_falls_back_when_the_symbol_width_and_numpy_config_disagree(monkeypatch, caplog):
    lib, name = _blas._numpy_blas_lib()
    if lib is None or getattr(lib, "scipy_cblas_dgemm64_", None) is None:
        pytest.skip("needs numpy's ILP64 scipy-openblas")
    monkeypatch.setattr(_blas, "config_width", lambda: 32)       # a config that says LP64
    with caplog.at_level(logging.WARNING, logger="betavae_np._blas"):
        assert _blas.find_gemm() is None
    assert "64-bit but numpy's build config says 32-bit" in caplog.text


def test_find_gemm_env_asks_for_numpy_and_says_so(monkeypatch, caplog):
    monkeypatch.setenv("BETAVAE_NP_BLAS", "numpy")
    with caplog.at_level(logging.INFO, logger="betavae_np._blas"):
        assert _blas.find_gemm() is None
    assert "BETAVAE_NP_BLAS=numpy" in caplog.text


_CHILD_LP64 = textwrap.dedent("""
    import ctypes, json, sys
    import numpy as np
    from numba import njit
    from betavae_np import _blas
    path = sys.argv[1]
    _blas._numpy_blas_lib = lambda: (ctypes.CDLL(path), path)
    _blas.config_width = lambda: {width}
    from betavae_np._kernels import gemm as G
    from betavae_np.nn import engine

    @njit
    def call(A, B, C, iw):
        G.gemm(G.NO_TRANS, G.TRANS, 3, 2, 4, A, 1, 5, B, 2, 6, C, 0, 3, iw)

    bits = G.bind()
    out = {{"bits": bits, "engine": engine.resolve("auto")}}
    if bits:
        rng = np.random.default_rng(0)
        A, B, C = rng.random(1 + 3 * 5), rng.random(2 + 2 * 6), np.zeros(3 * 3)
        call(A, B, C, engine.blas_int_type()(0))
        ref = A[1:].reshape(3, 5)[:, :4] @ B[2:].reshape(2, 6)[:, :4].T
        out["ok"] = bool(np.allclose(C.reshape(3, 3)[:, :2], ref, rtol=1e-12))
    print(json.dumps(out))
""")


@pytest.mark.parametrize("wrong", [False, True])
def test_compiled_gemm_through_an_lp64_library_or_the_numpy_fallback(tmp_path, wrong):
    """End to end in a child: LP64 binding and a compiled product, or the engine falls back."""
    path = _fake_blas(tmp_path, wrong=wrong)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    env.pop("BETAVAE_NP_ENGINE", None)
    env.pop("BETAVAE_NP_BLAS", None)
    res = subprocess.run([sys.executable, "-c", _CHILD_LP64.format(width=32), path], env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    if wrong:
        assert out == {"bits": None, "engine": "numpy"}
    else:
        assert out == {"bits": 32, "engine": "compiled", "ok": True}
