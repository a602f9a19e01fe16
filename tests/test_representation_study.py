"""examples/representation_study.py: its measures on constructed data, and one quick run end to end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from examples_loader import load_example
from test_universe import write_csv

import betavae_np as bv


@pytest.fixture(scope="module")
def study():
    return load_example("representation_study")


def test_linearity_is_the_r2_of_a_regression_on_the_scores(study):
    rng = np.random.default_rng(0)
    pcs = rng.standard_normal((500, 4))
    exact = pcs @ np.array([1.0, -2.0, 0.5, 0.0]) + 3.0
    noise = rng.standard_normal(500)
    half = pcs[:, 0] + noise                       # R^2 = var(pc0) / (var(pc0) + var(noise)) ~ 1/2
    r2 = study.linearity(np.stack([exact, noise, half], axis=1), pcs)
    assert r2[0] == pytest.approx(1.0, abs=1e-12)
    assert r2[1] < 0.05
    ref = np.corrcoef(half, pcs[:, 0])[0, 1] ** 2    # one regressor carries it all: R^2 = corr^2 (about)
    assert r2[2] == pytest.approx(ref, abs=0.02)


def test_best_distinct_maximises_the_smallest_rho_not_greedily(study):
    # latent 0 is best for both families 0 and 1; greedy (family 0 first) would leave family 1 with 0.2
    rho = np.array([[0.9, 0.8, 0.0],
                     [0.7, 0.2, 0.0],
                     [0.0, 0.0, 0.6]])
    best, pick = study._best_distinct(rho, [[0], [1], [2]])
    assert best == pytest.approx(0.6) and pick == [1, 0, 2]


def test_alignment_finds_each_family_on_its_own_latent(study):
    rng = np.random.default_rng(1)
    n = 600
    vol, trend, volume = rng.standard_normal((3, n))
    names = ["rsi_14", "atr_14", "obv_slope", "sma20_slope", "close_sma50", "realised_vol", "volume_z",
             "momentum", "body_abs", "volume_level"]
    ind = pd.DataFrame({k: rng.standard_normal(n) for k in names})
    ind["realised_vol"], ind["momentum"], ind["volume_level"] = vol, trend, volume
    codes = np.stack([vol + 0.1 * rng.standard_normal(n), -trend, volume, rng.standard_normal(n)], axis=1)
    groups = np.repeat(["A", "B"], n // 2)
    active = np.array([True, True, True, False])
    out = study.alignment(codes, ind, groups, active)
    for kind in ("pooled", "ts"):
        cover = out[kind]["cover"]
        assert cover["volatility"] > 0.95 and cover["trend"] > 0.95 and cover["volume"] > 0.95
        assert cover["shape"] < 0.2
        assert out[kind]["distinct"] > 0.95 and out[kind]["distinct_latents"] == [0, 1, 2]
        assert out[kind]["best"][1]["indicator"] == "momentum" and out[kind]["best"][1]["rho"] < -0.95
    merged = out["pooled"]
    # one latent carrying volatility and volume: each family covered, no distinct assignment above 0.2
    both = study.alignment(np.stack([vol + volume, -trend, rng.standard_normal(n)], axis=1), ind, groups,
                           np.array([True, True, True]))["pooled"]
    assert both["cover"]["volatility"] > 0.6 and both["cover"]["volume"] > 0.6
    assert both["distinct"] < 0.2 < merged["distinct"]


def test_study_indicators_are_causal(study):
    df = bv.data.load_sample().iloc[:600]
    ends = df.index[300:320]
    a = study.study_indicators(df, ends, 32, 128)
    later = df.copy()
    later.iloc[320:, :] *= 1.7                      # change every candle after the last end
    b = study.study_indicators(later, ends, 32, 128)
    pd.testing.assert_frame_equal(a, b)
    assert {"momentum", "body_abs", "volume_level"} <= set(a.columns)
    c = df["close"].to_numpy()
    i = df.index.get_loc(ends[0])
    assert a["momentum"].iloc[0] == pytest.approx(np.log(c[i] / c[i - 32]))


@pytest.mark.slow
def test_quick_run_on_a_small_universe(study, tmp_path):
    pytest.importorskip("sklearn")
    df = bv.data.load_sample()
    for k in range(6):                              # six "symbols": slices of the sample, same hours
        part = df.iloc[1000 * k:1000 * k + 2500].copy()
        part.index = df.index[:2500]
        write_csv(tmp_path / f"S{k}USDT_1h.csv", part)
    out = tmp_path / "rs.json"
    study.main(["--quick", "--features", "minmax,both", "--recon", "gaussian", "--betas", "1",
                "--universe", str(tmp_path), "--out", str(out)])
    runs = json.loads(out.read_text())["runs"]
    assert set(runs) == {"minmax|gaussian|1|0", "both|gaussian|1|0"}
    for r in runs.values():
        for where in ("univ", "sample"):
            assert 0 < r[where]["pca_r2"] <= 1 and r[where]["windows"] > 0
            assert len(r[where]["pca_linearity"]) == 8
        assert set(r["sample"]["ts_ic"]["model"]) == {"1", "4", "24"}
