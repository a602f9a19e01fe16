"""The model configuration: a frozen, validated, JSON-able dataclass."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ..config import DEFAULT_DTYPE, DTYPES
from ..exceptions import ConfigError

__all__ = ["VAEConfig", "ACTIVATIONS"]

#: Hidden-layer activations and the integer code the kernels use (0 is the identity).
ACTIVATIONS = {"relu": 1, "tanh": 2, "elu": 3, "leaky_relu": 4}


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int,)) and not hasattr(value, "__index__"):
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}.")
    value = int(value)
    if value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value}.")
    return value


@dataclass(frozen=True)
class VAEConfig:
    """Architecture of a :class:`~betavae_np.nn.model.BetaVAE`.

    Parameters
    ----------
    n_input : int
        Width of one flattened window (``window * n_features``), >= 1.
    hidden : tuple of int
        Encoder hidden sizes, first to last; the decoder mirrors them. ``()`` means no hidden layer.
    n_latent : int
        Number of latent factors (width of ``mu`` and ``logvar``), >= 1.
    activation : {"relu", "tanh", "elu", "leaky_relu"}
        Activation of every hidden layer (the heads and the output layer are linear).
    dtype : {"float32", "float64"}
        Floating dtype of parameters, gradients and workspaces.

    Raises
    ------
    ConfigError
        When a value is out of range (one sentence naming the field).
    """

    n_input: int = 160                    # input width = window * n_features (time-major)
    hidden: tuple[int, ...] = (128, 64)   # encoder hidden sizes; decoder uses them reversed
    n_latent: int = 8                     # latent dimensions (mu, logvar, z each this wide)
    activation: str = "relu"              # hidden activation: relu | tanh | elu | leaky_relu
    dtype: str = DEFAULT_DTYPE            # float32 (default, fast) or float64 (gradient checks)

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_input", _positive_int("n_input", self.n_input))
        object.__setattr__(self, "n_latent", _positive_int("n_latent", self.n_latent))
        if isinstance(self.hidden, (str, bytes)) or not hasattr(self.hidden, "__iter__"):
            raise ConfigError(f"hidden must be a sequence of integers >= 1, got {self.hidden!r}.")
        hidden = tuple(_positive_int("each hidden size", h) for h in self.hidden)
        object.__setattr__(self, "hidden", hidden)
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"activation must be one of {sorted(ACTIVATIONS)}, "
                              f"got {self.activation!r}.")
        dtype = str(getattr(self.dtype, "name", self.dtype))
        if dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {list(DTYPES)}, got {self.dtype!r}.")
        object.__setattr__(self, "dtype", dtype)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict (``hidden`` as a list) that :meth:`from_dict` accepts."""
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "VAEConfig":
        """Build a config from :meth:`to_dict` output.

        Raises
        ------
        ConfigError
            On unknown or missing keys, or invalid values.
        """
        if not isinstance(d, dict):
            raise ConfigError(f"a VAEConfig dict is expected, got {type(d).__name__}.")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        missing = sorted(names - set(d))
        if unknown:
            raise ConfigError(f"unknown VAEConfig keys {unknown}; expected {sorted(names)}.")
        if missing:
            raise ConfigError(f"missing VAEConfig keys {missing}; expected {sorted(names)}.")
        return cls(**{k: (tuple(v) if k == "hidden" and isinstance(v, list) else v)
                      for k, v in d.items()})
