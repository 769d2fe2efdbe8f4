"""The ``zoo`` command."""
from __future__ import annotations

import sys

LIGHTNING_COMMANDS = {"fit", "validate", "test", "predict"}


def _zoo_error(exc: BaseException):
    """The ZooError that caused ``exc`` (jsonargparse and Lightning wrap errors raised while building the task or
    data), else None."""
    from zoo.errors import ZooError

    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, ZooError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point (``argv=None``: ``sys.argv[1:]``); also callable from Python with a list."""
    from_console = argv is None
    argv = list(sys.argv[1:] if from_console else argv)
    if argv and argv[0] in LIGHTNING_COMMANDS:
        from zoo.lightning_cli import run

        # From the console LightningCLI reads sys.argv itself (args=None); passing the same list again
        # would make it warn about args given twice. From Python the explicit list is parsed instead.
        try:
            run(None if from_console else argv)
        except Exception as e:  # a user error (bad init_from, missing corpus, ...): one line, exit 2
            z = _zoo_error(e)
            if z is None:
                raise
            print(f"error: {z}", file=sys.stderr)
            return 2
        return 0
    from zoo.commands import run_command

    return run_command(argv)


if __name__ == "__main__":
    sys.exit(main())
