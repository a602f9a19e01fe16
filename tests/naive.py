"""Slow, obviously correct plain-NumPy references for every kernel (``ref_*``).

Tests compare the compiled kernels (``comp``) against these (``ref``). Keep each function short and
written straight from the math; no Numba here.
"""

from __future__ import annotations

import numpy as np


# --- CORE-TRAIN: optimiser and schedules ----------------------------------------------------------

def ref_adam_step(params, m, v, grads, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                  clip_norm=None):
    """AdamW step ``t`` (from 1) written from the paper in float64; returns new (params, m, v, norm)."""
    p, m, v, g = (np.asarray(a, dtype=np.float64) for a in (params, m, v, grads))
    b1, b2 = betas
    norm = float(np.sqrt(np.sum(g * g)))
    if clip_norm is not None and norm > clip_norm:
        g = g * (clip_norm / norm)
    p = p * (1.0 - lr * weight_decay)
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g ** 2
    m_hat = m / (1 - b1 ** t)
    v_hat = v / (1 - b2 ** t)
    p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p, m, v, norm


def ref_beta(name, step, total, beta=1.0, warmup=0.2, cycles=4, ratio=0.5):
    """Beta at 0-based optimisation ``step`` of ``total``, straight from each schedule's formula."""
    if name == "constant":
        return beta
    if name == "linear":
        w = warmup * total
        return beta if w == 0 or step >= w else beta * step / w
    if name == "cyclical":
        period = total / cycles
        tau = (step - period * np.floor(step / period)) / period
        return beta if tau >= ratio else beta * tau / ratio
    if name == "warmup":
        w = warmup * total
        if step < w:
            return 0.0
        last = total - 1
        return beta if last <= w else beta * (step - w) / (last - w)
    raise ValueError(name)


# --- windows (DATA-WINDOWS) ----------------------------------------------------------------------
def ref_windows(values, window, lookback, features, log_volume=True, ends=None, none=False):
    """Causally normalised windows straight from the definition (loops and np.min over slices).

    values (n, F) raw feature values in ``features`` order; returns (len(ends), window*F) float32,
    rows for every end t >= lookback-1 (or the given ``ends``).
    """
    x = np.array(values, dtype=np.float64)
    feats = list(features)
    if "volume" in feats and log_volume:
        x[:, feats.index("volume")] = np.log1p(x[:, feats.index("volume")])
    price = [i for i, f in enumerate(feats) if f in ("open", "high", "low", "close")]
    vol = [i for i, f in enumerate(feats) if f == "volume"]
    need = window if none else lookback
    if ends is None:
        ends = range(need - 1, x.shape[0])
    rows = []
    for t in ends:
        win = x[t - window + 1:t + 1]
        past = x[max(0, t - lookback + 1):t + 1]
        row = np.empty_like(win)
        for cols in (price, vol):
            if not cols:
                continue
            lo, hi = np.min(past[:, cols]), np.max(past[:, cols])
            if none:
                row[:, cols] = win[:, cols]
            elif hi > lo:
                row[:, cols] = np.clip((win[:, cols] - lo) * (1.0 / (hi - lo)), 0.0, 1.0)
            else:
                row[:, cols] = 0.5
        rows.append(row.reshape(-1))
    return np.array(rows, dtype=np.float32).reshape(len(rows), window * len(feats))


def ref_rolling_minmax(x, lookback):
    """(min, max) of x[t-lookback+1 .. t] for every t (shorter at the start)."""
    x = np.asarray(x, dtype=np.float64)
    lo = np.array([x[max(0, t - lookback + 1):t + 1].min() for t in range(x.size)])
    hi = np.array([x[max(0, t - lookback + 1):t + 1].max() for t in range(x.size)])
    return lo, hi


def ref_return_features(ohlcv):
    """(n, 6) return features of each candle straight from the definition (row 0: zeros)."""
    o, h, l, c, v = (np.asarray(ohlcv, dtype=np.float64)[:, k] for k in range(5))
    x = np.zeros((o.size, 6))
    rng = h - l
    safe = np.where(rng > 0, rng, 1.0)
    x[1:, 0] = np.log(c[1:] / c[:-1])
    x[1:, 1] = np.log(h[1:] / l[1:])
    x[1:, 2] = np.where(rng > 0, (c - o) / safe, 0.0)[1:]
    x[1:, 3] = np.where(rng > 0, (h - np.maximum(o, c)) / safe, 0.0)[1:]
    x[1:, 4] = np.where(rng > 0, (np.minimum(o, c) - l) / safe, 0.0)[1:]
    x[1:, 5] = np.log1p(v[1:])
    return x


