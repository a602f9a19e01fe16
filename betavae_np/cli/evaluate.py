"""``betavae-np evaluate``: held-out reconstruction, KL, active units, and what the codes measure.

On real candles the codes are read against causal indicators and forward returns, beside PCA and
hand factors; on the synthetic market (``train --source synthetic``) disentanglement_lib's
supervised metrics are computed for the model and for PCA.
"""

from __future__ import annotations

import os
import time

import click

from ._common import bybit_options, emit_json, fmt, handle_errors, json_option, notice, render_table, source_options

#: An |IC| above this on hourly candles is treated as a look-ahead bug until proven otherwise.
IC_ALARM = 0.1


@click.command(short_help="Held-out error, active units, and the codes against indicators, returns, PCA.")
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False))
@source_options(None)
@bybit_options
@click.option("--no-measures", is_flag=True,
              help="Only reconstruction, KL and active units (no indicator, IC or disentanglement measures).")
@click.option("--quick", is_flag=True,
              help="Smaller samples for the synthetic market's supervised metrics (a fraction of the time; "
                   "rougher numbers).")
@json_option
@handle_errors
def evaluate(model_path, source, base_url, cache_dir, no_measures, quick, as_json):
    """Evaluate MODEL on the held-out (latest) windows of its data, or of --source.

    Reports reconstruction error against the mean-window baseline, KL per dimension, active units
    (dimensions whose posterior mean varies over the data), and warns when the model looks collapsed
    or beta looks too high.

    On real candles it then reads every code (the latent means, PCA with as many components fitted
    on the training windows, and four hand factors) against causal indicators (Spearman rho, the
    best indicator per code, the gap per indicator), forward 1/4/24-candle log returns (IC, ICIR,
    overlap-aware t, a permuted control) and over 4 consecutive periods (sign agreement). On the
    synthetic market (a model trained with --source synthetic) it computes MIG, DCI, SAP and the
    FactorVAE score for the model and for PCA instead (a minute or more; --quick for less).
    """
    from ..analysis.evaluate import evaluate as run_evaluate
    from ..io import load
    from ..workflow import evaluation_windows, windows_for_model

    model = load(model_path)
    if getattr(model.records, "universe", None) is not None:   # trained on many symbols
        from ._universe_report import evaluate_universe

        return evaluate_universe(model, model_path, source=source, base_url=base_url, cache_dir=cache_dir,
                                 as_json=as_json)
    df, windows = windows_for_model(model, source=source, base_url=base_url, cache_dir=cache_dir,
                                    on_notice=notice)
    held, part = evaluation_windows(model, windows)   # the recorded split says what is held out
    report = run_evaluate(model, held)
    out = report.to_dict()
    data = df.attrs.get("betavae_np", {})
    out.update(model=os.path.abspath(model_path), data=data, part=part,
               heldout_start=held.end_times[0].isoformat(), heldout_end=held.end_times[-1].isoformat())
    for w in report.warnings:
        click.echo(f"warning: {w}", err=True)
    synthetic = data.get("source") == "synthetic"
    if not no_measures:
        train = _training_windows(model, windows, part)
        if synthetic:
            out["supervised"] = _supervised(model, data, train, quick)
            if out["supervised"]["missing"]:
                click.echo(f"note: {out['supervised']['missing']}; DCI and SAP are left out.", err=True)
        else:
            from ..analysis.evaluate import real_data_measures

            out["measures"] = real_data_measures(model, df, train, held)
            for w in _ic_alarms(out["measures"]):
                click.echo(f"warning: {w}", err=True)
    if as_json:
        emit_json(out)
        return
    label = {"held-out": "held-out windows",
             "training": "training windows (the model was trained with --val-fraction 0: nothing was held out)",
             "all": "all windows (the model file records no train/validation split)"}[part]
    click.echo(f"{label}: {report.n} ({out['heldout_start'][:16]} .. {out['heldout_end'][:16]})")
    click.echo(f"reconstruction error {fmt(report.recon)} per window ({fmt(report.recon_per_value)} per value); "
               f"mean-window baseline {fmt(report.baseline)} ({report.baseline_kind}); R^2 {report.r2:.3f}")
    rows = [[j, fmt(kl), fmt(sd), "yes" if a else "no (collapsed)"]
            for j, (kl, sd, a) in enumerate(zip(report.kl_per_dim, report.stats.sd, report.stats.active))]
    click.echo(render_table(["dim", "KL (nats)", "sd of mu", "active"], rows,
                            title=f"latent dimensions ({'held-out' if part == 'held-out' else part + ' windows'}):"))
    click.echo(f"active dimensions: {report.n_active} of {model.config.n_latent}; total KL {fmt(report.kl)} nats")
    if "measures" in out:
        click.echo(_render_measures(out["measures"], report, part))
    if "supervised" in out:
        click.echo(_render_supervised(out["supervised"], data, quick))


