"""CandleCache: only missing ranges are requested, atomic writes survive kills, corrupt stores rebuilt."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from bybit_server import BybitServer, make_history
from betavae_np.data import CandleCache, fetch_klines
from betavae_np.data.cache import default_cache_dir, subtract_ranges, union_ranges

H = 3_600_000
T0 = 1_700_000_000_000 // H * H
N = 3000
NOW = T0 + (N - 1) * H + 60_000          # candle N-1 is open; N-2 closed a minute ago
FAST = dict(rate=None, backoff=0.001, backoff_cap=0.004, clock=lambda: NOW)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def srv():
    with BybitServer() as s:
        s.now_ms = NOW
        s.hist = s.add("BTCUSDT", "60", make_history(T0, N, H, drop=[(1000, 1010)]))
        yield s


def get(srv, tmp_path, start, end, **kw):
    return fetch_klines("BTCUSDT", "60", start, end, base_url=srv.url, cache_dir=tmp_path, **{**FAST, **kw})


def windows_since(srv, k):
    return [(int(e["params"]["start"]), int(e["params"]["end"])) for e in srv.log[k:]]


def truth(srv, start, end):
    h = srv.hist
    sel = (h.t >= start) & (h.t <= end)
    return h.t[sel], h.values[sel]


def test_cache_second_fetch_requests_only_missing_part(srv, tmp_path):
    a = get(srv, tmp_path, T0, T0 + 99 * H)
    assert a.attrs["betavae_np"]["from_cache"] == 0 and len(a) == 100
    k = len(srv.log)
    b = get(srv, tmp_path, T0 + 50 * H, T0 + 199 * H)
    assert windows_since(srv, k) == [(T0 + 100 * H, T0 + 199 * H)]
    assert b.attrs["betavae_np"]["from_cache"] == 50 and b.attrs["betavae_np"]["requests"] == 1
    t, v = truth(srv, T0 + 50 * H, T0 + 199 * H)
    np.testing.assert_array_equal(b.index.as_unit("ms").asi8, t)
    np.testing.assert_array_equal(b.to_numpy(), v)


def test_cache_fills_holes_on_both_sides(srv, tmp_path):
    get(srv, tmp_path, T0 + 100 * H, T0 + 199 * H)
    k = len(srv.log)
    df = get(srv, tmp_path, T0 + 50 * H + 7, T0 + 260 * H + 7)  # mid-interval bounds
    assert sorted(windows_since(srv, k)) == [(T0 + 51 * H, T0 + 99 * H), (T0 + 200 * H, T0 + 260 * H)]
    np.testing.assert_array_equal(df.index.as_unit("ms").asi8, truth(srv, T0 + 51 * H, T0 + 260 * H)[0])


def test_cache_full_hit_makes_no_request(srv, tmp_path):
    get(srv, tmp_path, T0, T0 + 1999 * H)
    k = len(srv.log)
    df = get(srv, tmp_path, T0 + 5 * H, T0 + 1500 * H)
    assert len(srv.log) == k and df.attrs["betavae_np"]["requests"] == 0
    assert df.attrs["betavae_np"]["from_cache"] == len(df) == 1496 - 10


def test_cache_known_gap_and_empty_range_not_requested_again(srv, tmp_path):
    first = get(srv, tmp_path, T0 - 300 * H, T0 + 1100 * H)  # before the listing, and a 10-candle gap
    assert first.attrs["betavae_np"]["missing_candles"] == 10
    k = len(srv.log)
    again = get(srv, tmp_path, T0 - 300 * H, T0 + 1100 * H)
    assert len(srv.log) == k
    assert again.attrs["betavae_np"]["gaps"] == first.attrs["betavae_np"]["gaps"]
    empty = get(srv, tmp_path, T0 - 200 * H, T0 - 100 * H)
    assert empty.empty and len(srv.log) == k


def test_cache_never_stores_open_candle(srv, tmp_path):
    df = get(srv, tmp_path, T0 + (N - 5) * H, None, include_open=True)
    assert len(df) == 5
    stored = CandleCache(tmp_path, srv.url).load("linear", "BTCUSDT", "60")
    assert stored.index[-1].value // 10**6 == T0 + (N - 2) * H
    k = len(srv.log)
    get(srv, tmp_path, T0 + (N - 5) * H, None)  # the still-open tail is asked for again, only it
    assert windows_since(srv, k) == [(T0 + (N - 1) * H, T0 + (N - 1) * H)]  # bounds snapped to the grid


def test_cache_just_closed_candle_returned_but_not_cached(srv, tmp_path):
    now = T0 + (N - 1) * H + 2_000  # candle N-2 closed 2 s ago: Bybit may still be settling it
    df = get(srv, tmp_path, T0 + (N - 5) * H, None, clock=lambda: now)
    assert df.index[-1].value // 10**6 == T0 + (N - 2) * H and len(df) == 4
    assert CandleCache(tmp_path, srv.url).load("linear", "BTCUSDT", "60").index[-1].value // 10**6 == T0 + (N - 3) * H
    k = len(srv.log)
    get(srv, tmp_path, T0 + (N - 5) * H, None)  # a minute later: asked for again, then cached
    assert windows_since(srv, k) == [(T0 + (N - 2) * H, T0 + (N - 1) * H)]
    assert CandleCache(tmp_path, srv.url).load("linear", "BTCUSDT", "60").index[-1].value // 10**6 == T0 + (N - 2) * H


def test_cache_merge_never_overwrites(tmp_path):
    cache = CandleCache(tmp_path)
    t = T0 + H * np.arange(5)
    v = np.ones((5, 6))
    cache.merge("linear", "BTCUSDT", "60", t, v, [(int(t[0]), int(t[-1]))])
    cache.merge("linear", "BTCUSDT", "60", t + 3 * H, 2 * v, [(int(t[3]), int(t[-1] + 3 * H))])
    store = cache.read("linear", "BTCUSDT", "60")
    assert store.t.tolist() == (T0 + H * np.arange(8)).tolist()
    assert store.v[:, 0].tolist() == [1, 1, 1, 1, 1, 2, 2, 2]
    assert store.ranges.tolist() == [[T0, T0 + 7 * H]]


def test_cache_load_absent_or_out_of_range_is_none(tmp_path):
    cache = CandleCache(tmp_path)
    assert cache.load("linear", "BTCUSDT", "60") is None
    cache.merge("linear", "BTCUSDT", "60", np.array([T0]), np.ones((1, 6)), [(T0, T0)])
    assert cache.load("linear", "BTCUSDT", "60", start=T0 + H) is None
    df = cache.load("linear", "btcusdt", "1h")
    assert len(df) == 1 and df.attrs["betavae_np"]["from_cache"] == 1 and df.attrs["betavae_np"]["requests"] == 0


def test_cache_killed_mid_write_leaves_store_readable(tmp_path):
    cache = CandleCache(tmp_path)
    cache.merge("linear", "BTCUSDT", "60", T0 + H * np.arange(10), np.ones((10, 6)), [(T0, T0 + 9 * H)])
    code = textwrap.dedent(f"""
        import os, signal, numpy as np
        from betavae_np.data.cache import CandleCache
        os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)  # die between temp write and rename
        CandleCache({str(tmp_path)!r}).merge("linear", "BTCUSDT", "60", {T0} + {H} * np.arange(10, 5000),
                                           np.ones((4990, 6)), [({T0 + 10 * H}, {T0 + 4999 * H})])
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == -9
    folder = cache.path("linear", "BTCUSDT", "60").parent
    assert any(p.name.endswith(".tmp") for p in folder.iterdir())  # the half-done write is there
    store = cache.read("linear", "BTCUSDT", "60")
    assert store.note is None and store.t.size == 10 and store.ranges.tolist() == [[T0, T0 + 9 * H]]


