"""BybitClient against a real aiohttp server on loopback: paging, open candle, gaps, errors."""

from __future__ import annotations

import asyncio
import json
import socket
import threading

import aiohttp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from bybit_server import BybitServer, fixture, make_history
from betavae_np.data import BybitClient, fetch_klines
from betavae_np.data.bybit import MAINNET, TESTNET, resolve_base_url
from betavae_np.exceptions import (BybitBadRequestError, BybitForbiddenError, BybitNetworkError,
                                   BybitRateLimitError, BybitResponseError, BybitServerError, ConfigError)

H = 3_600_000
T0 = 1_700_000_000_000 // H * H          # grid-aligned first candle of the history
N = 3000
NOW = T0 + (N - 1) * H + 1_000           # the last candle (index N-1) is still open
FAST = dict(rate=None, backoff=0.001, backoff_cap=0.004, clock=lambda: NOW)


@pytest.fixture
def srv():
    with BybitServer() as s:
        s.now_ms = NOW
        s.hist = s.add("BTCUSDT", "60", make_history(T0, N, H))
        yield s


def klines(srv, *args, client_kw=None, **kw):
    async def go():
        async with BybitClient(srv.url, **{**FAST, **(client_kw or {})}) as client:
            return await client.klines(*args, **kw)
    return asyncio.run(go())


def expect(srv, first, last):
    """History rows with open time in [first, last]."""
    h = srv.hist
    sel = (h.t >= first) & (h.t <= last)
    return h.t[sel], h.values[sel]


