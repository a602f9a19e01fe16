"""The panel's chunked encoder: model.encode's values bit for bit, buffers reused, logvar only on request."""

from __future__ import annotations

import numpy as np
import pytest

from betavae_np import BetaVAE, VAEConfig
from betavae_np.analysis.panel import _ChunkEncoder, encode_windows
from betavae_np.data import UniverseWindowSet, Windower
from betavae_np.exceptions import ConfigError
from test_windows import HOUR, T0, candles


@pytest.fixture(scope="module")
def universe():
    fr = {"AAAUSDT": candles(900, seed=1), "BBBUSDT": candles(700, seed=2, times=T0 + HOUR * (50 + np.arange(700)))}
    return UniverseWindowSet.from_frames(Windower(window=16, lookback=48, interval="60"), fr)


@pytest.mark.parametrize("dtype,activation", [("float32", "relu"), ("float64", "tanh"), ("float32", "leaky_relu")])
@pytest.mark.parametrize("chunk", [300, 4096])
def test_encode_windows_equals_model_encode_of_the_same_chunks_bit_for_bit(universe, dtype, activation, chunk):
    m = BetaVAE(VAEConfig(n_input=universe.shape[1], hidden=(24, 12), n_latent=3, dtype=dtype,
                          activation=activation), rng=4)
    mu, lv, secs = encode_windows(m, universe, logvar=True, chunk=chunk)
    X = universe.array(dtype)
    n = X.shape[0]
    want = [m.encode(X[a:a + chunk]) for a in range(0, n, chunk)]
    u = np.uint32 if dtype == "float32" else np.uint64
    assert mu.dtype == np.dtype(dtype) and mu.shape == (n, 3) and secs > 0
    assert np.array_equal(mu.view(u), np.concatenate([w[0] for w in want]).view(u)), "mu"
    assert np.array_equal(lv.view(u), np.concatenate([w[1] for w in want]).view(u)), "logvar"


def test_encode_windows_without_logvar_returns_none_and_the_same_means(universe):
    m = BetaVAE(VAEConfig(n_input=universe.shape[1], hidden=(8,), n_latent=2), rng=0)
    mu, lv, _ = encode_windows(m, universe, chunk=512)
    assert lv is None
    assert np.array_equal(mu, encode_windows(m, universe, logvar=True, chunk=512)[0])


def test_chunk_encoder_reuses_its_buffers_and_handles_a_short_last_chunk(universe):
    m = BetaVAE(VAEConfig(n_input=universe.shape[1], hidden=(8,), n_latent=2), rng=0)
    enc = _ChunkEncoder(m, 100)
    X = universe.array()[:130]
    a = enc(X[:100])
    bufs = [b.ctypes.data for b in enc._out]
    b = enc(X[100:130])
    assert b.shape == (30, 4) and [x.ctypes.data for x in enc._out] == bufs
    assert np.shares_memory(a, b)                         # a view of the same buffer: overwritten
    mu, logvar = m.encode(X[100:130])
    assert np.array_equal(b[:, :2], mu) and np.array_equal(b[:, 2:], logvar)


def test_encode_windows_rejects_a_bad_chunk(universe):
    m = BetaVAE(VAEConfig(n_input=universe.shape[1], hidden=(8,), n_latent=2), rng=0)
    with pytest.raises(ConfigError, match="chunk must be a positive integer"):
        encode_windows(m, universe, chunk=0)
