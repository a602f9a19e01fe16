"""Universe benchmarks: fetching many symbols at once, gathering batches across symbols, memory.

Run: ``python bench/bench_universe.py`` (``--quick`` for a small smoke run). Prints the hardware,
then:

1. fetch: 20 symbols x 5,000 hourly candles from the loopback Bybit server (tests/bybit_server.py,
   run in a child process so that it does not share the client's interpreter), pacing lifted, each
   run into a fresh cache: ``fetch_universe`` (one client, one session, 4 requests in flight) against
   20 sequential ``fetch_klines`` calls (one client each, as before); once with the bare loopback
   and once with every answer delayed 50 ms (a stand-in for a real round trip to Bybit).
2. gather: batches of 256 windows (32 candles x 5 features, lookback 128) in equal-weighting epoch
   order from a 61-symbol x 20,000-candle synthetic universe, against one symbol's ``WindowSet``
   (20,000 candles) and against one 1,220,000-candle series; windows per second, one thread.
3. memory: peak RSS (``ru_maxrss``) before and after building and gathering from the universe, next
   to the bytes of the candle arrays (the frames' values and index) and of the universe's own arrays.

4. train (``--train``, in a child process so its peak RSS is its own): ``fit`` on the 61 x 20,000
   universe (default model: window 32, hidden 128,64, latent 8, batch 256) with proportional and
   with equal weighting, against ``fit`` on one 20,000-candle symbol; windows/s over steps 20..220
   (the first steps warm up), the equal sampler's per-epoch cost, and the child's peak RSS next to
   the candle arrays (the frames are dropped once the window set is built, as ``train`` does).
5. panel: ``encode_windows`` (gather + ``model.encode`` in chunks of 32,768) over every window of
   that universe, windows/s end to end.

Figures depend on the machine and on what else runs on it: quote them with the hardware line.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

H = 3_600_000
T0 = 1_600_000_000_000 // H * H


def rss_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


def serve(n_symbols: int, n_candles: int, latency_ms: int = 0) -> None:
    """Child process: a loopback server with ``n_symbols`` histories, each answer delayed by
    ``latency_ms``; prints its URL, stops at EOF."""
    from bybit_server import BybitServer, make_history

    with BybitServer() as srv:
        srv.delay_seconds = latency_ms / 1000.0
        srv.now_ms = T0 + n_candles * H + 60_000
        for k in range(n_symbols):
            srv.add(f"S{k:02d}USDT", "60", make_history(T0, n_candles, H, seed=k))
        print(srv.url, flush=True)
        sys.stdin.read()


def bench_fetch(n_symbols: int, n_candles: int, latency_ms: int = 0) -> dict:
    from betavae_np.data import fetch_klines, fetch_universe

    child = subprocess.Popen([sys.executable, __file__, "--serve", str(n_symbols), str(n_candles),
                              str(latency_ms)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        url = child.stdout.readline().strip()
        syms = [f"S{k:02d}USDT" for k in range(n_symbols)]
        now = T0 + n_candles * H + 60_000
        kw = dict(base_url=url, rate=None, clock=lambda: now)
        rng = (T0, T0 + (n_candles - 1) * H)
        fetch_klines(syms[0], "60", *rng, use_cache=False, **kw)  # warm the server and the parser
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            got = fetch_universe(syms, "60", *rng, cache_dir=d, **kw)
            t_many = time.perf_counter() - t0
        assert got.ok and all(len(df) == n_candles for df in got.values())
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            for s in syms:
                assert len(fetch_klines(s, "60", *rng, cache_dir=d, **kw)) == n_candles
            t_seq = time.perf_counter() - t0
    finally:
        child.stdin.close()
        child.wait(10)
    return {"symbols": n_symbols, "candles": n_candles, "latency_ms": latency_ms, "universe_s": t_many,
            "sequential_s": t_seq}


def synthetic_frames(n_symbols: int, n_candles: int) -> dict:
    """Random-walk hourly candles per symbol (consistent OHLC, log-normal volume)."""
    from betavae_np.data.frame import frame_from_arrays

    frames = {}
    for k in range(n_symbols):
        rng = np.random.default_rng(k)
        c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n_candles)))
        o = np.r_[c[0], c[:-1]]
        h = np.maximum(o, c) * (1 + rng.uniform(0, 0.003, n_candles))
        lo = np.minimum(o, c) * (1 - rng.uniform(0, 0.003, n_candles))
        v = rng.lognormal(3, 1, n_candles)
        frames[f"S{k:02d}USDT"] = frame_from_arrays(T0 + H * np.arange(n_candles), np.c_[o, h, lo, c, v])
    return frames


def windows_per_s(ws, rows_epoch: np.ndarray, batch: int = 256, seconds: float = 2.0) -> float:
    buf = np.empty((batch, ws.shape[1]), np.float32)
    ws.gather(rows_epoch[:batch], buf)  # JIT warm
    done, t0 = 0, time.perf_counter()
    while True:
        for lo in range(0, rows_epoch.size - batch + 1, batch):
            ws.gather(rows_epoch[lo:lo + batch], buf)
            done += batch
            if done % (batch * 64) == 0 and time.perf_counter() - t0 > seconds:
                return done / (time.perf_counter() - t0)


def bench_gather(n_symbols: int, n_candles: int) -> dict:
    from betavae_np.data import UniverseWindowSet, Windower

    w = Windower(window=32, lookback=128, interval="60")
    UniverseWindowSet.from_frames(w, synthetic_frames(2, 300))  # compile outside the measurement
    rss0 = rss_peak_mb()
    frames = synthetic_frames(n_symbols, n_candles)
    candle_bytes = sum(df.to_numpy().nbytes + df.index.asi8.nbytes for df in frames.values())
    rss_frames = rss_peak_mb()
    t0 = time.perf_counter()
    u = UniverseWindowSet.from_frames(w, frames)
    build_s = time.perf_counter() - t0
    own_bytes = sum(a.nbytes for a in (u._raw, u._lo, u._hi, u._ends, u._times_ms, u._filled))
    rng = np.random.default_rng(0)
    uni = windows_per_s(u, u.sampler("equal").epoch(rng))
    rss_after = rss_peak_mb()
    one = w.windows(frames["S00USDT"])
    single = windows_per_s(one, rng.permutation(one.shape[0]))
    long_df = synthetic_frames(1, n_symbols * n_candles)["S00USDT"]
    long_ws = w.windows(long_df)
    long = windows_per_s(long_ws, rng.permutation(long_ws.shape[0]))
    return {"symbols": n_symbols, "candles": n_candles, "windows": u.shape[0], "build_s": build_s,
            "universe_wps": uni, "one_symbol_wps": single, "one_long_series_wps": long,
            "candle_mb": candle_bytes / 2**20, "universe_arrays_mb": own_bytes / 2**20,
            "dense_windows_mb": u.shape[0] * u.shape[1] * 4 / 2**20,
            "rss_start_mb": rss0, "rss_with_frames_mb": rss_frames, "rss_peak_mb": rss_after}


class _Enough(Exception):
    pass


def _fit_speed(model, ws, sampler=None, first: int = 20, last: int = 220) -> float:
    """Windows/s of ``fit`` between optimisation steps ``first`` and ``last`` (then stopped)."""
    import betavae_np as bv

    marks = {}

    def on_batch(info):
        if info.step in (first, last):
            marks[info.step] = time.perf_counter()
        if info.step >= last:
            raise _Enough

    epochs = -(-(last + 1) * 256 // ws.shape[0]) + 1
    try:
        bv.fit(model, ws, epochs=epochs, batch_size=256, rng=0, on_batch=on_batch,
               **({} if sampler is None else {"sampler": sampler}))
    except _Enough:
        pass
    return (last - first) * 256 / (marks[last] - marks[first])


def bench_train(n_symbols: int, n_candles: int) -> dict:
    """Child process: training and panel-encoding speed on a synthetic universe, and the peak RSS."""
    import betavae_np as bv
    from betavae_np.analysis.panel import encode_windows
    from betavae_np.data import UniverseWindowSet, Windower

    w = Windower(window=32, lookback=128, interval="60")
    cfg = bv.VAEConfig(n_input=160, hidden=(128, 64), n_latent=8)
    warm = UniverseWindowSet.from_frames(w, synthetic_frames(2, 600))
    _fit_speed(bv.BetaVAE(cfg, rng=0), warm, first=1, last=3)          # compile outside the measurement
    rss0 = rss_peak_mb()
    frames = synthetic_frames(n_symbols, n_candles)
    candle_bytes = sum(df.to_numpy().nbytes + df.index.asi8.nbytes for df in frames.values())
    rss_frames = rss_peak_mb()
    one = w.windows(frames["S00USDT"])
    u = UniverseWindowSet.from_frames(w, frames)
    del frames                                                           # as train() does
    t0 = time.perf_counter()
    equal = u.sampler("equal")
    equal.epoch(np.random.default_rng(0))
    sampler_s = time.perf_counter() - t0
    out = {"windows": u.shape[0], "candle_mb": candle_bytes / 2**20, "sampler_epoch_s": sampler_s}
    out["one_symbol_wps"] = _fit_speed(bv.BetaVAE(cfg, rng=0), one)
    out["proportional_wps"] = _fit_speed(bv.BetaVAE(cfg, rng=0), u)
    out["equal_wps"] = _fit_speed(bv.BetaVAE(cfg, rng=0), u, sampler=equal)
    out["rss_train_mb"] = rss_peak_mb()
    model = bv.BetaVAE(cfg, rng=0)
    encode_windows(model, warm)
    _, _, secs = encode_windows(model, u)
    out["panel_wps"] = u.shape[0] / secs
    out["rss_start_mb"], out["rss_frames_mb"], out["rss_peak_mb"] = rss0, rss_frames, rss_peak_mb()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--train", action="store_true", help="only the training and panel benchmarks (4, 5)")
    ap.add_argument("--train-child", nargs=2, type=int, help=argparse.SUPPRESS)
    ap.add_argument("--serve", nargs=3, type=int, metavar=("SYMBOLS", "CANDLES", "LATENCY_MS"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(*args.serve)
        return
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    if args.train_child:
        import json

        print(json.dumps(bench_train(*args.train_child)))
        return
    from conftest import hardware_info

    print("hardware: " + "; ".join(f"{k}={v}" for k, v in hardware_info().items()))
    if args.train:
        report_train(*((4, 2_000) if args.quick else (61, 20_000)))
        return
    for latency in (0, 50):   # a bare loopback, and 50 ms per answer as a stand-in for a real round trip
        f = bench_fetch(4, 2_000, latency) if args.quick else bench_fetch(20, 5_000, latency)
        print(f"fetch {f['symbols']} symbols x {f['candles']} candles, pacing lifted, server latency "
              f"{latency} ms: fetch_universe {f['universe_s']:.2f} s, {f['symbols']} sequential fetch_klines "
              f"{f['sequential_s']:.2f} s ({f['sequential_s'] / f['universe_s']:.2f}x)")
    g = bench_gather(4, 2_000) if args.quick else bench_gather(61, 20_000)
    print(f"gather, batch 256, {g['symbols']} symbols x {g['candles']} candles ({g['windows']:,} windows, "
          f"built in {g['build_s']:.2f} s): universe {g['universe_wps'] / 1e6:.2f} M windows/s, "
          f"one symbol {g['one_symbol_wps'] / 1e6:.2f} M/s, one {g['symbols'] * g['candles']:,}-candle "
          f"series {g['one_long_series_wps'] / 1e6:.2f} M/s")
    print(f"memory: candle arrays {g['candle_mb']:.0f} MB, universe arrays {g['universe_arrays_mb']:.0f} MB "
          f"(all windows dense would be {g['dense_windows_mb']:.0f} MB); peak RSS {g['rss_start_mb']:.0f} MB "
          f"before the frames, {g['rss_with_frames_mb']:.0f} MB with them, {g['rss_peak_mb']:.0f} MB after "
          f"building and gathering (+{g['rss_peak_mb'] - g['rss_with_frames_mb']:.0f} MB = "
          f"{(g['rss_peak_mb'] - g['rss_with_frames_mb']) / g['candle_mb']:.2f}x the candle arrays)")


def report_train(n_symbols: int, n_candles: int) -> None:
    import json

    res = subprocess.run([sys.executable, __file__, "--train-child", str(n_symbols), str(n_candles)],
                         capture_output=True, text=True, check=True)
    t = json.loads(res.stdout.strip().splitlines()[-1])
    print(f"train, batch 256, window 32, hidden 128,64, latent 8, NUMBA_NUM_THREADS=1: {n_symbols} symbols x "
          f"{n_candles:,} candles ({t['windows']:,} windows): proportional {t['proportional_wps']:,.0f} windows/s, "
          f"equal {t['equal_wps']:,.0f} windows/s; one symbol {t['one_symbol_wps']:,.0f} windows/s "
          f"(universe/one: {t['proportional_wps'] / t['one_symbol_wps']:.2f}, "
          f"{t['equal_wps'] / t['one_symbol_wps']:.2f}); equal sampler {t['sampler_epoch_s']:.2f} s per epoch")
    print(f"train memory: candle arrays {t['candle_mb']:.0f} MB; child peak RSS {t['rss_start_mb']:.0f} MB after "
          f"imports and compiling, {t['rss_frames_mb']:.0f} MB with the synthetic frames made, "
          f"{t['rss_train_mb']:.0f} MB after windowing, dropping the frames and training "
          f"(+{t['rss_train_mb'] - t['rss_start_mb']:.0f} MB = "
          f"{(t['rss_train_mb'] - t['rss_start_mb']) / t['candle_mb']:.2f}x the candle arrays, the making of the "
          f"frames included), {t['rss_peak_mb']:.0f} MB after encoding the panel")
    print(f"panel: gather + encode of all {t['windows']:,} windows: {t['panel_wps']:,.0f} windows/s")


if __name__ == "__main__":
    main()