def ref_return_windows(ohlcv, window, warmup, half_life=500.0, clip=5.0):
    """float64 returns windows of one gap-free series: EWMA statistics seeded from the warm-up.

    The window ending at t (t >= warmup - 1) z-scores candles t-window+1..t by the mean and sd at t.
    """
    x = ref_return_features(ohlcv)
    a = 1.0 - 2.0 ** (-1.0 / half_life)
    rows = []
    mean = var = None
    for t in range(warmup - 1, x.shape[0]):
        if t == warmup - 1:
            seed = x[1:warmup]
            mean, var = seed.mean(0), seed.var(0)
        else:
            d = x[t] - mean
            var = (1 - a) * (var + a * d * d)
            mean = mean + a * d
        sd = np.sqrt(var)
        z = np.where(sd > 0, (x[t - window + 1:t + 1] - mean) / np.where(sd > 0, sd, 1.0), 0.0)
        rows.append(np.clip(z, -clip, clip).reshape(-1))
    return np.array(rows)


# --- CORE-MODEL: dense layers, VAE heads, reconstruction, the whole VAE ---------------------------
ACT_CODES = {"identity": 0, "relu": 1, "tanh": 2, "elu": 3, "leaky_relu": 4}


def ref_act(u, name):
    """Activation of the pre-activation ``u``."""
    if name == "relu":
        return np.maximum(u, 0.0)
    if name == "tanh":
        return np.tanh(u)
    if name == "elu":
        return np.where(u > 0, u, np.expm1(np.minimum(u, 0.0)))
    if name == "leaky_relu":
        return np.where(u > 0, u, 0.01 * u)
    return u.copy()


def ref_act_grad(u, name):
    """Derivative of the activation at the pre-activation ``u``."""
    if name == "relu":
        return (u > 0).astype(u.dtype)
    if name == "tanh":
        return 1.0 - np.tanh(u) ** 2
    if name == "elu":
        return np.where(u > 0, 1.0, np.exp(np.minimum(u, 0.0)))
    if name == "leaky_relu":
        return np.where(u > 0, 1.0, 0.01)
    return np.ones_like(u)


def ref_bias_act(Y, b, name):
    """``act(Y + b)``."""
    return ref_act(Y + b, name)


def ref_act_backward_bias(dA, U, name):
    """Gradient w.r.t. the pre-activation ``U`` and the bias: ``(dA * act'(U), sum_rows)``."""
    dU = dA * ref_act_grad(U, name)
    return dU, dU.sum(axis=0)


def ref_heads_forward(H, hb, eps):
    """Split ``H + hb`` into ``mu | logvar``; return ``z, s, mu, logvar, kl_per_dim`` (batch means)."""
    L = eps.shape[1]
    mu = H[:, :L] + hb[:L]
    logvar = H[:, L:] + hb[L:]
    s = np.exp(0.5 * logvar)
    z = mu + s * eps
    kl = -0.5 * (1.0 + logvar - mu ** 2 - np.exp(logvar))
    return z, s, mu, logvar, kl.mean(axis=0)


def ref_heads_backward(dz, mu, logvar, eps, beta, B):
    """``[dmu | dlogvar]`` of ``loss + beta * sum(kl) / B`` given ``dz`` (already batch-scaled)."""
    dmu = dz + beta * mu / B
    dlogvar = dz * eps * 0.5 * np.exp(0.5 * logvar) + beta * 0.5 * (np.exp(logvar) - 1.0) / B
    return np.concatenate([dmu, dlogvar], axis=1)


def ref_recon_forward(Y, b, X, scale):
    """``(2 * scale * (x_hat - x), mean_rows sum (x_hat - x)^2)`` with ``x_hat = Y + b``."""
    d = Y + b - X
    return 2.0 * scale * d, float((d ** 2).sum(axis=1).mean())


