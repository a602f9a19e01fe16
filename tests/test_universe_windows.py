"""UniverseWindowSet: gathers equal each symbol's own WindowSet bit for bit, one calendar cutoff,
no n_windows x n_input array ever allocated, proportional/equal epoch sampling."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest

from betavae_np.data import EpochSampler, UniverseWindowSet, Windower
from betavae_np.exceptions import ConfigError, DataError, InputError
from test_windows import HOUR, T0, candles


def universe_frames():
    """Four symbols that start and end at different times, one with a gap, one too short."""
    a = candles(400, seed=1)
    b = candles(300, seed=2, times=T0 + HOUR * (120 + np.arange(300)))
    t = T0 + HOUR * np.r_[np.arange(150), 170 + np.arange(200)]   # 20 candles missing
    c = candles(350, seed=3, times=t)
    d = candles(10, seed=4)                                       # no window fits
    return {"AAAUSDT": a, "BBBUSDT": b, "CCCUSDT": c, "DDDUSDT": d}


@pytest.fixture(params=[dict(window=8, lookback=24), dict(window=12, lookback=12, norm="none"),
                        dict(window=8, lookback=16, gaps="fill", features=("close", "volume"))],
                ids=["rolling", "none", "fill"])
def setup(request):
    w = Windower(interval="60", **request.param)
    frames = universe_frames()
    notes = []
    u = UniverseWindowSet.from_frames(w, frames, on_notice=notes.append)
    own = {s: w.windows(frames[s]) for s in u.symbols}
    return w, frames, u, own, notes


def test_universe_gather_equals_each_symbols_own_window_set_bit_for_bit(setup):
    w, frames, u, own, notes = setup
    assert u.symbols == ("AAAUSDT", "BBBUSDT", "CCCUSDT")
    assert list(u.counts) == [own[s].shape[0] for s in u.symbols] and u.shape[0] == sum(u.counts)
    rows = np.random.default_rng(0).integers(0, u.shape[0], 2000)
    got = u.gather(rows)
    off = np.r_[0, np.cumsum(u.counts)]
    codes = u.codes[rows]
    want = np.empty_like(got)
    for j, (r, c) in enumerate(zip(rows, codes)):
        own[u.symbols[c]].gather(np.array([r - off[c]]), want[j:j + 1])
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
    got64 = u.gather(rows, np.empty(got.shape, np.float64))
    assert np.array_equal(got64, got.astype(np.float64))


def test_universe_symbol_codes_and_end_times_match_own_sets(setup):
    w, frames, u, own, notes = setup
    ends = u.end_times
    for k, s in enumerate(u.symbols):
        sl = slice(int(np.sum(u.counts[:k])), int(np.sum(u.counts[:k + 1])))
        assert ends[sl].equals(own[s].end_times)
        assert (u.codes[sl] == k).all()
        assert list(u.symbol_of(np.arange(sl.start, sl.stop))) == [s] * (sl.stop - sl.start)
        assert u.symbol_of(sl.start) == s
        per = u.window_set(s)
        assert np.array_equal(per.array().view(np.uint32), own[s].array().view(np.uint32))


def test_universe_no_window_spans_two_symbols_or_a_gap(setup):
    w, frames, u, own, notes = setup
    span = (u.end_times - u.start_times).to_numpy() // np.timedelta64(1, "h")
    assert (span == w.window - 1).all()   # a window spanning a gap or a symbol change would be longer


def test_universe_skips_a_symbol_without_a_window_with_a_notice(setup):
    *_, notes = setup
    assert len(notes) == 1 and notes[0].startswith("DDDUSDT skipped: ")


def test_universe_with_no_usable_symbol_is_one_sentence():
    w = Windower(window=8, lookback=24, interval="60")
    with pytest.raises(DataError, match="no symbol of the universe"):
        UniverseWindowSet.from_frames(w, {"AAAUSDT": candles(10), "BBBUSDT": candles(20)})
    with pytest.raises(DataError, match="the universe is empty"):
        UniverseWindowSet.from_frames(w, {})


@pytest.mark.parametrize("hours", [150, 200, 260])
@pytest.mark.parametrize("purge", [True, False])
def test_universe_split_at_one_calendar_cutoff(setup, hours, purge):
    w, frames, u, own, notes = setup
    cut = pd.Timestamp(T0 + hours * HOUR, unit="ms", tz="UTC")
    train, val = u.split_at(cut, purge=purge)
    assert (train.end_times < cut).all() and (val.end_times >= cut).all()
    if purge:
        assert (val.start_times >= cut).all()
        n_straddle = int(((u.end_times >= cut) & (u.start_times < cut)).sum())
        assert train.shape[0] + val.shape[0] + n_straddle == u.shape[0]
    else:
        assert train.shape[0] + val.shape[0] == u.shape[0]
    # each part gathers the same windows as the full set
    full_rows = np.flatnonzero(u.end_times < cut)
    assert np.array_equal(train.gather(np.arange(train.shape[0])).view(np.uint32),
                          u.gather(full_rows).view(np.uint32))
    assert (val.counts > 0).all() and (train.counts > 0).all()


def test_universe_split_equals_window_set_split_on_one_gap_free_symbol():
    w = Windower(window=8, lookback=24, interval="60")
    df = candles(500, seed=7)
    u = UniverseWindowSet.from_frames(w, {"AAAUSDT": df})
    tr0, va0 = w.windows(df).split(0.2)
    n_train = tr0.shape[0]
    tr, va = u.split_at(w.windows(df).end_times[n_train])
    assert tr.end_times.equals(tr0.end_times) and va.end_times.equals(va0.end_times)
    assert np.array_equal(va.array(), va0.array())


def test_universe_split_fraction_and_empty_sides(setup):
    w, frames, u, own, notes = setup
    train, val = u.split(0.25)
    cut = u.cutoff_for(0.25)
    assert (train.end_times < cut).all() and (val.start_times >= cut).all()
    assert abs((u.end_times >= cut).mean() - 0.25) < 0.05
    with pytest.raises(DataError, match="no training window ends before the cutoff"):
        u.split_at(pd.Timestamp(T0, unit="ms", tz="UTC"))
    with pytest.raises(DataError, match="no validation window lies after the cutoff"):
        u.split_at(pd.Timestamp(T0 + 10_000 * HOUR, unit="ms", tz="UTC"))
    with pytest.raises(ConfigError):
        u.cutoff_for(1.0)


def test_universe_gather_rejects_bad_rows_and_out(setup):
    w, frames, u, own, notes = setup
    with pytest.raises(InputError):
        u.gather(np.array([u.shape[0]]))
    with pytest.raises(InputError):
        u.gather(np.array([0, 1]), np.empty((2, u.shape[1] + 1), np.float32))
    with pytest.raises(InputError):
        u.window_set("ZZZUSDT")


def test_universe_gathering_never_allocates_an_n_windows_by_n_input_array():
    """tracemalloc sees every NumPy allocation: building the set and gathering batches over all of
    it stays far below one n_windows x n_input float32 array."""
    w = Windower(window=32, lookback=64, interval="60")
    frames = {f"S{k:02d}USDT": candles(3000, seed=k) for k in range(8)}
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        u = UniverseWindowSet.from_frames(w, frames)
        buf = np.empty((256, u.shape[1]), np.float32)
        perm = u.sampler("equal").epoch(0)
        for lo in range(0, u.shape[0] - 256, 256):
            u.gather(perm[lo:lo + 256], buf)
        train, val = u.split(0.2)
        train.gather(np.arange(256), buf)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    dense = u.shape[0] * u.shape[1] * 4
    candle_bytes = sum(df.to_numpy().nbytes for df in frames.values())
    assert dense > 10 * candle_bytes                       # the test would notice a dense copy
    assert peak < dense / 4, (peak, dense)
    assert peak < 4 * candle_bytes, (peak, candle_bytes)


def test_sampler_proportional_is_fits_own_shuffle():
    counts = np.array([5, 0, 7, 3])
    s = EpochSampler(counts, "proportional")
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    perm = np.arange(15, dtype=np.int64)
    for _ in range(3):
        rng_b.shuffle(perm)
        assert np.array_equal(s.epoch(rng_a), perm)


def test_sampler_equal_gives_each_symbol_the_same_share():
    counts = np.array([100, 3, 0, 40])
    s = EpochSampler(counts, "equal")
    off = np.r_[0, np.cumsum(counts)]
    rng = np.random.default_rng(0)
    for _ in range(3):
        rows = s.epoch(rng)
        assert rows.size == counts.sum() and rows.min() >= 0 and rows.max() < counts.sum()
        codes = np.searchsorted(off, rows, side="right") - 1
        per = np.bincount(codes, minlength=4)
        assert per[2] == 0 and set(per[[0, 1, 3]]) <= {143 // 3, 143 // 3 + 1}
        big = rows[codes == 0]
        assert np.unique(big).size == big.size          # a large symbol: a subset, no repeats
        small = rows[codes == 1]
        assert set(np.bincount(small - off[1])) <= {15, 16}   # a small one: repeated evenly
    w = s.weights()
    assert w.sum() == pytest.approx(1.0) and w[off[0]:off[1]].sum() == pytest.approx(1 / 3)


def test_universe_sampling_weights(setup):
    w, frames, u, own, notes = setup
    for kind in ("proportional", "equal"):
        p = u.sampling_weights(kind)
        assert p.shape == (u.shape[0],) and p.sum() == pytest.approx(1.0)
    per_symbol = np.bincount(u.codes, weights=u.sampling_weights("equal"))
    assert np.allclose(per_symbol, 1 / 3)
    with pytest.raises(ConfigError):
        u.sampler("bogus")


def test_fit_trains_on_a_universe_exactly_as_on_its_materialised_windows(setup):
    """fit() needs only shape and gather: a universe trains bit for bit as the same windows in an array."""
    import betavae_np as bv

    w, frames, u, own, notes = setup
    if w.norm == "none":
        pytest.skip("unscaled prices (~100) diverge at the default learning rate; nothing universe-specific")
    train, val = u.split(0.2)
    cfg = bv.VAEConfig(n_input=u.shape[1], hidden=(16,), n_latent=3)
    m1, m2 = bv.BetaVAE(cfg, rng=0), bv.BetaVAE(cfg, rng=0)
    h1 = bv.fit(m1, train, epochs=2, batch_size=64, rng=1, validation=val)
    h2 = bv.fit(m2, train.array(), epochs=2, batch_size=64, rng=1, validation=val.array())
    assert m1.params.tobytes() == m2.params.tobytes() and h1.val_total == h2.val_total
