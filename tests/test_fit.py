"""fit(): learning, per-step schedules, determinism, guards, early stopping, window sources."""

from __future__ import annotations

import json

import numpy as np
import pytest

import betavae_np as bv
from betavae_np import schedules as S
from betavae_np.exceptions import ConfigError, InputError, TrainingError


def factor_data(n=2000, d=20, seed=0, dtype=np.float32):
    """2 latent factors through a fixed nonlinear map to ``d`` dims plus small noise."""
    rng = np.random.default_rng(seed)
    F = rng.normal(size=(n, 2))
    A, B = rng.normal(size=(2, d)), rng.normal(size=(2, d))
    return (np.tanh(F @ A) + 0.3 * (F @ B) + 0.05 * rng.normal(size=(n, d))).astype(dtype)


def small_model(d=20, latent=6, dtype="float32", seed=0):
    return bv.BetaVAE(bv.VAEConfig(n_input=d, hidden=(32,), n_latent=latent, dtype=dtype), rng=seed)


class Windows:
    """A minimal window source: ``.shape`` and ``.gather(rows, out)`` over a private array."""

    def __init__(self, X):
        self._X = X
        self.shape = X.shape
        self.calls = 0

    def gather(self, rows, out):
        assert rows.dtype == np.int64 and out.flags.c_contiguous
        self.calls += 1
        np.take(self._X, rows, axis=0, out=out)


@pytest.fixture(scope="module")
def X():
    return factor_data()


@pytest.fixture(scope="module")
def trained(X):
    model = small_model()
    hist = bv.fit(model, X, epochs=20, batch_size=64, optimizer=bv.Adam(3e-3),
                  schedule=S.Constant(4.0), rng=0)
    return model, hist


def test_fit_learns_structure(X, trained):
    model, hist = trained
    assert hist.train_total[-1] < 0.3 * hist.train_total[0]
    mean_mse = float(((X - X.mean(0)) ** 2).sum(1).mean())
    rec = model.reconstruct(X)
    assert float(((X - rec) ** 2).sum(1).mean()) < 0.5 * mean_mse


def test_fit_beta_prunes_unused_latents(trained):
    _, hist = trained
    kl = np.sort(hist.kl_per_dim[-1])
    assert np.all(kl[:4] < 0.05), kl      # 6 latents, 2 true factors: 4 switched off
    assert np.all(kl[4:] > 0.2), kl


def test_fit_history_shapes_and_json(X, trained):
    _, hist = trained
    assert hist.epochs == 20 and len(hist.kl_per_dim) == 20 and len(hist.kl_per_dim[0]) == 6
    assert hist.steps[-1] == 20 * 32 and hist.steps[0] == 32   # ceil(2000 / 64) = 32
    assert hist.val_total is None and hist.best_epoch is None and not hist.stopped_early
    d = json.loads(json.dumps(hist.to_dict()))
    assert bv.History.from_dict(d) == hist
    # kl per dim sums to the epoch KL
    assert sum(hist.kl_per_dim[-1]) == pytest.approx(hist.train_kl[-1], rel=1e-6)


def test_fit_same_seed_bit_identical(X):
    a, b, c = small_model(), small_model(), small_model()
    bv.fit(a, X[:500], epochs=2, batch_size=32, rng=7)
    bv.fit(b, X[:500], epochs=2, batch_size=32, rng=np.random.default_rng(7))
    bv.fit(c, X[:500], epochs=2, batch_size=32, rng=8)
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.array_equal(a.params, c.params)


def test_fit_does_not_mutate_input(X):
    X0 = X[:300].copy()
    Xin = X0.copy()
    bv.fit(small_model(), Xin, epochs=1, batch_size=50, rng=0)
    np.testing.assert_array_equal(Xin, X0)


def test_fit_schedule_is_per_step_not_per_epoch(X):
    seen = []
    hist = bv.fit(small_model(), X[:640], epochs=2, batch_size=64, rng=0,
                  schedule=S.Linear(beta=4.0, warmup=1.0),
                  on_batch=lambda info: seen.append((info.epoch, info.step, info.beta)))
    total = 20
    assert [s for _, s, _ in seen] == list(range(total))
    first_epoch = [b for e, _, b in seen if e == 0]
    assert len(set(first_epoch)) == 10                       # beta changes within an epoch
    for _, s, b in seen:
        assert b == pytest.approx(4.0 * s / total)
    assert hist.beta == [pytest.approx(4.0 * 9 / 20), pytest.approx(4.0 * 19 / 20)]


def test_fit_capacity_pushes_kl_towards_target(X):
    model = small_model()
    hist = bv.fit(model, X[:1000], epochs=8, batch_size=50, optimizer=bv.Adam(3e-3), rng=0,
                  schedule=S.Capacity(gamma=20.0, c_max=3.0, ramp=0.5))
    assert hist.train_kl[-1] == pytest.approx(3.0, abs=0.5)


