"""The ``zoo`` command."""
from __future__ import annotations

import sys

LIGHTNING_COMMANDS = {"fit", "validate", "test", "predict"}


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point (``argv=None``: ``sys.argv[1:]``); also callable from Python with a list."""
    from_console = argv is None
    argv = list(sys.argv[1:] if from_console else argv)
    if argv and argv[0] in LIGHTNING_COMMANDS:
        from zoo.lightning_cli import run

        # From the console LightningCLI reads sys.argv itself (args=None); passing the same list again
        # would make it warn about args given twice. From Python the explicit list is parsed instead.
        run(None if from_console else argv)
        return 0
    from zoo.commands import run_command

    return run_command(argv)


if __name__ == "__main__":
    sys.exit(main())
