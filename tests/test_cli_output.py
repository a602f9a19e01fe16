"""Where command output goes: plot files and formats, closed pipes, --at beyond the data."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from click.testing import CliRunner

import betavae_np as bv
from betavae_np.cli import main

SMALL = ["--window", "8", "--lookback", "16", "--latent", "2", "--hidden", "8", "--batch-size", "64",
         "--epochs", "1", "--quiet"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    df = bv.data.load_sample().iloc[:600]
    csv = folder / "btc.csv"
    out = df.copy()
    out.insert(0, "timestamp_ms", bv.data.index_to_ms(df.index))
    out.to_csv(csv, index=False)
    r = run("train", "BTCUSDT", "--source", csv, *SMALL, "--out", folder / "m.npz")
    assert r.exit_code == 0, r.output
    return folder / "m.npz"


# -- traverse --plot: the extension picks the format ----------------------------------------------------
def test_traverse_plot_without_extension_writes_png_with_suffix(model_file, tmp_path):
    r = run("traverse", model_file, "--plot", tmp_path / "x")
    assert r.exit_code == 0, r.output
    assert sorted(os.listdir(tmp_path)) == ["x.png"]  # no 0-byte 'x', no hidden temp file
    assert (tmp_path / "x.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {tmp_path / 'x.png'}" in r.stdout


@pytest.mark.parametrize("name,magic", [("t.svg", b"<?xml"), ("T.PDF", b"%PDF"), ("t.jpg", b"\xff\xd8")])
def test_traverse_plot_format_follows_extension(name, magic, model_file, tmp_path):
    r = run("traverse", model_file, "--plot", tmp_path / name, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["plot"] == str(tmp_path / name)
    assert (tmp_path / name).read_bytes()[: len(magic)] == magic
    assert os.listdir(tmp_path) == [name]


def test_traverse_plot_unknown_extension_refused_before_any_work(tmp_path):
    bad_model = tmp_path / "broken.npz"
    bad_model.write_bytes(b"not a model")  # the plot name is checked before the model is even read
    r = run("traverse", bad_model, "--plot", tmp_path / "x.foo")
    assert r.exit_code == 2, r.output
    assert "--plot" in r.stderr and ".foo" in r.stderr
    for fmt in ("png", "pdf", "svg"):
        assert fmt in r.stderr
    assert "broken.npz" not in r.stderr and "Traceback" not in r.output
    assert sorted(os.listdir(tmp_path)) == ["broken.npz"]


# -- a reader that goes away (`| head -3`) -----------------------------------------------------------------
@pytest.mark.parametrize("args", [["evaluate", "MODEL"], ["traverse", "MODEL", "--json"], ["--help"],
                                  ["train", "--help"]])
def test_closed_stdout_pipe_ends_quietly(args, model_file):
    """`betavae-np evaluate ... | head -3` printed 'Error: [Errno 32] Broken pipe'."""
    cmd = [sys.executable, "-m", "betavae_np", *[str(model_file) if a == "MODEL" else a for a in args]]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the command writes anything
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "Broken pipe" not in err and "Traceback" not in err and "Exception ignored" not in err, err
    assert proc.returncode in (0, 1)


# -- --at beyond the data --------------------------------------------------------------------------------
def test_traverse_at_beyond_the_data_is_refused_in_one_sentence(model_file):
    r = run("traverse", model_file, "--at", "2030-01-01")
    assert r.exit_code == 1, r.output
    last = bv.data.load_sample().index[599]  # the model's CSV holds the sample's first 600 candles
    assert "beyond the data" in r.stderr and last.isoformat() in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.output


def test_traverse_at_inside_the_last_candle_uses_the_last_window(model_file):
    last = bv.data.load_sample().index[599]
    r = run("traverse", model_file, "--at", (last + pd.Timedelta(minutes=59)).isoformat(), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["reference_end_time"] == last.isoformat()