def _training_windows(model, windows, part):
    """The windows the model was trained on (PCA is fitted on them), under its recorded split."""
    from ..records import records_of

    split = records_of(model).split
    if part == "held-out":
        return windows.split(split.val_fraction)[0]
    return windows


def _supervised(model, data, train, quick) -> dict:
    from ..analysis.evaluate import supervised_measures
    from ..records import records_of
    from ..sources import synthetic_market

    market = synthetic_market(data, records_of(model).windowing)
    t0 = time.perf_counter()
    how = ("--quick: smaller samples" if quick else
           "a minute or more, most of it DCI's boosted trees; --quick for less")
    click.echo(f"supervised metrics on the synthetic market (model and PCA; {how}):", err=True)

    def on_stage(rep, metric):
        click.echo(f"  {time.perf_counter() - t0:5.0f}s  {'PCA' if rep == 'pca' else rep}: {metric}", err=True)

    return supervised_measures(model, market, train, quick=quick, on_stage=on_stage)


def _ic_alarms(m: dict) -> list[str]:
    """A warning per |IC| above :data:`IC_ALARM` that noise does not explain, one note for the rest.

    A pooled IC over ``n`` overlapping h-candle returns has about ``n / h`` independent samples, so
    its noise is about ``1 / sqrt(n / h)``; a large IC within 3 of those is reported as noise.
    """
    out, noisy = [], []
    for rep, block in m["codes"].items():
        for r in block["ic"]:
            ic, k = r["ic"], r["n_nonoverlap"]
            if ic is None or ic != ic or abs(ic) <= IC_ALARM:
                continue
            if k > 3 and abs(ic) > 3.0 / (k - 1) ** 0.5:
                out.append(f"{r['code']} ({rep}) has IC {ic:+.3f} with the {r['horizon']}-candle forward return "
                           f"(t {r['t_nonoverlap']:+.1f} on {k} non-overlapping windows); above {IC_ALARM} on hourly "
                           "candles this is more likely look-ahead than signal: check the data before using it")
            else:
                noisy.append(f"{r['code']} {r['horizon']}")
    if noisy:
        out.append(f"{len(noisy)} IC(s) above {IC_ALARM} in size ({', '.join(noisy)}) are within 3 standard errors "
                   "of 0 given the independent forward returns in these windows: noise, not evidence of signal")
    return out


def _signed(v, digits=2) -> str:
    return "nan" if v is None or v != v else f"{v:+.{digits}f}"