def test_fit_last_partial_batch_used(X):
    sizes = []
    src = Windows(X[:250])
    orig = src.gather
    src.gather = lambda rows, out: (sizes.append(len(rows)), orig(rows, out))
    hist = bv.fit(small_model(), src, epochs=2, batch_size=100, rng=0)
    assert sizes == [100, 100, 50, 100, 100, 50] and hist.steps == [3, 6]


def test_fit_window_source_equals_array(X):
    a, b = small_model(), small_model()
    ha = bv.fit(a, X[:400], epochs=2, batch_size=64, rng=3, validation=X[400:500])
    src, vsrc = Windows(X[:400]), Windows(X[400:500])
    hb = bv.fit(b, src, epochs=2, batch_size=64, rng=3, validation=vsrc)
    np.testing.assert_array_equal(a.params, b.params)
    assert ha.val_total == hb.val_total and src.calls == 14 and vsrc.calls == 2  # one validation chunk per epoch


def test_fit_float64_input_cast_to_model_dtype(X):
    a, b = small_model(), small_model()
    bv.fit(a, X[:300], epochs=1, batch_size=64, rng=0)
    bv.fit(b, X[:300].astype(np.float64), epochs=1, batch_size=64, rng=0)
    np.testing.assert_array_equal(a.params, b.params)


def test_fit_validation_is_deterministic_and_callbacks_fire(X):
    model = small_model()
    epochs_seen = []
    hist = bv.fit(model, X[:500], epochs=3, batch_size=100, rng=0, validation=X[500:700],
                  on_epoch=epochs_seen.append)
    assert [i.epoch for i in epochs_seen] == [0, 1, 2]
    info = epochs_seen[-1]
    assert info.val_loss == hist.val_total[-1] and len(info.kl_per_dim) == 6
    assert info.step == 14 and info.total_steps == 15
    parts = model.loss(X[500:700], np.random.default_rng(bv.fitting.VALIDATION_SEED).standard_normal(
        (200, 6), dtype=np.float32), 1.0)
    assert hist.val_recon[-1] == pytest.approx(parts.recon, rel=1e-5)
    assert hist.val_kl[-1] == pytest.approx(parts.kl, rel=1e-5)


@pytest.mark.parametrize("scale,lr", [(1e18, 1e-3), (1.0, 1e10)])
def test_fit_nan_guard_restores_parameters(X, scale, lr):
    model = small_model()
    start = model.params.copy()
    with pytest.raises(TrainingError, match="epoch 1/3.*clip_norm"):
        bv.fit(model, X[:500] * scale, epochs=3, batch_size=50, optimizer=bv.Adam(lr), rng=0)
    np.testing.assert_array_equal(model.params, start)


def test_fit_nan_guard_restores_last_good_epoch(X):
    model = small_model()
    snapshots = []

    def boom(info):
        snapshots.append(model.params.copy())
        if info.epoch == 1:
            model.params[0] = np.nan   # corrupt the model during epoch 2

    with pytest.raises(TrainingError, match="epoch 3/4"):
        bv.fit(model, X[:300], epochs=4, batch_size=100, rng=0, on_epoch=boom)
    # the end-of-epoch-2 snapshot is taken before on_epoch runs, i.e. before the corruption
    np.testing.assert_array_equal(model.params, snapshots[1])
    assert np.isfinite(model.params).all()


def test_fit_keyboard_interrupt_leaves_finite_parameters(X):
    model = small_model()

    def stop(info):
        if info.step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        bv.fit(model, X[:300], epochs=2, batch_size=50, rng=0, on_batch=stop)
    assert np.isfinite(model.params).all()


def test_fit_early_stopping_restores_best(X):
    model = small_model()
    snaps = {}
    # a learning rate this large makes validation loss bounce: early stopping must kick in
    hist = bv.fit(model, X[:300], epochs=40, batch_size=300, optimizer=bv.Adam(0.05), rng=0,
                  validation=X[300:400], early_stopping=2,
                  on_epoch=lambda info: snaps.__setitem__(info.epoch, model.params.copy()))
    assert hist.stopped_early and hist.epochs < 40
    assert hist.best_epoch == int(np.argmin(hist.val_total))
    assert hist.epochs == hist.best_epoch + 3
    np.testing.assert_array_equal(model.params, snaps[hist.best_epoch])


@pytest.mark.parametrize("kw,match", [
    (dict(epochs=0), "epochs"), (dict(batch_size=0), "batch_size"),
    (dict(batch_size=512), "batch size 512 is larger than the 300 training windows"),
    (dict(early_stopping=2), "validation"), (dict(epochs=1.5), "epochs"),
])
def test_fit_rejects_bad_config(X, kw, match):
    with pytest.raises(ConfigError, match=match):
        bv.fit(small_model(), X[:300], **kw)


@pytest.mark.parametrize("data,match", [
    (np.zeros((0, 20), np.float32), "empty"), (np.zeros((10, 19), np.float32), r"\(n, 20\)"),
    (np.full((10, 20), np.nan), "NaN"), (np.zeros(20), r"\(n, 20\)"),
])
def test_fit_rejects_bad_data(data, match):
    with pytest.raises(InputError, match=match):
        bv.fit(small_model(), data, batch_size=1)