def test_cache_partial_temp_file_is_ignored(tmp_path):
    cache = CandleCache(tmp_path)
    cache.merge("linear", "BTCUSDT", "60", np.array([T0]), np.ones((1, 6)), [(T0, T0)])
    path = cache.path("linear", "BTCUSDT", "60")
    (path.parent / (path.name + ".abc123.tmp")).write_bytes(path.read_bytes()[:20])
    assert cache.read("linear", "BTCUSDT", "60").t.tolist() == [T0]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "foreign"])
def test_cache_corrupt_store_rebuilt_with_warning(srv, tmp_path, caplog, damage):
    get(srv, tmp_path, T0, T0 + 99 * H)
    path = CandleCache(tmp_path, srv.url).path("linear", "BTCUSDT", "60")
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        path.write_bytes(os.urandom(len(raw)))
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        np.savez(path.open("wb"), t=np.zeros(3))
    k = len(srv.log)
    with caplog.at_level(logging.WARNING, logger="betavae_np.data.cache"):
        df = get(srv, tmp_path, T0, T0 + 99 * H)
    assert "unreadable" in caplog.text and "rebuilt" in df.attrs["betavae_np"]["cache_note"]
    assert len(df) == 100 and windows_since(srv, k) == [(T0, T0 + 99 * H)]
    assert CandleCache(tmp_path, srv.url).read("linear", "BTCUSDT", "60").t.size == 100  # rewritten and readable
    assert path.with_suffix(".corrupt").exists()


