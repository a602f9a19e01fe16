"""Real-data measures: causal indicators, forward returns, ICs with a permuted control, baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import betavae_np as bv
from betavae_np.analysis.baselines import HAND_FACTORS, PCA, hand_factors
from betavae_np.analysis.ic import permuted_control, predictive_ic, stability
from betavae_np.analysis.proxies import (INDICATORS, forward_returns, indicator_frame, indicator_table,
                                         indicators, spearman)
from betavae_np.data import Windower
from betavae_np.exceptions import ConfigError
from betavae_np.synth import SyntheticMarket
from naive import ref_indicators


@pytest.fixture(scope="module")
def candles():
    return SyntheticMarket(seed=2).candles(3000, segment=300)


def _perturb_after(df, t, seed=0):
    """A copy of df whose candles after row t are replaced by other valid candles."""
    other = SyntheticMarket(seed=seed + 11).candles(len(df), segment=100)
    out = df.copy()
    out.iloc[t + 1:] = other.iloc[t + 1:].to_numpy() * 1.7
    return out


def test_indicators_match_their_formulas(candles):
    df = candles.iloc[:400]
    got = indicator_frame(df, window=16, lookback=64)
    assert list(got.columns) == list(INDICATORS)
    ref = ref_indicators(*(df[k].to_numpy() for k in ("open", "high", "low", "close", "volume")), 16, 64)
    np.testing.assert_allclose(got.to_numpy(), ref, rtol=1e-9, atol=1e-12, equal_nan=True)


def test_indicators_and_codes_do_not_look_ahead(candles):
    t = 2000
    changed = _perturb_after(candles, t)
    a, b = indicator_frame(candles), indicator_frame(changed)
    # equal up to rounding (older numpy may sum a longer array in another order); look-ahead is not
    np.testing.assert_allclose(a.iloc[:t + 1].to_numpy(), b.iloc[:t + 1].to_numpy(), rtol=1e-12, atol=1e-15,
                               equal_nan=True)
    assert not np.allclose(a.iloc[t + 1:].to_numpy(), b.iloc[t + 1:].to_numpy(), equal_nan=True)
    ws_a, ws_b = Windower().windows(candles), Windower().windows(changed)
    keep = np.flatnonzero(ws_a.rows <= t)
    model = bv.BetaVAE(bv.VAEConfig(n_input=160, hidden=(16,), n_latent=3), rng=0)
    np.testing.assert_array_equal(model.encode(ws_a.gather(keep))[0], model.encode(ws_b.gather(keep))[0])
    hf_a, hf_b = hand_factors(candles, ws_a.end_times[keep]), hand_factors(changed, ws_b.end_times[keep])
    np.testing.assert_array_equal(hf_a.to_numpy(), hf_b.to_numpy())


def test_forward_returns_use_only_the_next_h_candles(candles):
    t, h = 1500, 4
    end = candles.index[[t]]
    base = forward_returns(candles, end, horizons=(h,)).iloc[0, 0]
    assert base == pytest.approx(np.log(candles.close.iloc[t + h] / candles.close.iloc[t]), abs=1e-15)
    later = _perturb_after(candles, t + h)
    assert forward_returns(later, end, horizons=(h,)).iloc[0, 0] == base
    earlier = candles.copy()
    earlier.iloc[:t] = earlier.iloc[:t].to_numpy() * 1.3
    assert forward_returns(earlier, end, horizons=(h,)).iloc[0, 0] == base
    moved = candles.copy()
    moved.iloc[t + h] = moved.iloc[t + h].to_numpy() * 1.1
    assert forward_returns(moved, end, horizons=(h,)).iloc[0, 0] != base
    assert np.isnan(forward_returns(candles, candles.index[-h:], horizons=(h,)).to_numpy()).all()


def test_spearman_matches_pandas_and_ignores_nan_rows():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 2)), rng.normal(size=(200, 1)) ** 3
    a[5, 0] = np.nan
    keep = ~np.isnan(a).any(axis=1)
    ref = pd.DataFrame(np.c_[a[keep], b[keep]]).corr(method="spearman").to_numpy()[:2, 2]
    np.testing.assert_allclose(spearman(a, b)[:, 0], ref, rtol=1e-12)


def test_indicator_table_finds_an_injected_indicator(candles):
    ws = Windower().windows(candles)
    ind = indicators(candles, ws.end_times)
    rng = np.random.default_rng(0)
    codes = np.c_[rng.normal(size=len(ws)), ind["rsi_14"] + rng.normal(0, 3, len(ws)), rng.normal(size=len(ws))]
    t = indicator_table(codes, ind)
    assert t["best"].loc["z1", "indicator"] == "rsi_14" and t["best"].loc["z1", "rho"] > 0.8
    assert t["gap"].loc["rsi_14", "latent"] == "z1" and t["gap"].loc["rsi_14", "gap"] > 0.7
    assert abs(t["rho"].loc["z0"]).max() < 0.1


def test_predictive_ic_finds_injected_signal_and_the_permuted_control_is_null(candles):
    ws = Windower().windows(candles)
    fwd = forward_returns(candles, ws.end_times, horizons=(1, 4))
    rng = np.random.default_rng(1)
    # a deliberately clairvoyant code (the test's own look-ahead) and a pure-noise code
    codes = np.c_[fwd["fwd_4"].fillna(0).to_numpy() + rng.normal(0, 0.02, len(ws)), rng.normal(size=len(ws))]
    ic = predictive_ic(codes, fwd, period=300)
    assert ic.loc[("z0", 4), "ic"] > 0.3 and ic.loc[("z0", 4), "t_nonoverlap"] > 5
    assert ic.loc[("z0", 4), "t_periods"] > 5 and ic.loc[("z0", 4), "n_periods"] == len(ws) // 300
    assert ic.loc[("z0", 4), "n_nonoverlap"] == int(np.sum(~np.isnan(fwd["fwd_4"].to_numpy()[::4])))
    assert abs(ic.loc[("z1", 4), "ic"]) < 0.06
    ctrl = permuted_control(codes, fwd, period=300, rng=0)
    assert ctrl["ic"].abs().max() < 0.06 and ctrl["ic_mean"].abs().max() < 0.06


def test_stability_sign_agreement(candles):
    ws = Windower().windows(candles)
    ind = indicators(candles, ws.end_times)
    rng = np.random.default_rng(2)
    codes = np.c_[-ind["realised_vol"].to_numpy(), rng.normal(size=len(ws))]
    st = stability(codes, ind, forward_returns(candles, ws.end_times), k=4)
    assert st.loc["z0", "indicator"] in ("realised_vol", "atr_14") and st.loc["z0", "rho"] < -0.8
    assert st.loc["z0", "sign_agreement"] == 1.0
    assert {"rho_p0", "rho_p3", "ic_24_sign_agreement"} <= set(st.columns)
    with pytest.raises(ConfigError):
        stability(codes, ind, k=1)


def test_pca_recovers_a_low_rank_structure():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 2)) @ rng.normal(size=(2, 12)) + 3.0
    p = PCA(2).fit(X)
    np.testing.assert_allclose(p.components_ @ p.components_.T, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(p.inverse_transform(p.transform(X)), X, atol=1e-9)
    ev = np.sort(np.linalg.eigvalsh(np.cov(X.T)))[::-1][:2]
    np.testing.assert_allclose(p.explained_variance_, ev, rtol=1e-9)
    with pytest.raises(ConfigError):
        PCA(0)


def test_hand_factors_match_their_formulas(candles):
    ws = Windower().windows(candles)
    hf = hand_factors(candles, ws.end_times)
    assert tuple(hf.columns) == HAND_FACTORS
    i = 500
    t = int(ws.rows[i])
    c = candles.close.to_numpy()
    assert hf.iloc[i]["past_return"] == pytest.approx(np.log(c[t] / c[t - 32]), abs=1e-14)
    assert hf.iloc[i]["last_return"] == pytest.approx(np.log(c[t] / c[t - 1]), abs=1e-14)
    assert hf.iloc[i]["volume_z"] == indicators(candles, ws.end_times).iloc[i]["volume_z"]