def ref_vae_forward(named, X, eps, activation, n_hidden):
    """Plain forward pass from named parameters; returns a dict of every intermediate."""
    f = {"X": X, "eps": eps, "enc_u": [], "enc_a": [], "dec_u": [], "dec_a": []}
    h = X
    for i in range(n_hidden):
        u = h @ named[f"enc.{i}.W"] + named[f"enc.{i}.b"]
        h = ref_act(u, activation)
        f["enc_u"].append(u)
        f["enc_a"].append(h)
    f["h_enc"] = h
    f["mu"] = h @ named["mu.W"] + named["mu.b"]
    f["logvar"] = h @ named["logvar.W"] + named["logvar.b"]
    f["z"] = f["mu"] + np.exp(0.5 * f["logvar"]) * eps
    h = f["z"]
    for i in range(n_hidden):
        u = h @ named[f"dec.{i}.W"] + named[f"dec.{i}.b"]
        h = ref_act(u, activation)
        f["dec_u"].append(u)
        f["dec_a"].append(h)
    f["h_dec"] = h
    f["x_hat"] = h @ named["out.W"] + named["out.b"]
    f["recon"] = ((X - f["x_hat"]) ** 2).sum(axis=1)
    f["kl_rows"] = -0.5 * (1.0 + f["logvar"] - f["mu"] ** 2 - np.exp(f["logvar"]))
    return f


def ref_vae_loss_and_grad(named, X, eps, beta, activation, n_hidden):
    """Loss terms and gradients (params and X) of ``mean(recon) + beta * mean(kl)``.

    Returns ``(total, recon, kl, kl_per_dim, grads, dX)`` with ``grads`` keyed like ``named``.
    """
    f = ref_vae_forward(named, X, eps, activation, n_hidden)
    B = X.shape[0]
    recon = f["recon"].mean()
    kl_per_dim = f["kl_rows"].mean(axis=0)
    kl = kl_per_dim.sum()
    g = {}
    dxh = 2.0 * (f["x_hat"] - X) / B
    dX = -dxh
    g["out.W"] = f["h_dec"].T @ dxh
    g["out.b"] = dxh.sum(axis=0)
    dh = dxh @ named["out.W"].T
    for i in reversed(range(n_hidden)):
        du = dh * ref_act_grad(f["dec_u"][i], activation)
        inp = f["dec_a"][i - 1] if i > 0 else f["z"]
        g[f"dec.{i}.W"] = inp.T @ du
        g[f"dec.{i}.b"] = du.sum(axis=0)
        dh = du @ named[f"dec.{i}.W"].T
    dz = dh
    s = np.exp(0.5 * f["logvar"])
    dmu = dz + beta * f["mu"] / B
    dlv = dz * eps * 0.5 * s + beta * 0.5 * (s ** 2 - 1.0) / B
    g["mu.W"] = f["h_enc"].T @ dmu
    g["mu.b"] = dmu.sum(axis=0)
    g["logvar.W"] = f["h_enc"].T @ dlv
    g["logvar.b"] = dlv.sum(axis=0)
    dh = dmu @ named["mu.W"].T + dlv @ named["logvar.W"].T
    for i in reversed(range(n_hidden)):
        du = dh * ref_act_grad(f["enc_u"][i], activation)
        inp = f["enc_a"][i - 1] if i > 0 else X
        g[f"enc.{i}.W"] = inp.T @ du
        g[f"enc.{i}.b"] = du.sum(axis=0)
        dh = du @ named[f"enc.{i}.W"].T
    dX = dX + dh
    return recon + beta * kl, recon, kl, kl_per_dim, g, dX


def central_diff(fun, a, h=1e-6):
    """Central differences of the scalar ``fun()`` w.r.t. every element of the array ``a``
    (changed in place and restored)."""
    g = np.empty(a.shape)
    for idx in np.ndindex(a.shape):
        old = a[idx]
        a[idx] = old + h
        fp = fun()
        a[idx] = old - h
        fm = fun()
        a[idx] = old
        g[idx] = (fp - fm) / (2 * h)
    return g


# --- METRICS: synthetic market, discrete mutual information, MIG, indicators ----------------------

def ref_synth_candles(e, u, z, params, bounds, logp0, vol_noise):
    """OHLCV (n, L, 5) of the synthetic market, candle by candle from the model in _kernels/synth.py."""
    n, L = e.shape
    out = np.zeros((n, L, 5))
    for i in range(n):
        x, lo = 0.0, logp0
        for t in range(L):
            s = int(np.searchsorted(bounds, t, side="right")) - 1
            drift, sigma, vol, phi, body = params[i, s]
            x = e[i, t] if t == 0 else phi * x + np.sqrt(1 - phi ** 2) * e[i, t]
            r = drift + sigma * x
            lc = lo + r
            w = abs(r) * (1 / body - 1)
            out[i, t] = [np.exp(lo), np.exp(max(lo, lc) + u[i, t] * w), np.exp(min(lo, lc) - (1 - u[i, t]) * w),
                         np.exp(lc), vol * np.exp(vol_noise * z[i, t] - vol_noise ** 2 / 2)]
            lo = lc
    return out


