"""Against PyTorch: the hand-written backprop and Adam checked by an independent autograd.

These compare numbers, never times. They skip when torch is not installed (it is no dependency);
CI installs torch==2.13.0 in a venv of its own and runs them with ``BETAVAE_NP_REQUIRE_TORCH=1``,
under which a missing torch fails instead of skipping.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import betavae_np as bv

pytestmark = pytest.mark.torch


def _torch():
    if os.environ.get("BETAVAE_NP_REQUIRE_TORCH") == "1":
        import torch                      # CI's torch step: a missing torch is a failure
        return torch
    return pytest.importorskip("torch")


def _torch_loss(torch, named, X, eps, beta, activation, n_hidden):
    """recon (mean over rows of the squared error sum), KL per dim (means), and the objective."""
    F = torch.nn.functional
    act = {"relu": F.relu, "tanh": torch.tanh, "elu": F.elu,
           "leaky_relu": lambda u: F.leaky_relu(u, 0.01)}[activation]
    h = X
    for i in range(n_hidden):
        h = act(h @ named[f"enc.{i}.W"] + named[f"enc.{i}.b"])
    mu = h @ named["mu.W"] + named["mu.b"]
    logvar = h @ named["logvar.W"] + named["logvar.b"]
    h = mu + torch.exp(0.5 * logvar) * eps
    for i in range(n_hidden):
        h = act(h @ named[f"dec.{i}.W"] + named[f"dec.{i}.b"])
    x_hat = h @ named["out.W"] + named["out.b"]
    recon = ((X - x_hat) ** 2).sum(1).mean()
    kl_per_dim = (-0.5 * (1 + logvar - mu ** 2 - torch.exp(logvar))).mean(0)
    return recon + beta * kl_per_dim.sum(), recon, kl_per_dim


@pytest.mark.parametrize("activation", ["tanh", "relu", "elu", "leaky_relu"])
@pytest.mark.parametrize("B", [32, 64])
def test_loss_and_gradients_match_torch_autograd_at_standard_size(activation, B):
    torch = _torch()
    cfg = bv.VAEConfig(n_input=160, hidden=(128, 64), n_latent=8, activation=activation,
                       dtype="float64")
    model = bv.BetaVAE(cfg, rng=3)
    rng = np.random.default_rng(B)
    X, eps = rng.random((B, 160)), rng.standard_normal((B, 8))
    # the training path (fit's workspace, whichever engine runs here)
    ws = model.workspace(B)
    recon, kl = model.forward_train(ws, X, eps)
    model.backward_train(ws, 4.0)
    grads = model.named_gradients()

    named = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in model.named_parameters().items()}
    total, t_recon, t_kl_dim = _torch_loss(torch, named, torch.tensor(X), torch.tensor(eps), 4.0,
                                           activation, len(cfg.hidden))
    total.backward()
    assert recon == pytest.approx(t_recon.item(), rel=1e-12)
    assert kl == pytest.approx(t_kl_dim.sum().item(), rel=1e-12)
    np.testing.assert_allclose(ws.kl_per_dim, t_kl_dim.detach().numpy(), rtol=1e-12)
    for name, g in grads.items():
        np.testing.assert_allclose(g, named[name].grad.numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=f"d{name} ({activation}, B={B})")


def test_adam_matches_torch_adamw():
    torch = _torch()
    rng = np.random.default_rng(2)
    p0 = rng.normal(size=30)
    grads = [rng.normal(size=30) for _ in range(5)]
    tp = torch.tensor(p0.copy(), requires_grad=True)
    topt = torch.optim.AdamW([tp], lr=0.01, weight_decay=0.1)
    p, opt = p0.copy(), bv.Adam(lr=0.01, weight_decay=0.1)
    for g in grads:
        tp.grad = torch.tensor(g)
        topt.step()
        opt.step(p, g)
    np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-12, atol=1e-12)
