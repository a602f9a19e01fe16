"""A universe window set's compact layout: scale positions instead of values, int32 indices,
frames released while windowing, and the same windows, batches and models as before."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from betavae_np import BetaVAE, VAEConfig, fit
from betavae_np._kernels import scale_index as _x
from betavae_np._kernels import windowing as _k
from betavae_np.data import EpochSampler, UniverseWindowSet, Windower
from betavae_np.data.universe import load_universe
from naive import ref_group_extrema, ref_windows
from test_windows import HOUR, T0, candles


def frames():
    """Three symbols: different starts, one with a gap, one flat stretch (ties in every lookback)."""
    t = T0 + HOUR * np.r_[np.arange(160), 175 + np.arange(200)]
    return {"AAAUSDT": candles(420, seed=1, flat_from=300),
            "BBBUSDT": candles(300, seed=2, times=T0 + HOUR * (90 + np.arange(300))),
            "CCCUSDT": candles(360, seed=3, times=t)}


@pytest.mark.parametrize("lookback", [16, 40])
def test_scale_positions_hold_the_naive_extrema_inside_each_lookback(lookback):
    rng = np.random.default_rng(0)
    raw = np.round(rng.normal(size=(300, 5)), 1)           # rounded: many ties
    raw[100:140] = 0.7                                     # a flat stretch
    group = np.array([0, 0, 0, 0, 1])
    ends = np.arange(lookback - 1, 300, 3, dtype=np.int64)
    n, F, G = raw.shape[0], 5, 2
    cilo, cihi, s_lo, s_hi = (np.empty((n, G), np.int32) for _ in range(4))
    ilo, ihi = np.empty((ends.size, G), np.int32), np.empty((ends.size, G), np.int32)
    _x.candle_bound_index(cilo, cihi, raw, group)
    _x.rolling_scale_index(ilo, ihi, raw, cilo, cihi, ends, lookback, s_lo, s_hi)
    lo, hi = ref_group_extrema(raw, group, ends, lookback, G)
    flat = raw.reshape(-1)
    assert np.array_equal(flat[ilo], lo), "lo"
    assert np.array_equal(flat[ihi], hi), "hi"
    for pos in (ilo, ihi):
        row, col = pos // F, pos % F
        assert ((row <= ends[:, None]) & (row > ends[:, None] - lookback)).all()
        assert (group[col] == np.arange(G)).all()
    # and the values are those of the value kernels, bit for bit
    clo, chi, v_lo, v_hi = (np.empty((n, G)) for _ in range(4))
    vlo, vhi = np.empty((ends.size, G)), np.empty((ends.size, G))
    _k.candle_bounds(clo, chi, raw, group)
    _k.rolling_scales(vlo, vhi, clo, chi, ends, lookback, v_lo, v_hi)
    assert np.array_equal(flat[ilo].view(np.uint64), vlo.view(np.uint64))
    assert np.array_equal(flat[ihi].view(np.uint64), vhi.view(np.uint64))


@pytest.mark.parametrize("kw", [dict(), dict(norm="none", lookback=16), dict(gaps="fill"),
                                dict(representation="both"), dict(representation="returns")],
                         ids=["minmax", "none", "fill", "both", "returns"])
def test_universe_windows_equal_each_symbols_own_transform_bit_for_bit(kw):
    w = Windower(**{"window": 16, "lookback": 48, "interval": "60", **kw})
    fr = frames()
    u = UniverseWindowSet.from_frames(w, fr)
    want = np.concatenate([w.transform(fr[s]) for s in u.symbols])
    assert np.array_equal(u.array().view(np.uint32), want.view(np.uint32))
    rows = np.random.default_rng(1).integers(0, u.shape[0], 500)
    assert np.array_equal(u.gather(rows).view(np.uint32), want[rows].view(np.uint32))
    exact = np.concatenate([w.transform(fr[s], dtype=np.float64) for s in u.symbols])
    per = u.window_set(u.symbols[2])
    assert np.array_equal(per.scales[0], w.windows(fr[u.symbols[2]]).scales[0])
    assert per.array(np.float64).shape == (per.shape[0], w.n_input) and exact.shape == want.shape


def test_universe_arrays_take_less_than_one_and_a_half_times_the_candle_arrays():
    fr = {f"S{k}USDT": candles(3000, seed=k) for k in range(3)}
    candle_bytes = sum(df[["open", "high", "low", "close", "volume"]].to_numpy().nbytes + df.index.asi8.nbytes
                       for df in fr.values())
    u = UniverseWindowSet.from_frames(Windower(window=32, lookback=128, interval="60"), fr)
    assert u._ends.dtype == np.int32 and u._ilo.dtype == np.int32 and u._zlo.shape[1] == 0
    assert u._toff.dtype == np.int32 and u._filled is None
    assert u.nbytes < 1.4 * candle_bytes            # float64 scales, int64 ends and times took 1.85x
    tr, _ = u.split()
    assert tr._sel.dtype == np.int32 and tr.nbytes - u.nbytes == tr.shape[0] * 4


def test_released_frames_are_dropped_and_the_windows_are_the_same():
    w = Windower(window=16, lookback=48, interval="60")
    kept = UniverseWindowSet.from_frames(w, frames())
    fr = {**frames(), "DDDUSDT": candles(10, seed=9)}   # too short: skipped, and released too
    uni = load_universe(fr)
    notes = []
    got = uni.windows(w, on_notice=notes.append, release=True)
    assert uni.frames == {} and len(fr) == 4            # the caller's own mapping is untouched
    assert got.symbols == kept.symbols and len(notes) == 1
    assert np.array_equal(got.array().view(np.uint32), kept.array().view(np.uint32))


def _ref_equal_epoch(counts, rng):
    """The equal-weighting epoch as first written (before the sampler made its buffer lazily)."""
    counts = np.asarray(counts, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    n = int(offsets[-1])
    present = np.flatnonzero(counts)
    K = present.size
    quota = np.full(K, n // K, dtype=np.int64)
    quota[rng.permutation(K)[: n % K]] += 1
    out = np.empty(n, dtype=np.int64)
    pos = 0
    for k, q in zip(present, quota):
        c, base = int(counts[k]), int(offsets[k])
        reps, rest = divmod(int(q), c)
        for _ in range(reps):
            out[pos:pos + c] = base + np.arange(c)
            pos += c
        out[pos:pos + rest] = base + rng.choice(c, rest, replace=False)
        pos += rest
    rng.shuffle(out)
    return out


def test_samplers_draw_the_same_rows_as_first_written():
    counts = [500, 37, 0, 1200, 3]
    eq, prop = EpochSampler(counts, "equal"), EpochSampler(counts, "proportional")
    assert prop._perm is None                                      # no buffer until an epoch
    a, b, c, d = (np.random.default_rng(5) for _ in range(4))
    perm = np.arange(sum(counts), dtype=np.int64)
    for _ in range(3):
        got, want = eq.epoch(a), _ref_equal_epoch(counts, b)
        assert got.dtype == np.int64 and np.array_equal(got, want)
        c.shuffle(perm)
        assert np.array_equal(prop.epoch(d), perm)


@pytest.mark.parametrize("weighting", ["proportional", "equal"])
def test_universe_fit_equals_fit_on_the_naive_window_arrays(weighting):
    """Same windows, same batches: a model trained on the lazy universe set is bit-identical to one
    trained on the windows each symbol's own transform gives, split at the same cutoff."""
    w = Windower(window=8, lookback=24, interval="60")
    fr = frames()
    u = UniverseWindowSet.from_frames(w, fr)
    cut = u.cutoff_for(0.2)
    tr, va = u.split_at(cut)
    X, Xv, codes = [], [], []
    for k, s in enumerate(u.symbols):
        end = w.windows(fr[s]).end_times
        start = end - pd.Timedelta(hours=w.window - 1)
        arr = w.transform(fr[s])
        X.append(arr[end < cut])
        Xv.append(arr[(end >= cut) & (start >= cut)])
        codes.append(np.full(int((end < cut).sum()), k))
    X, Xv = np.concatenate(X), np.concatenate(Xv)
    counts = np.bincount(np.concatenate(codes), minlength=len(u.symbols))
    assert np.array_equal(tr.counts, counts) and va.shape[0] == Xv.shape[0]
    cfg = VAEConfig(n_input=w.n_input, hidden=(16,), n_latent=3)
    runs = []
    for train, val in ((tr, va), (X, Xv)):
        m = BetaVAE(cfg, rng=0)
        h = fit(m, train, epochs=2, batch_size=32, rng=7, validation=val,
                sampler=EpochSampler(counts, weighting))
        runs.append((m.params.copy(), h.val_total))
    assert np.array_equal(runs[0][0].view(np.uint32), runs[1][0].view(np.uint32))
    assert runs[0][1] == runs[1][1]