def ref_synth_windows(e, u, z, params, bounds, logp0, vol_noise, features, window, log_volume=True):
    """The window ending at the last candle of each synthetic series (n, window*F) float32: the
    candles of :func:`ref_synth_candles`, then :func:`ref_windows` with the whole series as lookback."""
    cols = [("open", "high", "low", "close", "volume").index(f) for f in features]
    candles = ref_synth_candles(e, u, z, params, bounds, logp0, vol_noise)
    L = e.shape[1]
    return np.concatenate([ref_windows(c[:, cols], window, L, features, log_volume, ends=[L - 1]) for c in candles])


def ref_mutual_info(x, y):
    """I(x; y) in nats of two label sequences, from the definition with dictionaries."""
    from collections import Counter

    n = len(x)
    pxy, px, py = Counter(zip(x, y)), Counter(x), Counter(y)
    return sum(c / n * np.log((c / n) / ((px[a] / n) * (py[b] / n))) for (a, b), c in pxy.items())


def ref_mig(codes, factors, n_bins=20):
    """MIG from its definition: bin each code on its histogram, MI with each factor, top-two gap / H."""
    binned = []
    for i in range(codes.shape[1]):
        c = codes[:, i]
        lo, hi = c.min(), c.max()
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, n_bins + 1)
        # bin b in 1..n_bins: the number of left edges (of the first n_bins edges) that are <= value
        binned.append([int(np.sum(edges[:-1] <= v)) for v in c])
    gaps = []
    for j in range(factors.shape[1]):
        f = list(factors[:, j])
        mi = sorted((ref_mutual_info(b, f) for b in binned), reverse=True) + [0.0]
        gaps.append((mi[0] - mi[1]) / ref_mutual_info(f, f))
    return float(np.mean(gaps))


def ref_wilder(x, n):
    """Wilder's average of x[1:], seeded with the plain mean of x[1..n] at index n; NaN before."""
    out = [np.nan] * len(x)
    if len(x) > n:
        a = sum(x[1:n + 1]) / n
        out[n] = a
        for t in range(n + 1, len(x)):
            a = a + (x[t] - a) / n
            out[t] = a
    return np.array(out)


def ref_indicators(o, h, l, c, v, window, lookback):
    """The seven indicators of analysis/proxies.py, one candle at a time from their formulas."""
    n = len(c)
    dc = [0.0] + [c[t] - c[t - 1] for t in range(1, n)]
    g = ref_wilder([max(d, 0.0) for d in dc], 14)
    ls = ref_wilder([max(-d, 0.0) for d in dc], 14)
    tr = [np.nan] + [max(h[t] - l[t], abs(h[t] - c[t - 1]), abs(l[t] - c[t - 1])) for t in range(1, n)]
    atr = ref_wilder(tr, 14)
    obv = np.cumsum([np.sign(d) * vv for d, vv in zip(dc, v)])
    out = np.full((n, 7), np.nan)
    for t in range(n):
        if not np.isnan(g[t]):
            out[t, 0] = 100.0 if ls[t] == 0 else 100 - 100 / (1 + g[t] / ls[t])
            out[t, 1] = atr[t] / c[t]
        if t >= window - 1:
            k = np.arange(window)
            out[t, 2] = np.polyfit(k, obv[t - window + 1:t + 1], 1)[0] / np.mean(v[t - window + 1:t + 1])
        if t >= 20:
            out[t, 3] = np.mean(c[t - 19:t + 1]) / np.mean(c[t - 20:t]) - 1
        if t >= 49:
            out[t, 4] = c[t] / np.mean(c[t - 49:t + 1]) - 1
        if t >= window:
            r = [np.log(c[s] / c[s - 1]) for s in range(t - window + 1, t + 1)]
            out[t, 5] = np.std(r, ddof=1)
        if t >= lookback - 1:
            lv = np.log1p(v[t - lookback + 1:t + 1])
            out[t, 6] = (lv[-1] - lv.mean()) / lv.std(ddof=1)
    return out


# --- ANALYSIS: traversal readings over many windows ------------------------------------------------

