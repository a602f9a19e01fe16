"""Pacing: the token bucket holds the configured rate across pages and across concurrent symbols."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest

from bybit_server import BybitServer, make_history
from betavae_np.data import BybitClient
from betavae_np.data.pacing import Backoff, TokenBucket
from betavae_np.exceptions import ConfigError

H = 3_600_000
T0 = 1_700_000_000_000 // H * H
NOW = T0 + 5000 * H


@pytest.fixture
def srv():
    with BybitServer() as s:
        s.now_ms = NOW
        for i, sym in enumerate(("BTCUSDT", "ETHUSDT", "SOLUSDT")):
            s.add(sym, "60", make_history(T0, 1200, H, seed=i))
        yield s


def test_pacing_holds_rate_across_pages(srv):
    rate, burst = 25.0, 2

    async def go():
        async with BybitClient(srv.url, rate=rate, burst=burst, limit=100, clock=lambda: NOW) as c:
            return await c.klines("BTCUSDT", "60", T0, T0 + 1199 * H)
    df = asyncio.run(go())
    stamps = [e["t"] for e in srv.log]
    assert len(df) == 1200 and len(stamps) == 12
    assert stamps[-1] - stamps[0] >= (len(stamps) - burst) / rate * 0.95


def test_pacing_shared_by_concurrent_symbols(srv):
    rate, burst = 30.0, 3

    async def go():
        async with BybitClient(srv.url, rate=rate, burst=burst, limit=200, max_concurrency=3,
                               clock=lambda: NOW) as c:
            return await c.klines_many(["BTCUSDT", "ETHUSDT", "SOLUSDT"], "60", T0, T0 + 1199 * H)
    out = asyncio.run(go())
    stamps = sorted(e["t"] for e in srv.log)
    assert all(len(df) == 1200 for df in out.values()) and len(stamps) == 18
    assert stamps[-1] - stamps[0] >= (len(stamps) - burst) / rate * 0.95


def test_pacing_retries_also_take_tokens(srv):
    srv.fault("10016", times=4)

    async def go():
        async with BybitClient(srv.url, rate=20.0, burst=1, backoff=0.0001, clock=lambda: NOW) as c:
            await c.klines("BTCUSDT", "60", T0, T0 + 10 * H)
    asyncio.run(go())
    stamps = [e["t"] for e in srv.log]
    assert len(stamps) == 5 and stamps[-1] - stamps[0] >= 4 / 20.0 * 0.95


def test_token_bucket_fake_clock_refills_at_rate():
    now = [0.0]
    bucket = TokenBucket(rate=10.0, burst=2, clock=lambda: now[0])

    async def take(n):
        for _ in range(n):
            await bucket.acquire()
    asyncio.run(take(2))
    assert bucket.waited == 0.0  # the burst is free
    now[0] = 0.35  # 3.5 tokens worth of time, capped at burst=2
    asyncio.run(take(2))
    assert bucket.waited == 0.0
    asyncio.run(take(1))
    assert bucket.waited == pytest.approx(0.1)


@pytest.mark.parametrize("rate", [None, math.inf])
def test_token_bucket_none_or_inf_lifts_pacing(rate):
    bucket = TokenBucket(rate=rate, burst=1)

    async def take():
        for _ in range(100):
            await bucket.acquire()
    asyncio.run(take())
    assert bucket.rate is None and bucket.waited == 0.0


@pytest.mark.parametrize("kw", [{"rate": 0}, {"rate": -1.0}, {"burst": 0}])
def test_token_bucket_rejects_bad_settings(kw):
    with pytest.raises(ConfigError):
        TokenBucket(**{"rate": 1.0, "burst": 1, **kw})


def test_backoff_capped_exponential_with_jitter():
    b = Backoff(base=0.5, cap=4.0, rng=0)
    delays = np.array([[b.delay(k) for k in range(8)] for _ in range(50)])
    nominal = np.minimum(4.0, 0.5 * 2.0 ** np.arange(8))
    assert (delays <= nominal).all() and (delays >= nominal / 2).all()
    assert delays[:, 0].std() > 0  # jittered
    again = Backoff(base=0.5, cap=4.0, rng=0)
    assert again.delay(0) == Backoff(base=0.5, cap=4.0, rng=0).delay(0)


def test_token_bucket_hold_pauses_every_request_even_unpaced():
    bucket = TokenBucket(rate=None)

    async def go():
        bucket.hold(0.05)
        await asyncio.gather(bucket.acquire(), bucket.acquire())
    asyncio.run(go())
    assert 0.04 <= bucket.waited <= 0.2