@pytest.mark.parametrize("n", [1, 999, 1000, 1001, 2500])
def test_klines_every_candle_exactly_once(srv, n):
    start = T0 + 100 * H
    end = start + (n - 1) * H
    df = klines(srv, "BTCUSDT", "60", start, end)
    t, v = expect(srv, start, end)
    got = df.index.as_unit("ms").asi8
    np.testing.assert_array_equal(got, t)
    np.testing.assert_array_equal(df.to_numpy(), v)
    meta = df.attrs["betavae_np"]
    assert meta["rows"] == n and meta["requests"] == -(-n // 1000) and meta["retries"] == 0
    wins = srv.windows()
    assert all(s == start for s, _ in wins) and wins[0][1] == end
    for (_, e0), (_, e1) in zip(wins, wins[1:]):  # one moving bound, no overlap
        assert e1 < e0


@pytest.mark.parametrize("name,category,symbol,rows", [
    ("hummingbot__spot_BTCUSDT_60_2024-05-08.json", "spot", "BTCUSDT", 5),
    ("kline_v5_inverse_BTCUSD_60_official_docs.json", "inverse", "BTCUSD", 3)])
def test_klines_serves_real_fixture_replies(srv, name, category, symbol, rows):
    body = fixture(name)
    srv.verbatim[(category, symbol, "60")] = body
    want = sorted(int(r[0]) for r in json.loads(body)["result"]["list"])
    df = klines(srv, symbol, "60", want[0], want[-1], category=category,
                client_kw={"clock": lambda: 2_000_000_000_000})  # 2033: every fixture candle closed
    assert df.index.as_unit("ms").asi8.tolist() == want and len(df) == rows and len(srv.log) == 1
    assert df.attrs["betavae_np"]["category"] == category


def test_klines_mid_interval_start_and_end_drop_containing_candle(srv):
    start, end = T0 + 100 * H + 1234, T0 + 1300 * H + 59_000
    df = klines(srv, "BTCUSDT", "1h", start, end)
    t, _ = expect(srv, T0 + 101 * H, T0 + 1300 * H)
    np.testing.assert_array_equal(df.index.as_unit("ms").asi8, t)
    assert len(srv.log) == 2


def test_klines_excludes_open_candle_unless_asked(srv):
    start = T0 + (N - 10) * H
    closed = klines(srv, "BTCUSDT", "60", start)
    assert len(closed) == 9 and closed.index[-1].value // 10**6 == T0 + (N - 2) * H
    both = klines(srv, "BTCUSDT", "60", start, include_open=True)
    assert len(both) == 10 and both.attrs["betavae_np"]["include_open"] is True


def test_klines_default_range_is_last_1000_candles(srv):
    df = klines(srv, "BTCUSDT", "60", include_open=True)
    assert len(df) == 1000 and df.index[-1].value // 10**6 == T0 + (N - 1) * H


def test_klines_empty_range_is_empty_frame_with_note(srv):
    df = klines(srv, "BTCUSDT", "60", T0 - 500 * H, T0 - 100 * H)
    assert df.empty and list(df.columns)[:5] == ["open", "high", "low", "close", "volume"]
    meta = df.attrs["betavae_np"]
    assert meta["rows"] == 0 and "no closed BTCUSDT candles" in meta["note"] and meta["requests"] == 1


def test_klines_reports_gaps_without_filling(srv):
    srv.add("ETHUSDT", "60", make_history(T0, 2000, H, drop=[(500, 520), (1500, 1501)]))
    df = klines(srv, "ETHUSDT", "60", T0, T0 + 1999 * H)
    meta = df.attrs["betavae_np"]
    assert len(df) == 2000 - 21 and meta["missing_candles"] == 21
    assert [g["missing"] for g in meta["gaps"]] == [20, 1]
    assert meta["gaps"][0]["start"].startswith(str(np.datetime64(T0 + 500 * H, "ms"))[:13])


def test_klines_provenance_attrs(srv):
    meta = klines(srv, "btcusdt", "1h", T0, T0 + 9 * H).attrs["betavae_np"]
    for key in ("source", "exchange", "category", "symbol", "interval", "start", "end", "rows", "gaps",
                "requests", "retries", "from_cache"):
        assert key in meta
    assert (meta["source"], meta["symbol"], meta["interval"], meta["category"]) == ("bybit", "BTCUSDT", "60", "linear")


def test_klines_progress_callback_reaches_expected(srv):
    calls = []
    klines(srv, "BTCUSDT", "60", T0, T0 + 2499 * H, on_progress=lambda f, e: calls.append((f, e)))
    assert calls[-1] == (2500, 2500) and [f for f, _ in calls] == sorted(f for f, _ in calls)


@pytest.mark.parametrize("kind,kw", [("10006", {}), ("10006", {"reset_in_ms": 30}), ("10016", {}), ("429", {}),
                                     ("502", {}), ("truncated", {}), ("garbage_rows", {}), ("empty", {}),
                                     ("disconnect", {}), ("slow", {"seconds": 1.0})])
@pytest.mark.parametrize("skip", [0, 1])
def test_klines_nothing_lost_under_fault(srv, kind, kw, skip):
    srv.fault_skip = skip  # fault on the first page or in the middle of the paging
    srv.fault(kind, times=2 if kind != "slow" else 1, **kw)
    start, end = T0 + 10, T0 + 2500 * H
    df = klines(srv, "BTCUSDT", "60", start, end, client_kw={"timeout": 0.3})
    t, v = expect(srv, T0 + H, end)
    if kind == "empty":  # an empty page means "nothing older" to Bybit: paging stops, no retry
        n = len(df)
        assert n < 2500 and df.attrs["betavae_np"]["retries"] == 0
        np.testing.assert_array_equal(df.index.as_unit("ms").asi8, t[len(t) - n:])
        np.testing.assert_array_equal(df.to_numpy(), v[len(t) - n:])
        return
    np.testing.assert_array_equal(df.index.as_unit("ms").asi8, t)
    np.testing.assert_array_equal(df.to_numpy(), v)
    assert df.attrs["betavae_np"]["retries"] >= 1


def test_klines_honours_limit_reset_timestamp(srv):
    srv.fault("10006", reset_in_ms=80)
    klines(srv, "BTCUSDT", "60", T0, T0 + 5 * H, client_kw={"backoff": 0.0001})
    assert srv.log[1]["t"] - srv.log[0]["t"] >= 0.06


@pytest.mark.parametrize("kind,error", [("10006", BybitRateLimitError), ("429", BybitRateLimitError),
                                        ("10016", BybitServerError), ("502", BybitServerError),
                                        ("truncated", BybitResponseError)])
def test_klines_gives_up_after_retries_with_typed_error(srv, kind, error):
    srv.fault(kind, times=10)
    with pytest.raises(error):
        klines(srv, "BTCUSDT", "60", T0, T0 + 5 * H, client_kw={"retries": 3})
    assert len(srv.log) == 4


def test_klines_timeout_becomes_network_error_naming_host(srv):
    srv.fault("slow", times=3, seconds=1.0)
    with pytest.raises(BybitNetworkError, match="127.0.0.1"):
        klines(srv, "BTCUSDT", "60", T0, T0 + 5 * H, client_kw={"retries": 1, "timeout": 0.2})


def test_klines_unknown_symbol_fails_fast(srv):
    with pytest.raises(BybitBadRequestError, match="does not list symbol 'FOOUSDT' in category linear") as e:
        klines(srv, "FOOUSDT", "60", T0, T0 + 5 * H)
    assert e.value.ret_code == 10001 and len(srv.log) == 1


def test_klines_invalid_period_fails_fast(srv):
    srv.fault("10001_period")
    with pytest.raises(BybitBadRequestError, match="invalid interval"):
        klines(srv, "BTCUSDT", "60", T0, T0 + 5 * H)
    assert len(srv.log) == 1


def test_klines_forbidden_fails_fast_explaining_ban(srv):
    srv.fault("403", times=5)
    with pytest.raises(BybitForbiddenError, match="banned.*10 minutes.*region") as e:
        klines(srv, "BTCUSDT", "60", T0, T0 + 5 * H)
    assert e.value.status == 403 and len(srv.log) == 1


def test_klines_unreachable_host_is_network_error_quickly():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now

    async def go():
        client = BybitClient(f"http://127.0.0.1:{port}", **FAST, connect_retries=1)
        async with client:
            with pytest.raises(BybitNetworkError, match=f"127.0.0.1:{port}"):
                await client.klines("BTCUSDT", "60", T0, T0 + H)
        return client.requests
    assert asyncio.run(go()) == 2


@pytest.mark.parametrize("kw,match", [({"symbol": "BTC-USDT"}, "invalid symbol"),
                                      ({"category": "option"}, "invalid category"),
                                      ({"interval": "3d"}, "invalid interval"),
                                      ({"start": T0 + 5 * H, "end": T0}, "after end")])
def test_klines_validates_before_any_request(srv, kw, match):
    args = {"symbol": "BTCUSDT", "interval": "60", "start": T0, "end": T0 + H, **kw}
    with pytest.raises(ConfigError, match=match):
        klines(srv, args.pop("symbol"), args.pop("interval"), args.pop("start"), args.pop("end"), **args)
    assert srv.log == []


def test_resolve_base_url_aliases_and_env(monkeypatch):
    monkeypatch.delenv("BETAVAE_NP_BYBIT_URL", raising=False)
    assert resolve_base_url(None) == MAINNET
    assert resolve_base_url("testnet") == TESTNET
    assert resolve_base_url("http://localhost:9/") == "http://localhost:9"
    monkeypatch.setenv("BETAVAE_NP_BYBIT_URL", "http://127.0.0.1:1")
    assert resolve_base_url(None) == "http://127.0.0.1:1"
    with pytest.raises(ConfigError, match="base_url"):
        resolve_base_url("ftp://x")


def test_client_borrowed_session_stays_open(srv):
    async def go():
        async with aiohttp.ClientSession() as session:
            async with BybitClient(srv.url, session=session, **FAST) as client:
                df = await client.klines("BTCUSDT", "60", T0, T0 + 4 * H)
            assert not session.closed
            return df
    assert len(asyncio.run(go())) == 5


def test_klines_many_fetches_each_symbol(srv):
    srv.add("ETHUSDT", "60", make_history(T0, N, H, seed=1))
    srv.add("SOLUSDT", "60", make_history(T0, N, H, seed=2))

    async def go():
        async with BybitClient(srv.url, **FAST, max_concurrency=2) as client:
            return await client.klines_many(["btcusdt", "ETHUSDT", "SOLUSDT", "FOOUSDT"], "60", T0,
                                            T0 + 1499 * H, return_exceptions=True)
    out = asyncio.run(go())
    assert [len(out[s]) for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT")] == [1500] * 3
    assert isinstance(out["FOOUSDT"], BybitBadRequestError)
    assert not np.allclose(out["BTCUSDT"]["close"].to_numpy(), out["ETHUSDT"]["close"].to_numpy())


def test_fetch_klines_sync_from_thread_without_loop(srv):
    box = {}

    def work():
        box["df"] = fetch_klines("BTCUSDT", "60", T0, T0 + 9 * H, base_url=srv.url, use_cache=False, **FAST)
    th = threading.Thread(target=work)
    th.start()
    th.join(30)
    assert len(box["df"]) == 10


def test_fetch_klines_inside_running_loop_is_clear_error(srv):
    async def go():
        fetch_klines("BTCUSDT", "60", T0, T0 + H, base_url=srv.url, use_cache=False)
    with pytest.raises(RuntimeError, match="running event loop"):
        asyncio.run(go())


@pytest.mark.parametrize("code,alias", [("1", "1m"), ("15", "15m"), ("240", "4h"), ("D", "1d"), ("W", "1w")])
def test_klines_other_intervals_page_on_their_grid(srv, code, alias):
    from betavae_np.data.intervals import floor_open, interval_ms
    step = interval_ms(code)
    t0 = floor_open(T0 - 1500 * step, code)
    srv.add("ADAUSDT", code, make_history(t0, 1500, step))
    df = klines(srv, "ADAUSDT", alias, t0 + 3, t0 + 1200 * step, client_kw={"limit": 500})
    got = df.index.as_unit("ms").asi8
    np.testing.assert_array_equal(got, t0 + step * np.arange(1, 1201))
    assert df.attrs["betavae_np"]["interval"] == code and len(srv.log) == 3


@pytest.fixture(scope="module")
def gappy():
    with BybitServer() as s:
        s.now_ms = NOW
        s.hist = s.add("XRPUSDT", "60", make_history(T0, N, H, seed=3, drop=[(0, 7), (900, 1003), (1998, 2001),
                                                                            (2500, 2501)]))
        yield s


@settings(max_examples=20)
@given(a=st.integers(-50 * H, (N + 50) * H), span=st.integers(0, 2600 * H), limit=st.sampled_from([7, 200, 1000]))
def test_klines_property_exact_range_any_bounds(gappy, a, span, limit):
    start, end = T0 + a, T0 + a + span
    k = len(gappy.log)
    df = klines(gappy, "XRPUSDT", "60", max(0, start), end, client_kw={"limit": limit})
    h = gappy.hist
    sel = (h.t >= start) & (h.t <= end) & (h.t <= NOW - H)  # closed candles in range
    np.testing.assert_array_equal(df.index.as_unit("ms").asi8, h.t[sel])
    np.testing.assert_array_equal(df.to_numpy(), h.values[sel])
    served = np.concatenate([e["times"] for e in gappy.log[k:]] + [np.empty(0, np.int64)])
    inside = served[served >= start]
    assert np.unique(inside).size == inside.size  # no candle of the range was served twice
