"""encode on one window is safe from any thread (live streams call it from callbacks).

The single-window kernel releases the GIL, so threads really run it at the same time; each call
must use its own scratch memory (encode_into's contract: caller-owned outputs).
"""

from __future__ import annotations

import threading

import numpy as np

import betavae_np as bv

N_THREADS = 4
CALLS = 3000


def _model():
    cfg = bv.VAEConfig(n_input=160, hidden=(128, 64), n_latent=8)
    return bv.BetaVAE(cfg, rng=0)


def _run_threads(work):
    errors = []
    barrier = threading.Barrier(N_THREADS)

    def target(t):
        try:
            barrier.wait()
            work(t)
        except Exception as exc:            # noqa: BLE001 - reported to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(t,)) for t in range(N_THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not any(th.is_alive() for th in threads), "a thread did not finish"
    assert not errors, errors


def test_encode_one_window_from_threads_equals_single_threaded():
    model = _model()
    rng = np.random.default_rng(0)
    X = rng.random((N_THREADS * 16, 160)).astype(np.float32)
    ref = [model.encode(x) for x in X]             # single-threaded reference
    wrong = [0] * N_THREADS

    def work(t):
        rows = range(t * 16, (t + 1) * 16)
        for k in range(CALLS):
            i = rows[k % 16]
            mu, logvar = model.encode(X[i])
            if not (np.array_equal(mu, ref[i][0]) and np.array_equal(logvar, ref[i][1])):
                wrong[t] += 1

    _run_threads(work)
    assert sum(wrong) == 0, f"{sum(wrong)} of {N_THREADS * CALLS} threaded encodes differ"


def test_encode_into_with_per_thread_outputs_from_threads():
    model = _model()
    rng = np.random.default_rng(1)
    X = rng.random((N_THREADS * 16, 160)).astype(np.float32)
    ref = [model.encode(x) for x in X]
    wrong = [0] * N_THREADS

    def work(t):
        mu = np.empty(8, np.float32)               # caller-owned outputs, one pair per thread
        logvar = np.empty(8, np.float32)
        for k in range(CALLS):
            i = t * 16 + k % 16
            model.encode_into(X[i], mu, logvar)
            if not (np.array_equal(mu, ref[i][0]) and np.array_equal(logvar, ref[i][1])):
                wrong[t] += 1

    _run_threads(work)
    assert sum(wrong) == 0, f"{sum(wrong)} of {N_THREADS * CALLS} threaded encode_into differ"
