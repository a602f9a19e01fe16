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
3. memory: the universe window set's own arrays next to the bytes of the candle arrays (the frames'
   values and index).

4. train (``--train``; each weighting in its own child process, so its peak RSS is its own): what
   ``betavae-np train --source DIR --epochs 1`` does, on 61 synthetic symbols x 20,000 hourly
   candles written as CSV files first: ``bv.train(TrainConfig(source=DIR, ...))`` reads the files,
   windows every symbol (each frame dropped once written), splits, trains one epoch of the default
   model (window 32, hidden 128,64, latent 8, batch 256) and writes the records. The child reports
   its RSS rise over its post-import, post-compile baseline at each stage and at the peak, next to
   the candle arrays. Then training speed: ``fit`` on the universe's training windows against
   ``fit`` on one 20,000-candle symbol, windows per wall second and per CPU second over steps
   20..220, alternated three times (the load average is reported with it), and the CPU time of
   gathering one random batch of 256 from each.
5. panel: ``encode_windows`` (gather + encode in chunks) over every window of that universe on one
   core (Numba and BLAS one thread each), windows per wall second and per CPU second (and the
   gather alone per CPU second); the
   arithmetic bound: the encoder's multiply-adds per window against this core's float32 ``matmul``
   rate (a 2048^3 product, and one of the first layer's shape).

Figures depend on the machine and on what else runs on it: quote them with the hardware line.
"""

from __future__ import annotations

import argparse
import os
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
    frames = synthetic_frames(n_symbols, n_candles)
    candle_bytes = sum(df.to_numpy().nbytes + df.index.asi8.nbytes for df in frames.values())
    t0 = time.perf_counter()
    u = UniverseWindowSet.from_frames(w, frames)
    build_s = time.perf_counter() - t0
    own_bytes = u.nbytes
    rng = np.random.default_rng(0)
    uni = windows_per_s(u, u.sampler("equal").epoch(rng))
    one = w.windows(frames["S00USDT"])
    single = windows_per_s(one, rng.permutation(one.shape[0]))
    long_df = synthetic_frames(1, n_symbols * n_candles)["S00USDT"]
    long_ws = w.windows(long_df)
    long = windows_per_s(long_ws, rng.permutation(long_ws.shape[0]))
    return {"symbols": n_symbols, "candles": n_candles, "windows": u.shape[0], "build_s": build_s,
            "universe_wps": uni, "one_symbol_wps": single, "one_long_series_wps": long,
            "candle_mb": candle_bytes / 2**20, "universe_arrays_mb": own_bytes / 2**20,
            "dense_windows_mb": u.shape[0] * u.shape[1] * 4 / 2**20}


class _Enough(Exception):
    pass


def _fit_speed(model, ws, sampler=None, first: int = 20, last: int = 220, cpu: bool = False) -> float:
    """Windows/s of ``fit`` between optimisation steps ``first`` and ``last`` (then stopped); per CPU
    second of this process with ``cpu`` (less sensitive to neighbours taking the core)."""
    import betavae_np as bv

    marks = {}
    clock = time.process_time if cpu else time.perf_counter

    def on_batch(info):
        if info.step in (first, last):
            marks[info.step] = clock()
        if info.step >= last:
            raise _Enough

    epochs = -(-(last + 1) * 256 // ws.shape[0]) + 1
    try:
        bv.fit(model, ws, epochs=epochs, batch_size=256, rng=0, on_batch=on_batch,
               **({} if sampler is None else {"sampler": sampler}))
    except _Enough:
        pass
    return (last - first) * 256 / (marks[last] - marks[first])


def _gather_us(ws, batch: int = 256, batches: int = 400) -> float:
    """CPU microseconds to gather one batch of random rows (best of 3 passes over ``batches``)."""
    rows = np.random.default_rng(0).integers(0, ws.shape[0], batch * batches)
    buf = np.empty((batch, ws.shape[1]), np.float32)
    ws.gather(rows[:batch], buf)
    best = float("inf")
    for _ in range(3):
        c0 = time.process_time()
        for lo in range(0, rows.size, batch):
            ws.gather(rows[lo:lo + batch], buf)
        best = min(best, (time.process_time() - c0) / batches * 1e6)
    return best


def _status_mb() -> dict:
    """VmRSS and VmHWM (peak) of this process in MiB (Linux)."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, val = line.split(":")
                out[key] = int(val.split()[0]) / 1024.0
    return out


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False when not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def write_universe(folder: str, n_symbols: int, n_candles: int) -> None:
    """The synthetic universe as ``<SYMBOL>_1h.csv`` files (what ``train --source DIR`` reads)."""
    for sym, df in synthetic_frames(n_symbols, n_candles).items():
        df.to_csv(os.path.join(folder, f"{sym}_1h.csv"))


def bench_train(folder: str, weighting: str, panel: bool) -> dict:
    """Child process: ``train --source DIR --epochs 1`` with its RSS at every stage, then training
    speed against one symbol and (``panel``) the panel encode and the matmul rate."""
    import gc

    import betavae_np as bv
    from betavae_np.analysis.panel import encode_windows, panel_windows
    from betavae_np.data import Windower, load_universe, read_candles_csv

    warm = synthetic_frames(3, 700)
    bv.train_on_universe(dict(warm), epochs=1, batch_size=64, seed=0, weighting=weighting)   # compile
    gc.collect()
    base = _status_mb()["VmRSS"]
    peak_reset = _reset_peak()
    stage, info = {}, {}

    def at(name):
        stage[name] = _status_mb()["VmRSS"] - base

    def on_data(uni):
        info["candle_mb"] = sum(df.to_numpy().nbytes + df.index.asi8.nbytes for df in uni.frames.values()) / 2**20
        at("candles read")

    def on_batch(b):
        if b.step == 1:
            at("first batch")

    # min-max inputs and the squared error: the model the README's figures were measured with (the
    # defaults before the representation study)
    cfg = bv.TrainConfig(source=folder, epochs=1, seed=0, weighting=weighting, features="minmax", recon="sse")
    t0 = time.perf_counter()
    res = bv.train(cfg, on_data=on_data, on_start=lambda plan: at("windowed and split"), on_batch=on_batch)
    train_s = time.perf_counter() - t0
    at("trained")
    hwm = _status_mb()["VmHWM"] - base
    out = {"weighting": weighting, "windows": res.records.split.windows, "train_windows": res.train.shape[0],
           "candle_mb": info["candle_mb"], "window_set_mb": res.train.nbytes / 2**20, "stages_mb": stage,
           "peak_mb": hwm if peak_reset else None, "train_s": train_s}
    # training speed: the universe's training windows against one symbol, alternated
    one = Windower(window=32, lookback=128, interval="60").windows(
        read_candles_csv(os.path.join(folder, "S00USDT_1h.csv")))
    vcfg = res.model.config
    sampler = res.train.sampler("equal") if weighting == "equal" else None
    t0 = time.perf_counter()
    if sampler is not None:
        sampler.epoch(np.random.default_rng(0))
    out["sampler_epoch_s"] = time.perf_counter() - t0 if sampler is not None else None
    pairs, cpu_pairs, loads = [], [], [os.getloadavg()[0]]
    for _ in range(3):
        for cpu, into in ((False, pairs), (True, cpu_pairs)):
            w_one = _fit_speed(bv.BetaVAE(vcfg, rng=0), one, cpu=cpu)
            w_uni = _fit_speed(bv.BetaVAE(vcfg, rng=0), res.train, sampler=sampler, cpu=cpu)
            into.append((w_one, w_uni))
        loads.append(os.getloadavg()[0])
    out["speed_pairs"], out["cpu_speed_pairs"], out["loads"] = pairs, cpu_pairs, loads
    out["gather_us"] = {"universe": _gather_us(res.train), "one": _gather_us(one)}
    if panel:
        model = res.model              # trained: its windowing record windows the panel
        del res, one
        gc.collect()
        ws = panel_windows(model, load_universe(folder))
        encode_windows(model, ws, chunk=64)
        c0 = time.process_time()
        _, _, secs = encode_windows(model, ws)
        cpu = time.process_time() - c0
        buf = np.empty((4096, ws.shape[1]), np.float32)
        c0 = time.process_time()
        for lo in range(0, ws.shape[0], 4096):
            hi = min(lo + 4096, ws.shape[0])
            ws.gather(np.arange(lo, hi), buf[:hi - lo])
        out["panel_gather_cpu_s"] = time.process_time() - c0
        out.update(panel_windows=ws.shape[0], panel_wall_s=secs, panel_cpu_s=cpu)
        out.update(matmul_rates())
        out["mac_per_window"] = encoder_macs(model)
    return out


def encoder_macs(model) -> int:
    """Multiply-adds of one window through the encoder: hidden layers and the fused mu/logvar heads."""
    sizes = [model.config.n_input, *model.config.hidden, 2 * model.config.n_latent]
    return int(sum(a * b for a, b in zip(sizes[:-1], sizes[1:])))


def matmul_rates() -> dict:
    """This core's float32 matmul rate in GFLOP/s per wall and per CPU second (best of 5 each):
    2048^3, and 4096 x 160 x 128 (the first encoder layer on a chunk)."""
    rng = np.random.default_rng(0)
    out = {}
    for name, (m, k, n) in (("sgemm_2048", (2048, 2048, 2048)), ("sgemm_layer1", (4096, 160, 128))):
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        c = np.empty((m, n), np.float32)
        reps = max(1, int(2e9 // (2 * m * k * n)))
        np.matmul(a, b, out=c)
        wall = cpu = float("inf")
        for _ in range(5):
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(reps):
                np.matmul(a, b, out=c)
            wall = min(wall, (time.perf_counter() - t0) / reps)
            cpu = min(cpu, (time.process_time() - c0) / reps)
        out[name] = 2 * m * k * n / wall / 1e9
        out[name + "_cpu"] = 2 * m * k * n / max(cpu, 1e-9) / 1e9
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--train", action="store_true", help="only the training and panel benchmarks (4, 5)")
    ap.add_argument("--train-child", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--serve", nargs=3, type=int, metavar=("SYMBOLS", "CANDLES", "LATENCY_MS"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(*args.serve)
        return
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    if args.train_child:
        import json

        folder, weighting, panel = args.train_child
        print(json.dumps(bench_train(folder, weighting, panel == "1")))
        return
    from conftest import hardware_info

    print("hardware: " + "; ".join(f"{k}={v}" for k, v in hardware_info().items()))
    if args.train:
        print("(--train runs in child processes with NUMBA_NUM_THREADS, OPENBLAS_NUM_THREADS, OMP_NUM_THREADS "
              "and MKL_NUM_THREADS set to 1)")
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
    print(f"memory: candle arrays {g['candle_mb']:.1f} MiB, universe window set {g['universe_arrays_mb']:.1f} MiB "
          f"({g['universe_arrays_mb'] / g['candle_mb']:.2f}x; all windows dense would be "
          f"{g['dense_windows_mb']:.0f} MiB); the RSS of a training run: --train")


ONE_THREAD = {"NUMBA_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
              "MKL_NUM_THREADS": "1"}


def report_train(n_symbols: int, n_candles: int) -> None:
    import json

    with tempfile.TemporaryDirectory() as folder:
        write_universe(folder, n_symbols, n_candles)
        env = {**os.environ, **ONE_THREAD}
        runs = []
        for weighting in ("proportional", "equal"):
            res = subprocess.run([sys.executable, __file__, "--train-child", folder, weighting,
                                  "1" if weighting == "proportional" else "0"],
                                 capture_output=True, text=True, check=True, env=env)
            runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
    for t in runs:
        cb = t["candle_mb"]
        stages = ", ".join(f"{k} +{v:.0f}" for k, v in t["stages_mb"].items())
        peak = "not measurable here" if t["peak_mb"] is None else f"+{t['peak_mb']:.0f} MiB = {t['peak_mb'] / cb:.2f}x"
        print(f"train --source DIR --epochs 1 --weighting {t['weighting']}: {n_symbols} symbols x {n_candles:,} "
              f"candles ({t['windows']:,} windows, {t['train_windows']:,} for training) in {t['train_s']:.0f} s; "
              f"candle arrays {cb:.1f} MiB, window set {t['window_set_mb']:.1f} MiB; RSS over the post-import "
              f"baseline (MiB): {stages}; peak {peak} the candle arrays")
        for key, unit in (("speed_pairs", "windows/s"), ("cpu_speed_pairs", "windows per CPU second")):
            ratios = [u / o for o, u in t[key]]
            print(f"  fit {unit}, one symbol vs universe ({t['weighting']}), alternated: "
                  + "; ".join(f"{o:,.0f} vs {u:,.0f}" for o, u in t[key])
                  + f" -> universe/one {min(ratios):.2f}..{max(ratios):.2f} (median {sorted(ratios)[1]:.2f})")
        print(f"  gather of a random batch of 256 (CPU): universe {t['gather_us']['universe']:.0f} us, one symbol "
              f"{t['gather_us']['one']:.0f} us")
        print(f"  load average {' '.join(f'{x:.1f}' for x in t['loads'])}"
              + ("" if t["sampler_epoch_s"] is None else f"; equal sampler {t['sampler_epoch_s']:.2f} s per epoch"))
    t = runs[0]
    n, macs = t["panel_windows"], t["mac_per_window"]
    print(f"panel, one core: gather + encode of all {n:,} windows: {n / t['panel_wall_s']:,.0f} windows/s "
          f"(wall), {n / t['panel_cpu_s']:,.0f} per CPU second; the gather alone {n / t['panel_gather_cpu_s']:,.0f} "
          f"per CPU second")
    best = max(t["sgemm_2048"], t["sgemm_2048_cpu"])
    print(f"  bound: {macs:,} multiply-adds per window; 2M windows/s needs {4 * macs / 1e3:.1f} GFLOP/s; this "
          f"core's float32 matmul: {t['sgemm_2048']:.0f} GFLOP/s per wall second ({t['sgemm_2048_cpu']:.0f} per CPU "
          f"second) for 2048^3, {t['sgemm_layer1']:.0f} ({t['sgemm_layer1_cpu']:.0f}) for 4096x160x128: the dense "
          f"layers alone allow at most {best * 1e9 / (2 * macs):,.0f} windows/s")


if __name__ == "__main__":
    main()
