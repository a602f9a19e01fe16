"""BLAS thread control: fit picks the count for small batches and always restores it."""

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
