"""bv.sweep on a Dask LocalCluster of process workers (1 thread each): the same bits as the spawn
pool, a failing job comes back as its error, and a worker killed mid-job has its job retried."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

import betavae_np as bv
from betavae_np.sweeps import grid, sweep

distributed = pytest.importorskip("distributed")

# a LocalCluster start and a killed worker take tens of seconds: CI runs this file as its own step
# (python -m pytest -m slow tests/test_sweep_dask.py)
pytestmark = pytest.mark.slow

TINY = dict(window=8, lookback=32, latent=3, hidden=(8,), epochs=1, batch_size=128)


@pytest.fixture(scope="module")
def real():
    return bv.data.load_sample().iloc[:3000]


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as c:
        yield c


def test_dask_results_equal_the_process_pool_and_a_failure_is_a_row(tmp_path, real, client):
    cfgs = grid(bv.TrainConfig(**TINY), betas=[0.5, 4.0], seeds=1)
    bad = bv.TrainConfig(**dict(TINY, batch_size=100_000))
    on_dask = sweep([*cfgs, bad], client, out_dir=tmp_path / "dask", candles=real)
    assert list(on_dask["status"]) == ["done", "done", "failed"], on_dask["error"].tolist()
    assert "batch_size" in on_dask["error"].iloc[2]
    assert set(on_dask["numba_threads"].iloc[:2]) == {1}
    pool = sweep(cfgs, workers=2, out_dir=tmp_path / "pool", candles=real)
    for a, b in zip(on_dask["model"].iloc[:2], pool["model"]):
        assert bv.load(a).params.tobytes() == bv.load(b).params.tobytes()
    assert np.array_equal(on_dask["recon"].to_numpy()[:2], pool["recon"].to_numpy())


def test_dask_worker_killed_mid_job_is_retried(tmp_path, real, client):
    cfg = bv.TrainConfig(**dict(TINY, epochs=40))          # a job of a few seconds
    pids = client.run(os.getpid)                           # {worker address: pid}
    killed = []

    def kill_when_running():
        deadline = time.time() + 120
        while time.time() < deadline and not killed:
            for addr, keys in client.processing().items():
                if any("run_job" in str(k) for k in keys) and addr in pids:
                    time.sleep(0.5)                        # mid-job
                    os.kill(pids[addr], signal.SIGKILL)
                    killed.append(addr)
                    return
            time.sleep(0.05)

    t = threading.Thread(target=kill_when_running, daemon=True)
    t.start()
    table = sweep([cfg], client, out_dir=tmp_path, candles=real, warm=False)
    t.join(5)
    assert killed, "no worker was seen running the job"
    assert table["status"].iloc[0] == "done", table["error"].iloc[0]
    alone = bv.run.train_on_candles(real, cfg).model
    assert bv.load(table["model"].iloc[0]).params.tobytes() == alone.params.tobytes()
