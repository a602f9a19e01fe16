"""Window throughput: transform candles/s, push us/candle, gather rows/s (pytest-benchmark).

Run with ``pytest bench/bench_windows.py`` (not collected by the default test run). Targets:
transform >= 5 M candles/s on the default settings, push < 2 us, gather well above training needs.
The JIT is warmed before timing; the ``extra_info`` of each benchmark holds the derived rate.
"""

from __future__ import annotations

import numpy as np
import pytest

from betavae_np.data import Windower
from betavae_np.data.frame import frame_from_arrays

N = 1_000_000


@pytest.fixture(scope="module")
def big():
    rng = np.random.default_rng(0)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, N)))
    o = np.r_[c[0], c[:-1]]
    h = np.maximum(o, c) * (1 + rng.uniform(0, 0.005, N))
    lo = np.minimum(o, c) * (1 - rng.uniform(0, 0.005, N))
    v = rng.lognormal(3, 1, N)
    df = frame_from_arrays(1_600_000_000_000 + 3_600_000 * np.arange(N), np.c_[o, h, lo, c, v])
    Windower().transform(df.iloc[:1000])  # warm the JIT
    return df


def test_bench_transform(benchmark, big):
    w = Windower()
    X = benchmark.pedantic(w.transform, args=(big,), rounds=3, iterations=1, warmup_rounds=1)
    assert X.shape == (N - 127, 160)
    rate = N / benchmark.stats.stats.min
    benchmark.extra_info["candles_per_s"] = rate
    print(f"\ntransform: {rate / 1e6:.2f} M candles/s (best of 3, {N} candles, output "
          f"{X.nbytes / 1e6:.0f} MB)")


def test_bench_windows_gather_all_preallocated(benchmark, big):
    ws = Windower().windows(big)
    out = np.empty(ws.shape, np.float32)
    rows = np.arange(len(ws), dtype=np.int64)
    benchmark.pedantic(ws.gather, args=(rows, out), rounds=3, iterations=1, warmup_rounds=1)
    rate = len(ws) / benchmark.stats.stats.min
    benchmark.extra_info["windows_per_s"] = rate
    print(f"\ngather all into a preallocated buffer: {rate / 1e6:.2f} M windows/s")


def test_bench_gather_batch(benchmark, big):
    ws = Windower().windows(big)
    rng = np.random.default_rng(1)
    rows = rng.integers(0, len(ws), 256)
    out = np.empty((256, ws.shape[1]), np.float32)
    ws.gather(rows, out)
    benchmark(ws.gather, rows, out)
    us = benchmark.stats.stats.median * 1e6
    benchmark.extra_info["us_per_batch_256"] = us
    print(f"\ngather random batch of 256: {us:.1f} us ({256 / us:.2f} M windows/s)")


def test_bench_push_array(benchmark, big):
    w = Windower()
    vals = np.ascontiguousarray(big.to_numpy()[:200_000])
    for i in range(200):
        w.push_array(vals[i])
    it = iter(range(200, 200_000))

    def one():
        return w.push_array(vals[next(it)])

    benchmark.pedantic(one, rounds=100_000, iterations=1, warmup_rounds=100)
    us = benchmark.stats.stats.median * 1e6
    benchmark.extra_info["us_per_push"] = us
    print(f"\npush_array: {us:.2f} us per candle (median)")


def test_bench_push_series_dict(benchmark, big):
    w = Windower()
    rows = [dict(zip(("open", "high", "low", "close", "volume"), r)) for r in big.to_numpy()[:20_000]]
    for r in rows[:200]:
        w.push(r)
    it = iter(rows[200:])
    benchmark.pedantic(lambda: w.push(next(it)), rounds=19_000, iterations=1, warmup_rounds=10)
    us = benchmark.stats.stats.median * 1e6
    print(f"\npush(dict): {us:.2f} us per candle (median)")
