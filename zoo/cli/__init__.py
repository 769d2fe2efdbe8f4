"""The ``zoo`` command line, one module per domain (asr, speaker, data, hub, fairness) + the Lightning CLI."""
from zoo.cli.main import main

__all__ = ["main"]
