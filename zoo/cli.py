"""The ``zoo`` command."""
from __future__ import annotations

import sys

LIGHTNING_COMMANDS = {"fit", "validate", "test", "predict"}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in LIGHTNING_COMMANDS:
        from zoo.lightning_cli import run

        run(argv)
        return 0
    from zoo.commands import run_command

    return run_command(argv)


if __name__ == "__main__":
    sys.exit(main())
