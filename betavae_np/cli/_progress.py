"""Training progress on stderr, fed by fit()'s callbacks (the library itself never prints)."""

from __future__ import annotations

import sys
import time

import click

__all__ = ["TrainProgress", "FetchProgress"]


def _bar(frac: float, width: int = 24) -> str:
    full = int(round(frac * width))
    return "#" * full + "." * (width - full)


class TrainProgress:
    """A bar per epoch with loss, recon, KL and beta.

    On a terminal the current epoch's bar redraws in place and every ``every``-th epoch (and the
    first and last) stays on screen; elsewhere (logs, CI) only those epochs print, one line each.
    """

    def __init__(self, epochs: int, steps_per_epoch: int, *, enabled: bool = True, stream=None):
        self.epochs = epochs
        self.steps = max(1, steps_per_epoch)
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = max(1, epochs // 15)
        self.last_draw = 0.0
        self.t0 = time.perf_counter()

    def _write(self, text: str, end: str) -> None:
        click.echo(text, file=self.stream, nl=False)
        if end:
            click.echo(end, file=self.stream, nl=False)

    def on_batch(self, info) -> None:
        if not (self.enabled and self.tty):
            return
        now = time.perf_counter()
        if now - self.last_draw < 0.1:
            return
        self.last_draw = now
        step_in_epoch = info.step % self.steps + 1
        line = (f"\repoch {info.epoch + 1:>{len(str(self.epochs))}}/{self.epochs} "
                f"[{_bar(step_in_epoch / self.steps)}] loss {info.loss:9.4f} recon {info.recon:9.4f} "
                f"kl {info.kl:7.3f} beta {info.beta:6.3f}")
        self._write(line, "")

    def on_epoch(self, info) -> None:
        if not self.enabled:
            return
        e = info.epoch + 1
        keep = e == 1 or e == self.epochs or e % self.every == 0
        val = "" if info.val_loss is None else f" val {info.val_loss:9.4f}"
        line = (f"epoch {e:>{len(str(self.epochs))}}/{self.epochs} [{_bar(1.0)}] loss {info.loss:9.4f} "
                f"recon {info.recon:9.4f} kl {info.kl:7.3f} beta {info.beta:6.3f}{val} "
                f"({time.perf_counter() - self.t0:5.1f}s)")
        if self.tty:
            self._write("\r" + line + "\x1b[K", "\n" if keep else "")
        elif keep:
            self._write(line, "\n")


class FetchProgress:
    """A candle counter for long fetches: a bar on a terminal, nothing in logs."""

    def __init__(self, label: str, *, enabled: bool = True, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = enabled and bool(getattr(self.stream, "isatty", lambda: False)())
        self.label = label
        self.last = 0.0

    def __call__(self, fetched: int, expected: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.last < 0.1 and fetched < expected:
            return
        self.last = now
        frac = min(1.0, fetched / expected) if expected else 0.0
        click.echo(f"\r{self.label} [{_bar(frac)}] {fetched}/{expected or '?'} candles", file=self.stream,
                   nl=False)

    def close(self) -> None:
        if self.enabled and self.last:
            click.echo("", file=self.stream)