def ref_ohlcv_measures(w):
    """The six window measures of one decoded window ``w`` (window, 5: open high low close volume)."""
    o, h, l, c, v = (np.asarray(w[:, i], dtype=np.float64) for i in range(5))
    t = np.arange(len(c), dtype=np.float64)
    top = np.max([o, h, l, c], axis=0)
    rng = (top - np.min([o, h, l, c], axis=0)).sum()
    return {"level": c.mean(), "trend": np.polyfit(t, c, 1)[0], "volatility": (h - l).mean(),
            "volume": v.mean(), "momentum": c[-1] - c[0], "body": np.abs(c - o).sum() / rng if rng > 0 else 0.0}


def ref_window_reading(model, X, dims, span, steps, sd, measure_scale, window):
    """Per-window traversal effects and their summary, one window, one dimension, one step at a time.

    Returns ``(E, mean, spread, agreement, size)``: ``E[w][i][m]`` is measure m at +span minus at
    -span (in ``measure_scale`` units) on window w for dimension ``dims[i]``; the rest are dicts
    ``[i][m]`` of the mean over windows, the population sd, the share of windows whose effect has
    the mean's sign, and the mean absolute effect.
    """
    offsets = np.linspace(-span, span, steps)
    E = []
    for x in X:
        mu = model.encode(np.asarray(x)[None, :])[0][0].astype(np.float64)
        per_dim = []
        for j in dims:
            first = last = None
            for s, off in enumerate(offsets):
                z = mu.copy()
                z[j] = mu[j] + off * sd[j]
                m = ref_ohlcv_measures(model.decode(z[None, :].astype(model.dtype))[0].reshape(window, 5))
                if s == 0:
                    first = m
                if s == steps - 1:
                    last = m
            per_dim.append({k: (last[k] - first[k]) / measure_scale[k] for k in first})
        E.append(per_dim)
    mean, spread, agreement, size = [], [], [], []
    for i in range(len(dims)):
        mean.append({}), spread.append({}), agreement.append({}), size.append({})
        for k in E[0][i]:
            vals = [E[w][i][k] for w in range(len(E))]
            mu_k = sum(vals) / len(vals)
            mean[i][k] = mu_k
            spread[i][k] = (sum((v - mu_k) ** 2 for v in vals) / len(vals)) ** 0.5
            agreement[i][k] = sum(1 for v in vals if v * mu_k > 0) / len(vals)
            size[i][k] = sum(abs(v) for v in vals) / len(vals)
    return E, mean, spread, agreement, size


# --- losses: reconstruction likelihoods and the beta-TCVAE estimators -------------------------
LOG_2PI = np.log(2.0 * np.pi)


def ref_recon_gaussian(X, X_hat, logsigma):
    """Per-sample Gaussian negative log-likelihood ``-log N(x; x_hat, sigma^2)`` in nats (B,);
    ``logsigma`` a scalar or one value per feature."""
    ls = np.broadcast_to(np.asarray(logsigma, dtype=float), X.shape[1:])
    return (0.5 * (X - X_hat) ** 2 * np.exp(-2.0 * ls) + ls + 0.5 * LOG_2PI).sum(axis=1)


def ref_logsumexp(a, axis):
    m = a.max(axis=axis, keepdims=True)
    return np.squeeze(m, axis=axis) + np.log(np.exp(a - m).sum(axis=axis))


def ref_mss_weights(B, N):
    """The MSS importance weights straight from their definition (Chen et al. 2018, C.2):
    row i (the point z_i is evaluated at): its own component 1/N, the next row (cyclically)
    (N - M) / (N M), every other row 1/M, with M = B - 1."""
    M = B - 1
    W = np.full((B, B), 1.0 / M)
    for i in range(B):
        W[i, i] = 1.0 / N
        W[i, (i + 1) % B] = (N - M) / (N * M)
    return W


def ref_tc_terms(mu, logvar, z, N, estimator):
    """(MI, TC, dimension-wise KL) batch means by brute force over the full (B, B, L) array."""
    B, L = mu.shape
    # lq[i, k, j] = log N(z_ij; mu_kj, exp(logvar_kj))
    lq = -0.5 * (LOG_2PI + logvar[None] + (z[:, None, :] - mu[None]) ** 2 / np.exp(logvar[None]))
    if estimator == "mws" or B == 1:
        logw = np.full((B, B), -np.log(N * B))
    else:
        logw = np.log(ref_mss_weights(B, N))
    logqz = ref_logsumexp(logw + lq.sum(axis=2), axis=1)
    logprod = ref_logsumexp(logw[:, :, None] + lq, axis=1).sum(axis=1)
    condx = lq[np.arange(B), np.arange(B)].sum(axis=1)
    logpz = (-0.5 * (LOG_2PI + z ** 2)).sum(axis=1)
    return (condx - logqz).mean(), (logqz - logprod).mean(), (logprod - logpz).mean()