def test_cache_keeps_completed_parts_when_a_later_part_fails(srv, tmp_path):
    get(srv, tmp_path, T0 + 100 * H, T0 + 199 * H)
    srv.fault("403")  # the newest part fails, the older one below is never reached
    with pytest.raises(Exception):
        get(srv, tmp_path, T0, T0 + 299 * H)
    assert CandleCache(tmp_path, srv.url).read("linear", "BTCUSDT", "60").t.size == 100


def test_fetch_klines_without_cache_writes_nothing(srv, tmp_path):
    df = get(srv, tmp_path, T0, T0 + 9 * H, use_cache=False)
    assert len(df) == 10 and not any(tmp_path.iterdir())


def test_default_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("BETAVAE_NP_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    assert CandleCache().root == tmp_path / "c"
    monkeypatch.delenv("BETAVAE_NP_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "betavae-np"


ranges_st = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 15)).map(lambda p: (p[0], p[0] + p[1])),
                     max_size=6)


@given(ranges_st, st.integers(0, 80), st.integers(0, 30))
def test_subtract_ranges_matches_set_arithmetic(ranges, a, span):
    b = a + span
    covered = set()
    for lo, hi in ranges:
        covered |= set(range(lo, hi + 1))
    parts = subtract_ranges(a, b, ranges)
    got = set()
    for lo, hi in parts:
        assert lo <= hi
        got |= set(range(lo, hi + 1))
    assert got == set(range(a, b + 1)) - covered
    assert all(p[1] + 1 < q[0] for p, q in zip(parts, parts[1:]))  # disjoint, not adjacent
    u = union_ranges(ranges)
    assert set().union(*[set(range(lo, hi + 1)) for lo, hi in u]) == covered if ranges else u.size == 0


def test_cache_write_removes_stale_temp_files_only(tmp_path):
    cache = CandleCache(tmp_path)
    cache.merge("linear", "BTCUSDT", "60", np.array([T0]), np.ones((1, 6)), [(T0, T0)])
    folder = cache.path("linear", "BTCUSDT", "60").parent
    old, fresh = folder / "60.npz.old1.tmp", folder / "60.npz.new1.tmp"
    old.write_bytes(b"x")
    fresh.write_bytes(b"x")
    os.utime(old, (1_000_000, 1_000_000))
    cache.merge("linear", "BTCUSDT", "60", np.array([T0 + H]), np.ones((1, 6)), [(T0 + H, T0 + H)])
    assert not old.exists() and fresh.exists()


