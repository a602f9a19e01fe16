"""Fetch throughput against the local Bybit server (tests/bybit_server.py); no network.

Run: ``python -m pytest bench/bench_fetch.py``. Figures land in each benchmark's ``extra_info``
(``--benchmark-json`` keeps them): ``pages_per_s`` (1000-candle pages fetched and parsed per second,
pacing lifted; target >= 100) and ``rate_achieved`` (requests per second with pacing on; target
within 10% of the configured rate).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from bybit_server import BybitServer, make_history  # noqa: E402

from betavae_np.data import BybitClient  # noqa: E402
from betavae_np.data._parse import decode_envelope, kline_arrays  # noqa: E402

H = 3_600_000
T0 = 1_600_000_000_000 // H * H
N = 40_000
NOW = T0 + N * H
PAGES = 20


@pytest.fixture(scope="module")
def srv():
    with BybitServer() as s:
        s.now_ms = NOW
        s.hist = s.add("BTCUSDT", "60", make_history(T0, N, H))
        yield s


def _fetch(srv, pages, **kw):
    async def go():
        async with BybitClient(srv.url, clock=lambda: NOW, **kw) as c:
            return await c.klines("BTCUSDT", "60", T0, T0 + (pages * 1000 - 1) * H)
    return asyncio.run(go())


def test_bench_parse_page(benchmark, srv):
    """Parser alone: one 1000-candle reply body -> arrays."""
    rows = srv.hist.rows[:1000][::-1]
    body = json.dumps({"retCode": 0, "retMsg": "OK", "result": {"list": rows}}).encode()
    t, v = benchmark(lambda: kline_arrays(decode_envelope(body)))
    assert v.shape == (1000, 6)
    benchmark.extra_info["pages_per_s"] = 1.0 / benchmark.stats.stats.mean


def test_bench_fetch_unpaced(benchmark, srv):
    """Whole client path (HTTP on loopback + parse + frame), pacing lifted."""
    df = benchmark.pedantic(_fetch, args=(srv, PAGES), kwargs={"rate": None}, rounds=5, warmup_rounds=1)
    assert len(df) == PAGES * 1000
    pps = PAGES / benchmark.stats.stats.mean
    benchmark.extra_info["pages_per_s"] = pps
    assert pps >= 100, f"{pps:.0f} pages/s"


@pytest.mark.parametrize("rate", [20.0])
def test_bench_fetch_paced(benchmark, srv, rate):
    """With pacing on, sustained requests per second match the configured rate."""
    pages = 30
    k = [0]

    def run():
        k[0] = len(srv.log)
        return _fetch(srv, pages, rate=rate, burst=1)
    df = benchmark.pedantic(run, rounds=1, iterations=1)
    stamps = [e["t"] for e in srv.log[k[0]:]]
    achieved = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    benchmark.extra_info["rate_configured"] = rate
    benchmark.extra_info["rate_achieved"] = achieved
    assert len(df) == pages * 1000
    assert abs(achieved - rate) <= 0.1 * rate, f"{achieved:.2f} req/s for rate {rate}"
