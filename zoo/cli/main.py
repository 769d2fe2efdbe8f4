"""The ``zoo`` command: builds the parser from the per-domain modules (``zoo.cli.asr``, ``speaker``, ``data``,
``hub``, ``fairness``) and routes fit/validate/test/predict to the Lightning CLI (``zoo.cli.lightning``).

Every user error is a ZooError: one ``error: ...`` line on stderr, exit status 2, no traceback
(an OSError, e.g. an unwritable output folder, is reported the same way with exit status 1)."""
from __future__ import annotations

import argparse
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
        from zoo.cli.lightning import run

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
    return run_command(argv)


def build_parser() -> argparse.ArgumentParser:
    from zoo.cli import asr, data, fairness, hub, speaker

    p = argparse.ArgumentParser(prog="zoo", description="Streaming speech recognition model zoo. Training: "
                                "zoo fit|validate|test|predict --config CONFIG (Lightning CLI; --help there).")
    sub = p.add_subparsers(dest="command", required=True)
    for domain in (hub, asr, speaker, data, fairness):
        domain.add_parsers(sub)
    return p


def run_command(argv: list[str]) -> int:
    """Run one non-Lightning subcommand; user errors become one line on stderr."""
    from zoo.errors import ZooError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ZooError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # e.g. an output folder that cannot be created
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