def test_fit_rejects_bad_validation(X):
    with pytest.raises(InputError, match="validation"):
        bv.fit(small_model(), X[:100], batch_size=10, validation=X[:10, :5])


def test_fit_real_window_set_equals_its_array():
    data = pytest.importorskip("betavae_np.data")
    df = data.load_sample().iloc[:800]
    ws = data.Windower(window=8, lookback=32).windows(df)
    train, val = ws.subset(0, 500), ws.subset(500, None)
    a, b = small_model(d=ws.shape[1], latent=3), small_model(d=ws.shape[1], latent=3)
    ha = bv.fit(a, train, epochs=2, batch_size=64, rng=5, validation=val)
    hb = bv.fit(b, train.array(), epochs=2, batch_size=64, rng=5, validation=val.array())
    np.testing.assert_array_equal(a.params, b.params)
    assert ha.val_total == hb.val_total


def test_fit_noise_is_standard_normal_and_fresh_each_step(X):
    model = small_model()
    seen = []
    forward = model.forward_train

    def spy(ws, xb, eps):
        seen.append(eps.copy())
        return forward(ws, xb, eps)

    model.forward_train = spy
    bv.fit(model, X[:1000], epochs=2, batch_size=100, rng=0)
    eps = np.concatenate(seen)
    assert eps.dtype == np.float32 and eps.shape == (2000, 6)
    assert abs(eps.mean()) < 0.05 and abs(eps.std() - 1.0) < 0.05      # not U(-1, 1): std 0.577
    assert abs(np.mean(np.abs(eps) > 1.0) - 0.3173) < 0.03            # N(0,1) tail mass
    assert not np.array_equal(seen[0], seen[1])


def test_fit_updates_every_parameter(X):
    model = small_model()
    before = {k: v.copy() for k, v in model.named_parameters().items()}
    bv.fit(model, X[:500], epochs=1, batch_size=100, rng=0)
    for name, value in model.named_parameters().items():
        assert not np.array_equal(value, before[name]), f"{name} was not updated"


def test_fit_one_step_equals_adam_on_exact_gradient(X):
    """One full-batch step of fit == shuffle, eps ~ N(0,1) from the same rng, Adam on loss_and_grad."""
    Xs = X[:200].astype(np.float64)
    a = small_model(dtype="float64")
    ref = small_model(dtype="float64")
    bv.fit(a, Xs, epochs=1, batch_size=200, optimizer=bv.Adam(1e-2), schedule=S.Constant(3.0), rng=11)
    rng = np.random.default_rng(11)
    perm = np.arange(200, dtype=np.int64)
    rng.shuffle(perm)
    eps = rng.standard_normal((200, 6), dtype=np.float64)
    _, grads = ref.loss_and_grad(Xs[perm], eps, 3.0)
    flat = small_model(dtype="float64")           # scatter the named gradients into a flat buffer
    for name, view in flat.named_parameters().items():
        view[...] = grads[name]
    g = flat.params.copy()
    bv.Adam(1e-2).step(ref.params, g)
    np.testing.assert_allclose(a.params, ref.params, rtol=1e-9, atol=1e-12)


def test_fit_passes_scheduled_weight_to_backward(X):
    model = small_model()
    weights, kls = [], []
    forward, backward = model.forward_train, model.backward_train

    def fspy(ws, xb, eps):
        r, k = forward(ws, xb, eps)
        kls.append(k)
        return r, k

    def bspy(ws, w):
        weights.append(w)
        return backward(ws, w)

    model.forward_train, model.backward_train = fspy, bspy
    sch = S.Capacity(gamma=5.0, c_max=4.0, ramp=0.5)
    bv.fit(model, X[:400], epochs=2, batch_size=50, rng=0, schedule=sch)
    assert len(weights) == 16
    for step, (w, k) in enumerate(zip(weights, kls)):
        assert w == (5.0 if k > sch.capacity(step, 16) else -5.0)
    assert {5.0, -5.0} <= set(weights)


@pytest.mark.parametrize("B", [16, 32, 33])
def test_fit_step_gradients_on_standard_size_match_naive_backward(B):
    # the standard-size layers take the transposed dX path for B <= 32 (see nn/model.py)
    from naive import ref_vae_loss_and_grad
    cfg = bv.VAEConfig(n_input=160, hidden=(128, 64), n_latent=8, activation="tanh", dtype="float64")
    model = bv.BetaVAE(cfg, rng=0)
    rng = np.random.default_rng(1)
    X, eps = rng.random((B, 160)), rng.standard_normal((B, 8))
    ws = model.workspace(B)
    model.forward_train(ws, X, eps)
    model.backward_train(ws, 4.0)
    named = model.named_parameters()
    *_, g_ref, _ = ref_vae_loss_and_grad(named, X, eps, 4.0, "tanh", 2)
    for name, g in model.named_gradients().items():
        np.testing.assert_allclose(g, g_ref[name], rtol=1e-10, atol=1e-12, err_msg=f"d{name}")
