"""Worker processes after training: the package's guidance (spawn or forkserver) works.

Numba's OpenMP threading layer (GNU libgomp) is not fork-safe: a ``fork`` child of a process that
has trained dies or hangs as soon as it runs a parallel kernel. The package itself starts no
processes; the README tells users to start theirs with ``spawn`` or ``forkserver``. Every child
here runs under a timeout, so a regression fails instead of hanging.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import betavae_np

PACKAGE = Path(betavae_np.__file__).parent

_SCRIPT = textwrap.dedent("""
    import json, multiprocessing as mp, queue, sys
    import numpy as np
    import betavae_np as bv

    def train(seed):
        model = bv.BetaVAE(bv.VAEConfig(n_input=20, hidden=(16,), n_latent=3), rng=seed)
        X = np.random.default_rng(0).random((256, 20)).astype(np.float32)
        bv.fit(model, X, epochs=1, batch_size=128, rng=seed)      # split batches: parallel
        return model.params

    def work(q):
        q.put(train(1).tobytes().hex())

    if __name__ == "__main__":
        train(0)                                                   # the parent has trained
        ctx = mp.get_context(sys.argv[1])
        q = ctx.Queue()
        p = ctx.Process(target=work, args=(q,))
        p.start()
        got = None
        for _ in range(150):                                       # stop early if it died
            try:
                got = q.get(timeout=1)
                break
            except queue.Empty:
                if not p.is_alive():
                    break
        p.join(30)
        if p.is_alive():
            p.kill()
        print(json.dumps({"child": got, "exitcode": p.exitcode,
                          "parent": train(1).tobytes().hex()}))
""")


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_worker_started_with_spawn_or_forkserver_after_training_trains_too(tmp_path, method):
    script = tmp_path / "workers.py"
    script.write_text(_SCRIPT)
    res = subprocess.run([sys.executable, str(script), method], capture_output=True, text=True,
                         timeout=280, cwd=tmp_path, env=dict(os.environ))
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["exitcode"] == 0, res.stderr[-2000:]
    assert out["child"] == out["parent"], "the worker's training differs from the parent's"


def test_package_starts_no_forked_processes():
    """Nothing in the package forks: any process it starts must name spawn or forkserver."""
    pattern = re.compile(r"\bos\.fork\b|multiprocessing|ProcessPoolExecutor|\bsubprocess\b")
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        for m in pattern.finditer(text):
            line = text[text.rfind("\n", 0, m.start()) + 1:text.find("\n", m.end())]
            assert "spawn" in line or "forkserver" in line, f"{path.name}: {line.strip()}"