def test_end_time_helpers_match_end_times():
    u = UniverseWindowSet.from_frames(Windower(window=8, lookback=24, interval="60"), frames())
    tr, va = u.split()
    for s in (u, tr, va):
        t = s.end_times
        assert s.end_time_range() == (t.min(), t.max())
        idx = np.array([0, s.shape[0] - 1, s.shape[0] // 2])
        assert s.end_times_of(idx).equals(t[idx])
    assert isinstance(u.end_times_of(np.array([1])), pd.DatetimeIndex)


def test_train_on_universe_empties_only_its_own_copy_of_the_frames():
    from betavae_np import train_on_universe

    fr, before = frames(), frames()
    uni = load_universe(frames())
    kw = dict(epochs=1, batch_size=32, window=8, lookback=24, hidden=(8,), latent=2, seed=0)
    a = train_on_universe(fr, **kw)                     # a mapping: copied, the copy emptied
    assert list(fr) == list(before) and all(fr[s].equals(before[s]) for s in fr)
    b = train_on_universe(uni, **kw)                    # the caller's universe: kept unless release=True
    assert list(uni.frames) == list(before)
    c = train_on_universe(uni, release=True, **kw)
    assert uni.frames == {}
    assert a.model.params.tobytes() == b.model.params.tobytes() == c.model.params.tobytes()


def test_times_off_one_grid_fall_back_to_int64_and_stay_exact():
    w = Windower(window=8, lookback=24, interval="60")
    fr = {"AAAUSDT": candles(200, seed=1), "BBBUSDT": candles(200, seed=2, times=T0 + HOUR // 2 + HOUR * np.arange(200)),
          "CCCUSDT": candles(200, seed=3)}
    u = UniverseWindowSet.from_frames(w, fr)
    assert u._toff.dtype == np.int64
    on_grid = UniverseWindowSet.from_frames(w, {s: fr[s] for s in ("AAAUSDT", "CCCUSDT")})
    assert on_grid._toff.dtype == np.int32
    for ws in (u, on_grid):
        off = np.r_[0, np.cumsum(ws.counts)]
        for k, s in enumerate(ws.symbols):
            own = w.windows(fr[s])
            assert ws.end_times[off[k]:off[k + 1]].equals(own.end_times)
            assert ws.window_set(s).candle_times.equals(own.candle_times)


def test_filled_candles_are_flagged_per_symbol():
    w = Windower(window=8, lookback=24, interval="60", gaps="fill")
    fr = frames()
    u = UniverseWindowSet.from_frames(w, fr)
    assert u._filled is not None
    for s in u.symbols:
        assert np.array_equal(u.window_set(s).filled, w.windows(fr[s]).filled)
    assert u.window_set("CCCUSDT").n_filled == 15 and u.window_set("AAAUSDT").n_filled == 0


def test_universe_gather_equals_the_naive_windows():
    w = Windower(window=16, lookback=48, interval="60")
    fr = frames()
    u = UniverseWindowSet.from_frames(w, fr)
    off = np.r_[0, np.cumsum(u.counts)]
    for k, s in enumerate(("AAAUSDT", "BBBUSDT")):        # gap-free: every end from lookback-1 on
        values = fr[s][list(w.features)].to_numpy()
        want = ref_windows(values, w.window, w.lookback, w.features)
        rows = np.arange(off[k], off[k + 1])[::-1]          # any order
        assert np.array_equal(u.gather(rows), want[::-1])
