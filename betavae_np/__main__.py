"""``python -m betavae_np`` runs the CLI."""

from .cli import main

main(prog_name="betavae-np")
