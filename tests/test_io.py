"""Model files: exact round trip, atomic writes, and a ModelFileError for every broken file."""

from __future__ import annotations

import json

import numpy as np
import pytest

import betavae_np as bv
from betavae_np import io as bvio
from betavae_np.exceptions import InputError, ModelFileError


def model(dtype="float32", seed=0):
    m = bv.BetaVAE(bv.VAEConfig(n_input=12, hidden=(8, 4), n_latent=3, activation="tanh",
                                dtype=dtype), rng=seed)
    m.params[:] = np.random.default_rng(seed).normal(size=m.params.size).astype(dtype)
    return m


def write_npz(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def write_npy(path, array):
    with open(path, "wb") as f:
        np.save(f, array)


def header_of(path):
    with np.load(path, allow_pickle=False) as z:
        return json.loads(z["header"].tobytes()), z["params"].copy()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_load_round_trip_exact(tmp_path, dtype):
    m = model(dtype)
    m.metadata = {"source": "sample", "loss": np.float32(1.5), "dims": np.arange(3),
                  "nested": {"t": (1, 2)}}
    path = bv.save(m, tmp_path / "m.npz")
    assert path == tmp_path / "m.npz"
    r = bv.load(path)
    assert r.config == m.config and r.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(r.params, m.params)
    assert r.metadata == {"source": "sample", "loss": 1.5, "dims": [0, 1, 2], "nested": {"t": [1, 2]}}
    X = np.random.default_rng(1).normal(size=(5, 12)).astype(dtype)
    for a, b in zip(r.encode(X), m.encode(X)):
        np.testing.assert_array_equal(a, b)


def test_save_header_contents(tmp_path):
    m = model()
    path = bv.save(m, tmp_path / "m.npz")
    header, params = header_of(path)
    assert header["format"] == "betavae-np" and header["format_version"] == 2  # 2: typed records beside metadata
    assert header["package_version"] == bv.__version__ and header["dtype"] == "float32"
    assert header["config"] == m.config.to_dict()
    assert header["parameters"][0] == ["enc.0.W", [12, 8]]
    assert [p[0] for p in header["parameters"]] == list(m.named_parameters())
    np.testing.assert_array_equal(params, m.params)


def test_save_file_has_umask_permissions(tmp_path):
    import os
    mask = os.umask(0o022)
    try:
        path = bv.save(model(), tmp_path / "m.npz")
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_save_uses_exact_path(tmp_path):
    path = bv.save(model(), tmp_path / "model.bin")
    assert path.exists() and not (tmp_path / "model.bin.npz").exists()
    assert bv.load(path).config.n_input == 12


def test_save_overwrites_atomically_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    old = model(seed=0)
    bv.save(old, path)
    before = path.read_bytes()

    def partial_savez(f, **arrays):
        f.write(b"PK\x03\x04 partial garbage")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bvio.np, "savez", partial_savez)
    with pytest.raises(ModelFileError, match="No space left"):
        bv.save(model(seed=1), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]   # temp file removed


def test_save_keyboard_interrupt_removes_temp(tmp_path, monkeypatch):
    def interrupted(f, **arrays):
        f.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(bvio.np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        bv.save(model(), tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


def test_save_rejects_unserialisable_metadata_and_keeps_old_file(tmp_path):
    path = tmp_path / "m.npz"
    bv.save(model(), path)
    before = path.read_bytes()
    m = model(seed=2)
    m.metadata = {"when": object()}
    with pytest.raises(InputError, match=r"metadata\['when'\] is a object"):
        bv.save(m, path)
    assert path.read_bytes() == before and len(list(tmp_path.iterdir())) == 1


def test_save_missing_directory(tmp_path):
    with pytest.raises(ModelFileError, match="cannot write"):
        bv.save(model(), tmp_path / "nope" / "m.npz")


@pytest.fixture
def good_file(tmp_path):
    return bv.save(model(), tmp_path / "good.npz")


def _rewrite(path, header=None, params=None):
    h, p = header_of(path)
    h = h if header is None else header(h)
    p = p if params is None else params(p)
    write_npz(path, header=np.frombuffer(json.dumps(h).encode(), np.uint8), params=p)
    return path


CORRUPTIONS = {
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "truncated"),
    "empty": (lambda p: p.write_bytes(b""), "truncated"),
    "not a zip": (lambda p: p.write_text("hello, I am a CSV\n1,2,3\n"), "truncated or not"),
    "bare npy": (lambda p: write_npy(p, np.zeros(3)), "bare .npy"),
    "foreign npz": (lambda p: write_npz(p, weights=np.zeros(3)), "not a betavae-np model file"),
    "pickled header": (lambda p: write_npz(p, header=np.array([{"a": 1}], dtype=object),
                                           params=np.zeros(3)), "truncated or not"),
    "header not json": (lambda p: write_npz(p, header=np.frombuffer(b"\xff{", np.uint8),
                                            params=np.zeros(3)), "corrupt header"),
    "wrong format tag": (lambda p: _rewrite(p, header=lambda h: {**h, "format": "other"}),
                         "format tag"),
    "newer version": (lambda p: _rewrite(p, header=lambda h: {**h, "format_version": 3}),
                      "format version 3, newer"),
    "bad config": (lambda p: _rewrite(p, header=lambda h: {**h, "config": {**h["config"], "n_latent": 0}}),
                   "invalid config"),
    "wrong shapes": (lambda p: _rewrite(p, header=lambda h: {**h, "parameters": h["parameters"][:-1]}),
                     "do not match"),
    "wrong count": (lambda p: _rewrite(p, params=lambda a: a[:-1]), "parameters, its config needs"),
    "wrong dtype": (lambda p: _rewrite(p, params=lambda a: a.astype(np.float64)), "float64"),
    "non-finite": (lambda p: _rewrite(p, params=lambda a: np.where(np.arange(a.size) == 3, np.nan, a)
                                      .astype(a.dtype)), "non-finite"),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_load_corrupt_file_raises_model_file_error(good_file, case):
    corrupt, match = CORRUPTIONS[case]
    corrupt(good_file)
    with pytest.raises(ModelFileError, match=match) as err:
        bv.load(good_file)
    assert "good.npz" in str(err.value)


def test_load_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        bv.load(tmp_path / "absent.npz")


def test_load_directory(tmp_path):
    with pytest.raises(ModelFileError, match="directory"):
        bv.load(tmp_path)


def test_jsonable_rejects_non_string_keys():
    with pytest.raises(InputError, match="non-string key"):
        bvio.jsonable({1: "a"})
    with pytest.raises(InputError, match="dtype"):
        bvio.jsonable(np.array(["a"]))
