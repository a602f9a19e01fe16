"""The ``betavae-np`` command line: a Click group whose commands import the heavy stack lazily."""

from __future__ import annotations

import click

from .._version import __version__
from ._common import quiet_broken_pipe
from .encode import encode
from .evaluate import evaluate
from .fetch import fetch
from .sweep import sweep
from .train import train
from .traverse import traverse

__all__ = ["main"]


class _Main(click.Group):
    """The group, ending quietly when the reader of stdout has gone (``| head``), for every command."""

    def main(self, *args, **kwargs):
        try:
            return super().main(*args, **kwargs)  # Click itself turns EPIPE into exit 1
        finally:
            quiet_broken_pipe()


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="betavae-np")
def main():
    """Interpretable market factors with a beta-VAE in NumPy + Numba.

    \b
    betavae-np train BTCUSDT          train on Bybit hourly candles (offline: the bundled sample)
    betavae-np traverse MODEL.npz     what each latent dimension means
    betavae-np evaluate MODEL.npz     held-out error, active units, the codes against indicators and PCA
    betavae-np encode MODEL.npz --out latents.csv   every window's mu and logvar
    betavae-np fetch BTCUSDT --out btc.csv
    betavae-np sweep --source sample --betas 0.5,1,2,4   choose beta (table, elbow, plot)

    Results go to stdout (--json for one JSON object); progress and notices go to stderr.
    Exit codes: 0 success, 1 failure, 2 misuse.
    """


main.add_command(fetch)
main.add_command(train)
main.add_command(traverse)
main.add_command(evaluate)
main.add_command(sweep)
main.add_command(encode)
