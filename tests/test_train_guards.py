"""forward_train/backward_train refuse what their kernels would misread, on both engines.

The compiled passes read X, eps and the workspace through raw pointers (and the numpy engine's
Numba kernels index without bounds checks): a wrong width, a short eps, another model's
workspace or a batch above the workspace capacity must raise one typed sentence, never read or
write outside the buffers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import betavae_np as bv
from betavae_np.exceptions import InputError
from betavae_np.nn import engine

ENGINES = ["numpy"] + (["compiled"] if engine.compiled_available() else [])
CFG = bv.VAEConfig(n_input=20, hidden=(16,), n_latent=3)


def _batch(B, n=20, L=3, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((B, n)).astype(np.float32),
            rng.standard_normal((B, L)).astype(np.float32))


@pytest.mark.parametrize("eng", ENGINES)
def test_forward_train_refuses_x_of_another_width(eng):
    model = bv.BetaVAE(CFG, rng=0)
    ws = model.workspace(8, eng)
    X, eps = _batch(8, n=10)
    with pytest.raises(InputError, match=r"X must have shape \(B, 20\)"):
        model.forward_train(ws, X, eps)


@pytest.mark.parametrize("eng", ENGINES)
@pytest.mark.parametrize("shape", [(2, 3), (8, 2), (8, 4), (8,)])
def test_forward_train_refuses_eps_of_another_shape(eng, shape):
    model = bv.BetaVAE(CFG, rng=0)
    ws = model.workspace(8, eng)
    X, _ = _batch(8)
    eps = np.zeros(shape, np.float32)
    with pytest.raises(InputError, match=r"eps must have shape \(8, 3\)"):
        model.forward_train(ws, X, eps)


@pytest.mark.parametrize("eng", ENGINES)
def test_forward_train_refuses_another_models_workspace(eng):
    model = bv.BetaVAE(CFG, rng=0)
    other = bv.BetaVAE(bv.VAEConfig(n_input=20, hidden=(64, 32), n_latent=3), rng=0)
    twin = bv.BetaVAE(CFG, rng=1)                        # same architecture, other model
    X, eps = _batch(8)
    for ws in (other.workspace(8, eng), twin.workspace(8, eng)):
        with pytest.raises(InputError, match="workspace belongs to another model"):
            model.forward_train(ws, X, eps)
    with pytest.raises(InputError, match="workspace"):
        model.forward_train("not a workspace", X, eps)


@pytest.mark.parametrize("eng", ENGINES)
def test_backward_train_refuses_another_models_workspace_and_a_missing_forward(eng):
    model = bv.BetaVAE(CFG, rng=0)
    twin = bv.BetaVAE(CFG, rng=1)
    ws = twin.workspace(8, eng)
    twin.forward_train(ws, *_batch(8))
    with pytest.raises(InputError, match="workspace belongs to another model"):
        model.backward_train(ws, 1.0)
    fresh = model.workspace(8, eng)
    with pytest.raises(InputError, match="forward_train"):
        model.backward_train(fresh, 1.0)


@pytest.mark.parametrize("eng", ENGINES)
def test_forward_train_refuses_an_empty_batch(eng):
    model = bv.BetaVAE(CFG, rng=0)
    ws = model.workspace(8, eng)
    X, eps = _batch(8)
    with pytest.raises(InputError, match="at least one row"):
        model.forward_train(ws, X[:0], eps[:0])


_OVER_CAPACITY = textwrap.dedent("""
    import numpy as np, betavae_np as bv
    model = bv.BetaVAE(bv.VAEConfig(n_input=20, hidden=(16,), n_latent=3), rng=0)
    ws = model.workspace(4, {eng!r})
    rng = np.random.default_rng(0)
    X = rng.random((4000, 20)).astype(np.float32)
    eps = rng.standard_normal((4000, 3)).astype(np.float32)
    try:
        model.forward_train(ws, X, eps)
    except bv.InputError as e:
        print("REFUSED", e)
""")


@pytest.mark.parametrize("eng", ENGINES)
def test_forward_train_refuses_a_batch_above_the_workspace_capacity(eng):
    """Run in a child: before the check this wrote past the buffers and glibc aborted."""
    res = subprocess.run([sys.executable, "-c", _OVER_CAPACITY.format(eng=eng)],
                         capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert res.returncode == 0, f"child died ({res.returncode}): {res.stderr[-800:]}"
    assert "REFUSED" in res.stdout and "capacity 4" in res.stdout, res.stdout + res.stderr[-800:]


@pytest.mark.parametrize("eng", ENGINES)
def test_forward_train_errors_leave_the_workspace_state_alone(eng):
    model = bv.BetaVAE(CFG, rng=0)
    ws = model.workspace(8, eng)
    X, eps = _batch(8)
    model.forward_train(ws, X, eps)
    with pytest.raises(InputError):
        model.forward_train(ws, X[:, :10], eps)
    assert ws.last_X is X and ws.last_eps is eps
    model.backward_train(ws, 1.0)                     # still the last good batch
    assert np.isfinite(model.grads).all()
