"""Real market data: Bybit client, candle cache, bundled sample, windows (lazily imported)."""

from .._lazy import attach

_EXPORTS = {
    "OHLCV": ".frame",
    "Gap": ".frame",
    "validate_candles": ".frame",
    "read_candles_csv": ".frame",
    "find_gaps": ".frame",
    "frame_from_arrays": ".frame",
    "index_to_ms": ".frame",
    "BybitClient": ".bybit",
    "fetch_klines": ".fetch",
    "afetch_klines": ".fetch",
    "fetch_universe": ".fetch",
    "afetch_universe": ".fetch",
    "top_symbols": ".fetch",
    "CandleCache": ".cache",
    "normalize_interval": ".intervals",
    "interval_ms": ".intervals",
    "load_sample": ".sample",
    "Windower": ".windows",
    "WindowSet": ".windows",
    "UniverseWindowSet": ".universe_set",
    "REPRESENTATIONS": ".features",
    "RETURN_FEATURES": ".features",
    "EpochSampler": ".sampler",
    "Universe": ".universe",
    "load_universe": ".universe",
}

__getattr__, __dir__ = attach(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