def ref_tc_grads(mu, logvar, z, N, estimator, alpha, beta, gamma):
    """d(alpha MI + beta TC + gamma KL_dim)/d[z | mu | logvar] (B, 3L), analytically and un-fused:
    the gradients of mean log q(z|x), mean log q(z), mean sum_j log q(z_j) and mean log p(z) each
    on its own over the full (B, B, L) arrays, then weighted (alpha, beta - alpha, gamma - beta,
    -gamma)."""
    B, L = mu.shape
    iv = np.exp(-logvar)[None]                          # (1, B, L) over components k
    diff = z[:, None, :] - mu[None]                     # (i, k, j)
    d = diff * iv
    dlv = 0.5 * (d * diff - 1.0)                        # dl/dlogvar_kj
    lq = -0.5 * (LOG_2PI + logvar[None] + diff * d)
    if estimator == "mws" or B == 1:
        logw = np.full((B, B), -np.log(N * B))
    else:
        logw = np.log(ref_mss_weights(B, N))
    a = logw + lq.sum(axis=2)
    P = np.exp(a - a.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)                   # (i, k) joint softmax
    r = logw[:, :, None] + lq
    R = np.exp(r - r.max(axis=1, keepdims=True))
    R /= R.sum(axis=1, keepdims=True)                   # (i, k, j) per-dimension softmax

    def means(W):                                       # gradients of mean_i sum_j LSE_k (.)
        return np.concatenate([-(W * d).sum(axis=1), (W * d).sum(axis=0),
                               (W * dlv).sum(axis=0)], axis=1) / B
    eye = np.eye(B)[:, :, None]                         # log q(z_i|x_i): the own component
    g_condx = means(np.broadcast_to(eye, (B, B, L)))
    g_qz = means(np.broadcast_to(P[:, :, None], (B, B, L)))
    g_prod = means(R)
    g_pz = np.concatenate([-z / B, np.zeros((B, 2 * L))], axis=1)
    return (alpha * g_condx + (beta - alpha) * g_qz + (gamma - beta) * g_prod
            - gamma * g_pz)

# --- universe window sets: scales kept as positions -----------------------------------------------

def ref_group_extrema(raw, group, ends, lookback, n_groups):
    """(lo, hi), each (len(ends), n_groups): min and max of ``raw[t-lookback+1 .. t, f]`` over the
    columns ``f`` of each group, for every window end ``t`` (straight from the definition)."""
    raw = np.asarray(raw, dtype=np.float64)
    group = np.asarray(group)
    lo = np.empty((len(ends), n_groups))
    hi = np.empty((len(ends), n_groups))
    for j, t in enumerate(ends):
        past = raw[t - lookback + 1:t + 1]
        for g in range(n_groups):
            lo[j, g] = past[:, group == g].min()
            hi[j, g] = past[:, group == g].max()
    return lo, hi


def ref_row_sum(x, lanes, chains=4):
    """The order :func:`betavae_np._kernels.rowsum.row_sum` promises, with plain loops: the
    full groups of ``lanes`` terms go in turn to ``chains`` accumulators (group ``q`` to
    accumulator ``q mod chains``), lane ``v`` of an accumulator adding its groups' ``v``-th
    terms in order; accumulators combine lane-wise as ``(0 + 1) + (2 + 3)``, the lanes are
    halved (lane i plus lane i + w/2 of the w left, down to one), then the tail one by one, all
    in the dtype of ``x``."""
    t = x.dtype.type
    n = x.shape[0]
    full = n // lanes * lanes
    acc = [[t(0.0)] * lanes for _ in range(chains)]
    for k in range(full):
        q, v = divmod(k, lanes)
        acc[q % chains][v] = t(acc[q % chains][v] + x[k])
    lane = [t(t(acc[0][v] + acc[1][v]) + t(acc[2][v] + acc[3][v])) for v in range(lanes)]
    while len(lane) > 1:
        w = len(lane) // 2
        lane = [t(lane[i] + lane[i + w]) for i in range(w)]
    s = lane[0]
    for k in range(full, n):
        s = t(s + x[k])
    return s