def _render_measures(m: dict, report, part) -> str:
    codes = m["codes"]
    where = "held-out" if part == "held-out" else part
    lines = [f"\nwhat the codes measure on the {m['windows']} {where} windows (Spearman; baselines: PCA with "
             f"{m['pca']['components']} components fitted on the {m['train_windows']} training windows, and hand "
             f"factors):",
             f"reconstruction R^2: model {report.r2:.3f}, PCA "
             f"{1 - m['pca']['recon'] / report.baseline:.3f} (error {fmt(m['pca']['recon'])} per window)"]
    hs = m["horizons"]
    rows = []
    active = list(report.stats.active)
    for rep, block in codes.items():
        for j, name in enumerate(block["names"]):
            b, s = block["best"][name], block["stability"][name]
            act = ("yes" if active[j] else "no") if rep == "model" else "-"
            rows.append([name, act, b["indicator"], _signed(b["rho"]), fmt(s["sign_agreement"], 2),
                         *[fmt(s[f"ic_{h}_sign_agreement"], 2) for h in hs]])
    lines.append(render_table(["code", "active", "best indicator", "rho", "sign agrees",
                               *[f"IC{h} sign agrees" for h in hs]], rows,
                              title=f"\neach code's best indicator, and the share of {m['k']} consecutive periods "
                                    f"whose sign agrees:"))
    rows = []
    for ind in m["indicators"]:
        row = [ind]
        for rep in codes:
            g = codes[rep]["gap"][ind]
            row += [g["code"], _signed(g["rho"]), fmt(g["gap"], 2)]
        rows.append(row)
    head = ["indicator"] + [f"{t} {rep}" for rep in codes for t in ("best", "rho", "gap")]
    lines.append(render_table(head, rows, title="\neach indicator's best code per representation, and the gap "
                                                "to the second-best |rho| (MIG-like):"))
    rows = []
    for rep, block in codes.items():
        by = {(r["code"], r["horizon"]): r for r in block["ic"]}
        for name in block["names"]:
            row = [name]
            for h in hs:
                r = by[(name, h)]
                row += [_signed(r["ic"], 3), _signed(r["ic_mean"], 3), _signed(r["icir"]), _signed(r["t_nonoverlap"], 1)]
            rows.append(row)
    head = ["code"] + [f"{t} {h}" for h in hs for t in ("IC", "mean IC", "ICIR", "t")]
    n_per = max(r["n_periods"] for r in codes["model"]["ic"])
    lines.append(render_table(head, rows, title=f"\npredictive IC with the forward 1/4/24-candle log return (IC: all "
                                                f"windows; mean IC and ICIR over {n_per} periods of {m['period']} "
                                                f"windows; t on non-overlapping windows):"))
    ctl = [r for block in codes.values() for r in block["control"]]
    ics = [abs(r["ic"]) for r in ctl if r["ic"] == r["ic"]]
    ts = [abs(r["t_nonoverlap"]) for r in ctl if r["t_nonoverlap"] == r["t_nonoverlap"]]
    if ics:
        lines.append(f"permuted control (forward returns shuffled): max |IC| {max(ics):.3f}, max |t| {max(ts):.1f} "
                     f"over {len(ctl)} code-horizon pairs; {sum(t > 2 for t in ts)} with |t| > 2 "
                     f"(about {0.05 * len(ts):.1f} expected by chance)")
    return "\n".join(lines)


def _render_supervised(s: dict, data: dict, quick: bool) -> str:
    cols = [("MIG", "mig"), ("DCI-D", "dci_disentanglement"), ("DCI-C", "dci_completeness"),
            ("DCI-I", "dci_informativeness"), ("SAP", "sap"), ("FactorVAE", "factor_vae"),
            ("active", "factor_vae_active_dims")]
    rows = []
    for rep, label in (("model", "model"), ("pca", "PCA")):
        r = s[rep]
        rows.append([label] + [("-" if r[k] is None else str(r[k]) if isinstance(r[k], int) else f"{r[k]:.3f}")
                               for _, k in cols])
    sz = s["sizes"]
    title = (f"\nsupervised metrics on the synthetic market (seed {data.get('seed', 0)}; factors "
             f"{', '.join(s['factors'])}; {sz['num_train']:,}/{sz['num_test']:,} samples, FactorVAE "
             f"{sz['fv_num_train']:,}/{sz['fv_num_eval']:,} votes{', --quick' if quick else ''}; PCA with as "
             f"many components, fitted on the training windows):")
    text = render_table(["", *[c for c, _ in cols]], rows, title=title)
    if s["missing"]:
        text += f"\n{s['missing']}; DCI and SAP are left out."
    return text
