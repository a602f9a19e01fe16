"""The package's error types: one base class, a few specific ones, nothing deep.

Every message says what was wrong and what to do, in one sentence.
"""

from __future__ import annotations

__all__ = [
    "BetaVAEError",
    "ConfigError",
    "InputError",
    "TrainingError",
    "ModelFileError",
    "DataError",
    "BybitError",
    "BybitRateLimitError",
    "BybitServerError",
    "BybitBadRequestError",
    "BybitForbiddenError",
    "BybitNetworkError",
    "BybitResponseError",
]


class BetaVAEError(Exception):
    """Base class of every error raised on purpose by betavae-np."""


class ConfigError(BetaVAEError, ValueError):
    """A configuration value is out of range (latent < 1, beta < 0, batch larger than data...)."""


class InputError(BetaVAEError, ValueError):
    """An input array has the wrong shape, dtype, or non-finite values."""


class TrainingError(BetaVAEError, RuntimeError):
    """Training diverged (NaN/overflow); the last good parameters were restored."""


class ModelFileError(BetaVAEError, OSError):
    """A model file is truncated, foreign, from a newer format version, or unreadable."""


class DataError(BetaVAEError, ValueError):
    """Candle data is unusable: missing columns, NaN prices, unsorted or duplicated times, too few rows."""


class BybitError(BetaVAEError):
    """Base class of errors talking to Bybit's v5 API.

    Attributes
    ----------
    ret_code : int or None
        Bybit's ``retCode`` when the reply carried one.
    status : int or None
        The HTTP status when there was a reply.
    """

    def __init__(self, message: str, *, ret_code: int | None = None, status: int | None = None):
        super().__init__(message)
        self.ret_code = ret_code
        self.status = status


class BybitRateLimitError(BybitError):
    """Rate limited (retCode 10006 or HTTP 429) and still so after every retry."""


class BybitServerError(BybitError):
    """Bybit answered with a server error (retCode 10016 or HTTP 5xx) after every retry."""


class BybitBadRequestError(BybitError, ValueError):
    """Bybit rejected the request (retCode 10001: unknown symbol, invalid interval); never retried."""


class BybitForbiddenError(BybitError):
    """HTTP 403: the IP is banned for breaching the rate limit (10+ minutes) or the region is blocked."""


class BybitNetworkError(BybitError, ConnectionError):
    """Bybit could not be reached (DNS, connection refused or reset, timeouts) after every retry."""


class BybitResponseError(BybitError):
    """The reply could not be understood (truncated or malformed JSON, unexpected shape) after every retry."""
