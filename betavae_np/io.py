"""Model files: one ``.npz`` holding a JSON header and the flat parameter buffer; never pickle.

Layout of a file (``np.savez``, two arrays)::

    header  uint8 (k,)   UTF-8 JSON: {"format": "betavae-np", "format_version": 1,
                         "package_version", "config": VAEConfig.to_dict(),
                         "parameters": [[name, shape], ...], "dtype", "metadata"}
    params  dtype (P,)   model.params, the one flat buffer

Format version 2 adds ``records``: the typed context a trained model carries
(:class:`betavae_np.records.ModelRecords`: windowing, provenance, run, history, latent statistics,
window statistics, reference window, split), and leaves ``metadata`` to the user. Version 1 files
kept that context inside ``metadata``; :func:`load` reads them into the same records.

The header also names the parameter ``layout`` (:data:`LAYOUT`: the order of the tensors in the
flat buffer, see :mod:`betavae_np.nn.params`); files without it have that same layout. The loss a
model was trained with is the header's ``loss`` (:meth:`betavae_np.losses.Loss.to_dict`; absent in
older files: the default ``BetaVAE(recon="sse")``); a loss that learns sigma adds the parameter
``out.logsigma``.

Writes are atomic (:func:`atomic_path`, the package's one atomic writer): the file is written to a
temporary sibling and moved over the target with ``os.replace``, so a failure (or Ctrl-C) leaves
any previous file untouched. The exact path given is used (no ``.npz`` is appended, unlike
``np.savez`` on a file name).
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ._version import __version__
from .exceptions import BetaVAEError, ConfigError, InputError, ModelFileError

__all__ = ["save", "load", "FORMAT", "FORMAT_VERSION", "LAYOUT", "jsonable", "atomic_path",
           "check_writable"]

#: The ``format`` tag in every header.
FORMAT = "betavae-np"
#: The newest header layout this version writes and reads (1: context in ``metadata``;
#: 2: typed ``records`` beside the user's ``metadata``).
FORMAT_VERSION = 2
#: The flat parameter layout this version writes and reads: encoder layers, the fused
#: ``[mu | logvar]`` heads, decoder layers, output layer, then ``out.logsigma`` when learned.
LAYOUT = "enc-heads-dec-out/1"


def jsonable(value: Any, where: str = "metadata") -> Any:
    """Return ``value`` with NumPy scalars/arrays and tuples turned into plain JSON types.

    Parameters
    ----------
    value : Any
        Nested dicts (string keys), lists, tuples, str, int, float, bool, None, NumPy scalars
        and arrays.
    where : str
        Name used in the error message (``metadata['train']['loss']``).

    Raises
    ------
    InputError
        For any other type (one sentence naming where it was found).
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, np.generic):
        return jsonable(value.item(), where)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise InputError(f"{where} is an array of dtype {value.dtype}, which a model file "
                             "cannot hold; use numbers or strings.")
        return value.tolist()
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise InputError(f"{where} has the non-string key {k!r}; JSON keys must be strings.")
            out[k] = jsonable(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise InputError(f"{where} is a {type(value).__name__}, which is not JSON-serialisable; "
                     "store numbers, strings, lists or dicts.")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _cannot(what: str, path, exc: OSError, error) -> BetaVAEError:
    return error(f"cannot write {what} {str(path)!r}: {exc.strerror or exc}.")


def check_writable(path: str | os.PathLike, what: str = "file", *, error=BetaVAEError) -> Path:
    """Fail now, naming ``path``, when a file could not be written there later.

    Creates and removes a temporary file beside ``path`` (the way :func:`atomic_path` will write),
    so it also catches read-only file systems and permissions that ``os.access`` misreports for root.

    Raises
    ------
    error
        ``"cannot write <what> '<path>': <reason>."``: missing folder, a folder at ``path``,
        no permission, read-only file system.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise error(f"cannot write {what} {str(path)!r}: it is a directory.")
    if not folder.is_dir():
        raise error(f"cannot write {what} {str(path)!r}: folder {str(folder)!r} does not exist.")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise _cannot(what, path, exc, error) from None
    os.close(fd)
    os.unlink(tmp)
    return path


@contextmanager
def atomic_path(path: str | os.PathLike, what: str = "file", *, error=BetaVAEError,
                hidden: bool = True, keep_suffix: bool = True) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success it is fsynced and renamed over ``path``.

    The package's one atomic writer (model files, the candle cache, CSV and plot outputs).

    Parameters
    ----------
    path : str or PathLike
        The destination; its folder must exist.
    what : str
        Named in errors (``"model file"``, ``"plot"``).
    error : type or None
        The BetaVAEError subclass raised when writing fails (its message names ``path``, never the
        temporary file); None re-raises the ``OSError`` itself (for callers that handle it).
    hidden : bool
        Temporary name ``.<name>.XXXX.tmp...`` (default) or ``<name>.XXXX.tmp...``.
    keep_suffix : bool
        End the temporary name with the target's suffix (``.tmp.png``), for writers that choose the
        format from it (matplotlib); else it ends in ``.tmp``.

    Notes
    -----
    On any exception (Ctrl-C included) the temporary file is removed and ``path`` is untouched;
    an ``OSError`` becomes ``error``, anything else propagates. The file gets the usual permissions
    (``0o666 & ~umask``, not mkstemp's 0600) and the rename is made durable with a folder fsync
    where the platform allows.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=("." if hidden else "") + path.name + ".",
                                   suffix=".tmp" + (path.suffix if keep_suffix else ""), dir=folder)
        os.close(fd)
    except OSError as exc:
        if error is None:
            raise
        raise _cannot(what, path, exc, error) from None
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and not isinstance(exc, BetaVAEError) and error is not None:
            raise _cannot(what, path, exc, error) from None
        raise
    try:  # make the rename itself durable
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _header(model) -> bytes:
    from .records import records_of

    params = model.named_parameters()
    spec = getattr(model, "loss_spec", None)
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "config": model.config.to_dict(),
        "parameters": [[name, list(a.shape)] for name, a in params.items()],
        "layout": LAYOUT,
        "loss": None if spec is None else jsonable(spec.to_dict(), "loss"),
        "dtype": np.dtype(model.dtype).name,
        "metadata": jsonable(getattr(model, "metadata", None) or {}),
        "records": jsonable(records_of(model).to_dict(), "records"),
    }
    return json.dumps(header, sort_keys=False).encode("utf-8")


def save(model, path: str | os.PathLike) -> Path:
    """Write ``model`` to ``path`` atomically.

    Parameters
    ----------
    model : BetaVAE
        The model; its config, flat parameters, typed ``records`` (when it has them) and the
        user's ``metadata`` (JSON-able) are stored.
    path : str or PathLike
        Destination, used exactly as given (conventionally ending in ``.npz``). Its directory
        must exist.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    InputError
        When ``model.metadata`` holds something JSON cannot represent (nothing is written).
    ModelFileError
        When the file cannot be written (the previous file, if any, is left intact).
    """
    path = Path(path)
    header = np.frombuffer(_header(model), dtype=np.uint8)
    params = np.ascontiguousarray(model.params)
    with atomic_path(path, "model file", error=ModelFileError) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, header=header, params=params)
    return path


def _read(path: Path) -> tuple[dict, np.ndarray]:
    name = str(path)
    if not path.exists():
        raise ModelFileError(f"model file {name!r} does not exist.")
    if path.is_dir():
        raise ModelFileError(f"model file {name!r} is a directory, not a file.")
    try:
        # our own handle: np.load(path) leaks its file when the file is empty (EOFError)
        with open(path, "rb") as f:
            z = np.load(f, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise ModelFileError(f"{name!r} is not a betavae-np model file (a bare .npy array, "
                                     "not an .npz archive).")
            with z:
                if "header" not in z.files or "params" not in z.files:
                    raise ModelFileError(f"{name!r} is not a betavae-np model file (no header/params "
                                         "arrays); was it written by bv.save?")
                raw = z["header"]
                params = z["params"]
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, EOFError, ValueError, OSError, KeyError, TypeError) as exc:
        raise ModelFileError(f"model file {name!r} is truncated or not a betavae-np .npz file "
                             f"({type(exc).__name__}).") from None
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ModelFileError(f"{name!r} is not a betavae-np model file (header is not JSON bytes).")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelFileError(f"model file {name!r} has a corrupt header (not valid JSON).") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(f"{name!r} is not a betavae-np model file (format tag missing).")
    version = header.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise ModelFileError(f"model file {name!r} has an invalid format_version {version!r}.")
    if version > FORMAT_VERSION:
        raise ModelFileError(f"model file {name!r} uses format version {version}, newer than this "
                             f"betavae-np ({__version__}) reads ({FORMAT_VERSION}); upgrade betavae-np.")
    return header, params


def load(path: str | os.PathLike):
    """Read a model written by :func:`save`.

    Parameters
    ----------
    path : str or PathLike
        The ``.npz`` file.

    Returns
    -------
    BetaVAE
        A model with the stored config, parameters (bit-exact), ``metadata`` and ``records``
        (:class:`~betavae_np.records.ModelRecords`; read from ``metadata`` for version-1 files).

    Raises
    ------
    ModelFileError
        One sentence naming the file and the problem: missing, truncated, not a zip, foreign
        (no betavae-np header), newer format version, invalid config, parameter names/shapes or
        count that do not match the config, dtype mismatch, or non-finite parameters.
    """
    from .nn.model import BetaVAE, VAEConfig

    path = Path(path)
    name = str(path)
    header, params = _read(path)
    try:
        cfg = VAEConfig.from_dict(header["config"])
    except (ConfigError, KeyError, TypeError) as exc:
        raise ModelFileError(f"model file {name!r} has an invalid config: {exc}") from None
    if header.get("dtype") != cfg.dtype or params.dtype != np.dtype(cfg.dtype):
        raise ModelFileError(f"model file {name!r} stores {params.dtype} parameters but its config "
                             f"says {cfg.dtype}.")
    if header.get("layout", LAYOUT) != LAYOUT:
        raise ModelFileError(f"model file {name!r} uses parameter layout {header.get('layout')!r}; this "
                             f"betavae-np ({__version__}) reads {LAYOUT!r}.")
    metadata = header.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ModelFileError(f"model file {name!r} has metadata that is not a JSON object.")
    from .records import ModelRecords

    try:
        if header["format_version"] >= 2:
            records = ModelRecords.from_dict(header.get("records") or {})
        else:  # version 1: the context lived in metadata, which stays as it was
            records = ModelRecords.from_legacy(metadata, cfg)
    except (ConfigError, KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"model file {name!r} has unreadable records: {exc}") from None
    try:
        from .losses import from_dict as loss_from_dict

        loss = None if header.get("loss") is None else loss_from_dict(header["loss"])
    except (ConfigError, TypeError, ValueError) as exc:
        raise ModelFileError(f"model file {name!r} has an unreadable loss: {exc}") from None
    model = BetaVAE(cfg, rng=0, loss=loss)
    expected = [[k, list(v.shape)] for k, v in model.named_parameters().items()]
    if header.get("parameters") != expected:
        raise ModelFileError(f"model file {name!r} lists parameters that do not match its config "
                             f"({cfg.n_input}-{'-'.join(map(str, cfg.hidden))}-{cfg.n_latent}).")
    if params.ndim != 1 or params.size != model.params.size:
        raise ModelFileError(f"model file {name!r} holds {params.size} parameters, its config needs "
                             f"{model.params.size}.")
    if not np.isfinite(params).all():
        raise ModelFileError(f"model file {name!r} contains non-finite parameters (NaN or inf).")
    model.params[:] = params
    model.metadata = metadata
    model.records = records
    return model

