"""Many symbols through one client, one session, one token bucket; tickers and --top's ranking."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from betavae_np.data import BybitClient, fetch_universe, top_symbols
from betavae_np.data.fetch import afetch_klines, afetch_universe
from betavae_np.exceptions import BybitBadRequestError, BybitForbiddenError, ConfigError, DataError
from bybit_server import BybitServer, fixture, make_history

H = 3_600_000
T0 = 1_700_000_000_000 // H * H
N = 1500
NOW = T0 + N * H + 60_000               # every candle closed
FAST = dict(rate=None, backoff=0.001, backoff_cap=0.004, clock=lambda: NOW)
SYMS = ["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT", "EEEUSDT"]


@pytest.fixture
def srv():
    with BybitServer() as s:
        s.now_ms = NOW
        s.hists = {sym: s.add(sym, "60", make_history(T0, N, H, seed=k, drop=[(700, 710)] if k == 2 else ()))
                   for k, sym in enumerate(SYMS)}
        yield s


def test_fetch_universe_every_symbol_exact(srv, tmp_path):
    seen = []
    got = fetch_universe(SYMS, "60", T0, T0 + (N - 1) * H, base_url=srv.url, cache_dir=tmp_path,
                         on_symbol=lambda s, r: seen.append(s), **FAST)
    assert list(got) == SYMS and got.ok and got.errors == {} and sorted(seen) == sorted(SYMS)
    for sym, df in got.items():
        h = srv.hists[sym]
        np.testing.assert_array_equal(df.index.as_unit("ms").asi8, h.t)
        np.testing.assert_array_equal(df.to_numpy(), h.values)
    assert got["CCCUSDT"].attrs["betavae_np"]["missing_candles"] == 10


def test_fetch_universe_one_failure_is_reported_and_the_others_complete(srv, tmp_path):
    asked = ["AAAUSDT", "NOPEUSDT", "BBBUSDT"]
    seen = {}
    got = fetch_universe(asked, "60", T0, T0 + 99 * H, base_url=srv.url, cache_dir=tmp_path,
                         on_symbol=seen.__setitem__, **FAST)
    assert list(got) == ["AAAUSDT", "BBBUSDT"] and got.requested == tuple(asked) and not got.ok
    assert isinstance(got.errors["NOPEUSDT"], BybitBadRequestError) and "NOPEUSDT" in str(got.errors["NOPEUSDT"])
    assert seen["NOPEUSDT"] is got.errors["NOPEUSDT"] and len(seen["AAAUSDT"]) == 100


def test_fetch_universe_symbol_without_candles_counts_as_failed(srv, tmp_path):
    srv.add("OLDUSDT", "60", make_history(T0 - 5000 * H, 100, H))   # delisted long before the range
    got = fetch_universe(["AAAUSDT", "OLDUSDT"], "60", T0, T0 + 9 * H, base_url=srv.url, cache_dir=tmp_path,
                         **FAST)
    assert list(got) == ["AAAUSDT"] and isinstance(got.errors["OLDUSDT"], DataError)
    assert "no closed OLDUSDT candles" in str(got.errors["OLDUSDT"])


def test_fetch_universe_requests_only_missing_ranges(srv, tmp_path):
    kw = dict(base_url=srv.url, cache_dir=tmp_path, **FAST)
    fetch_universe(SYMS[:2], "60", T0 + 500 * H, T0 + 899 * H, **kw)
    srv.log.clear()
    got = fetch_universe(SYMS[:3], "60", T0, T0 + 1199 * H, **kw)
    for sym in SYMS[:2]:
        meta = got[sym].attrs["betavae_np"]
        assert meta["from_cache"] == 400 and meta["rows"] == 1200
        asked = [(int(e["params"]["start"]), int(e["params"]["end"])) for e in srv.log
                 if e["params"]["symbol"] == sym]
        assert all(b < T0 + 500 * H or a > T0 + 899 * H for a, b in asked)   # never the cached part
    srv.log.clear()
    again = fetch_universe(SYMS[:3], "60", T0, T0 + 1199 * H, **kw)
    assert srv.log == [] and all(df.attrs["betavae_np"]["requests"] == 0 for df in again.values())


def test_fetch_universe_bounds_concurrency_and_paces_with_one_bucket(srv, tmp_path):
    srv.delay_seconds = 0.02
    rate, burst = 40.0, 2
    got = fetch_universe(SYMS, "60", T0, T0 + (N - 1) * H, base_url=srv.url, cache_dir=tmp_path,
                         rate=rate, burst=burst, max_concurrency=3, limit=200, clock=lambda: NOW)
    assert got.ok
    assert 1 < srv.max_in_flight <= 3          # concurrent, but never more than max_concurrency
    t = np.sort([e["t"] for e in srv.log])
    assert t.size == 5 * -(-N // 200)
    # token bucket, seen by the server: any m consecutive requests span at least (m - burst) / rate s
    # (50 ms of slack: arrival stamps are taken by a server thread that shares the interpreter)
    for m in range(burst + 1, t.size + 1):
        assert (t[m - 1:] - t[:t.size - m + 1]).min() >= (m - burst) / rate - 0.05, m


def test_afetch_klines_uses_the_client_it_is_given(srv, tmp_path):
    async def go():
        async with BybitClient(srv.url, **FAST) as client:
            session = client._session
            dfs = await asyncio.gather(*[afetch_klines(s, "60", T0, T0 + 9 * H, cache_dir=tmp_path, client=client)
                                         for s in SYMS])
            assert client._session is session and not session.closed
            with pytest.raises(ConfigError, match="client settings"):
                await afetch_klines("AAAUSDT", "60", T0, T0 + 9 * H, client=client, rate=5.0)
            with pytest.raises(ConfigError, match="differs from the client's"):
                await afetch_klines("AAAUSDT", "60", T0, T0 + 9 * H, client=client, base_url="testnet")
            return dfs, client.requests
    dfs, requests = asyncio.run(go())
    assert [len(d) for d in dfs] == [10] * 5 and requests == 5


def test_fetch_universe_forbidden_stops_everything(srv, tmp_path):
    srv.fault("403")
    with pytest.raises(BybitForbiddenError):
        fetch_universe(SYMS, "60", T0, T0 + (N - 1) * H, base_url=srv.url, cache_dir=tmp_path,
                       max_concurrency=1, **FAST)
    assert len(srv.log) < 5 * 2   # the other symbols were not all fetched after the ban


@pytest.mark.parametrize("symbols, match", [(["AAAUSDT", "aaausdt"], "given twice"), ([], "no symbol"),
                                            (["BAD-SYM"], "invalid symbol")])
def test_fetch_universe_bad_symbol_lists(srv, symbols, match):
    with pytest.raises(ConfigError, match=match):
        fetch_universe(symbols, base_url=srv.url, **FAST)


def test_fetch_universe_inside_a_running_loop_says_await(srv):
    async def go():
        fetch_universe(SYMS, base_url=srv.url, **FAST)
    with pytest.raises(RuntimeError, match="afetch_universe"):
        asyncio.run(go())
    got = asyncio.run(afetch_universe(SYMS[:1], "60", T0, T0 + 4 * H, base_url=srv.url, use_cache=False, **FAST))
    assert len(got["AAAUSDT"]) == 5


def test_top_symbols_ranks_by_24h_turnover(srv):
    srv.set_tickers("linear", {"AAAUSDT": 5e6, "BBBUSDT": 9e8, "CCCUSDT": 2e7, "DDDPERP": 1e10, "EEEUSDT": 0},
                    extra=[{"symbol": "BTC-27DEC24", "lastPrice": "1", "turnover24h": "1e12", "volume24h": "1"}])
    assert top_symbols(3, base_url=srv.url, **FAST) == ["BBBUSDT", "CCCUSDT", "AAAUSDT"]
    assert top_symbols(2, quote=None, base_url=srv.url, **FAST) == ["DDDPERP", "BBBUSDT"]
    assert top_symbols(50, base_url=srv.url, **FAST) == ["BBBUSDT", "CCCUSDT", "AAAUSDT", "EEEUSDT"]
    assert srv.log[-1]["params"] == {"category": "linear"}
    with pytest.raises(ConfigError):
        top_symbols(0, base_url=srv.url, **FAST)


def test_tickers_parse_the_documented_replies(srv):
    srv.tickers_verbatim["spot"] = fixture("tickers_v5_spot_BTCUSDT_official_docs.json")
    srv.tickers_verbatim["inverse"] = fixture("tickers_v5_inverse_BTCUSD_official_docs.json")

    async def go():
        async with BybitClient(srv.url, **FAST) as client:
            return await client.tickers("spot"), await client.tickers("inverse"), \
                await client.top_symbols(1, "inverse")
    spot, inverse, top = asyncio.run(go())
    assert spot.loc["BTCUSDT", "turnover_24h"] == 243765620.65899866 and spot.loc["BTCUSDT", "last_price"] == 20533.13
    assert inverse.loc["BTCUSD", "volume_24h"] == 49337318.0 and top == ["BTCUSD"]


def test_tickers_errors_are_typed(srv):
    srv.fault("10001_symbol")
    with pytest.raises(BybitBadRequestError):
        top_symbols(3, base_url=srv.url, **FAST)