def test_cache_concurrent_processes_lose_nothing(tmp_path):
    code = textwrap.dedent(f"""
        import sys, numpy as np
        from betavae_np.data.cache import CandleCache
        k = int(sys.argv[1])
        c = CandleCache({str(tmp_path)!r})
        for i in range(15):
            t = {T0} + {H} * (k * 1000 + i)
            c.merge("linear", "BTCUSDT", "60", np.array([t]), np.ones((1, 6)), [(t, t)])
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code, str(k)], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}) for k in range(3)]
    assert [p.wait(60) for p in procs] == [0, 0, 0]
    store = CandleCache(tmp_path).read("linear", "BTCUSDT", "60")
    assert store.t.size == 45 and store.ranges.shape == (45, 2)


@pytest.fixture(scope="module")
def gappy():
    with BybitServer() as s:
        s.now_ms = NOW
        s.hist = s.add("BTCUSDT", "60", make_history(T0, N, H, seed=5, drop=[(300, 340), (2000, 2002)]))
        yield s


range_st = st.tuples(st.integers(-100, N + 20), st.integers(0, 1500), st.integers(0, H - 1))


@settings(max_examples=15)
@given(st.lists(range_st, min_size=1, max_size=4))
def test_cache_property_sequence_exact_and_each_candle_served_once(gappy, seq):
    with tempfile.TemporaryDirectory() as d:
        k = len(gappy.log)
        for i0, n, jitter in seq:
            start, end = T0 + i0 * H + jitter, T0 + (i0 + n) * H + jitter
            df = get(gappy, d, start, end)
            t, v = truth(gappy, start, min(end, NOW - H))
            np.testing.assert_array_equal(df.index.as_unit("ms").asi8, t)
            np.testing.assert_array_equal(df.to_numpy(), v)
        served = np.concatenate([e["times"][e["times"] >= int(e["params"]["start"])] for e in gappy.log[k:]]
                                + [np.empty(0, np.int64)])
        closed = served[served <= NOW - H]
        assert np.unique(closed).size == closed.size  # no closed candle was asked for twice


def test_cache_keeps_hosts_apart(tmp_path):
    """Testnet and mainnet candles never mix: two hosts serving the same symbol get their own stores."""
    with BybitServer() as a, BybitServer() as b:
        for s, seed in ((a, 1), (b, 2)):
            s.now_ms = NOW
            s.hist = s.add("BTCUSDT", "60", make_history(T0, 200, H, seed=seed))
        df_a = get(a, tmp_path, T0, T0 + 99 * H)
        df_b = get(b, tmp_path, T0, T0 + 99 * H)
        assert len(b.log) >= 1  # b was asked, not answered from a's store
        np.testing.assert_array_equal(df_a.to_numpy(), truth(a, T0, T0 + 99 * H)[1])
        np.testing.assert_array_equal(df_b.to_numpy(), truth(b, T0, T0 + 99 * H)[1])
        assert not np.array_equal(df_a.to_numpy(), df_b.to_numpy())
        k = len(a.log)
        again = get(a, tmp_path, T0, T0 + 99 * H)  # each host's store still serves its own candles
        assert len(a.log) == k and again.attrs["betavae_np"]["base_url"] == a.url
        np.testing.assert_array_equal(again.to_numpy(), df_a.to_numpy())
        paths = {CandleCache(tmp_path, s.url).path("linear", "BTCUSDT", "60") for s in (a, b)}
    assert len(paths) == 2 and all(p.exists() for p in paths)


def test_cache_old_layout_store_is_left_alone_and_not_used(srv, tmp_path):
    """A store of the layout without hosts (host unknown) is never read, moved or deleted."""
    cache = CandleCache(tmp_path, srv.url)
    old = cache.legacy_path("linear", "BTCUSDT", "60")
    old.parent.mkdir(parents=True)
    np.savez_compressed(old, format=np.array("betavae-np-candles"), version=np.array(1),
                        t=T0 + H * np.arange(100), v=np.full((100, 6), 7.0),
                        ranges=np.array([[T0, T0 + 99 * H]]))
    before = old.read_bytes()
    df = get(srv, tmp_path, T0, T0 + 99 * H)
    assert len(srv.log) >= 1 and not (df.to_numpy() == 7.0).any()
    np.testing.assert_array_equal(df.to_numpy(), truth(srv, T0, T0 + 99 * H)[1])
    assert "not used" in df.attrs["betavae_np"]["cache_note"]
    assert old.read_bytes() == before and cache.path("linear", "BTCUSDT", "60").exists()


def test_cache_store_of_another_host_is_set_aside_not_served(srv, tmp_path):
    other = CandleCache(tmp_path, "testnet")
    other.merge("linear", "BTCUSDT", "60", T0 + H * np.arange(100), np.full((100, 6), 7.0), [(T0, T0 + 99 * H)])
    mine = CandleCache(tmp_path, srv.url).path("linear", "BTCUSDT", "60")
    mine.parent.mkdir(parents=True)
    mine.write_bytes(other.path("linear", "BTCUSDT", "60").read_bytes())  # copied into the wrong folder
    df = get(srv, tmp_path, T0, T0 + 99 * H)
    assert not (df.to_numpy() == 7.0).any() and mine.with_suffix(".corrupt").exists()
