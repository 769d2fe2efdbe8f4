"""The ``zoo`` command: builds the parser from the per-domain modules (``zoo.cli.asr``, ``speaker``, ``data``,
``hub``, ``fairness``) and routes fit/validate/test/predict to the Lightning CLI (``zoo.cli.lightning``).

One error path for every subcommand, ``fit`` included: a user mistake is one ``error: <what> — <what to do>``
line on stderr, nothing on stdout, no traceback, exit status 2. That covers every ZooError (also when
jsonargparse or Lightning wrapped it), jsonargparse / argparse usage errors, and Hub / network failures
(huggingface_hub 2.x raises httpx errors, which are not OSErrors). Any other OSError (e.g. an unwritable output
folder) is reported the same way with exit status 1. ``ZOO_DEBUG=1`` shows the traceback instead.

Output hygiene: stdout carries results only; progress bars (rich's console) and known third-party chatter
go to stderr or are filtered (``QUIET_WARNINGS``)."""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys

from zoo.errors import find_zoo_error

LIGHTNING_COMMANDS = {
    "fit": "train a task (Lightning CLI): zoo fit --config CONFIG [--trainer.max_steps N ...]; zoo fit --help",
    "validate": "validate a checkpoint or model folder on the dev split (Lightning CLI; metrics on stdout)",
    "test": "test a checkpoint or model folder on the test split (Lightning CLI; metrics on stdout)",
    "predict": "run a task's predict loop (Lightning CLI)",
}

# third-party warnings that tell a zoo user nothing they can act on (regexes on the message)
QUIET_WARNINGS = (
    r".*eagerly read CutSet",                   # lhotse: zoo's manifests are small and read eagerly on purpose
    r".*isinstance\(treespec, LeafSpec\)",      # Lightning's own use of a deprecated torch pytree API
)


def _network_error(exc: BaseException) -> bool:
    from zoo.hub.folder import network_errors

    kinds = tuple(k for k in network_errors() if k is not OSError)
    return isinstance(exc, kinds)


def user_error(exc: BaseException) -> tuple[str, int] | None:
    """(one-line message, exit status) for an exception that is the user's to fix, else None (a bug: the
    traceback is shown)."""
    z = find_zoo_error(exc)
    if z is not None:
        return str(z), 2
    if _network_error(exc):
        return (f"network error ({type(exc).__name__}: {exc}) — check the connection, HF_ENDPOINT and "
                "HF_HUB_OFFLINE"), 2
    if isinstance(exc, OSError):
        return str(exc), 1
    return None


def cli_spelling(message: str, options) -> str:
    """Name options as they are spelled on this command line: an API message's ``batch_size`` or ``--data_dir``
    becomes ``--batch-size`` / ``--data-dir`` where the subcommand has that option (Lightning subcommands:
    ``--data_dir`` becomes ``--data.data_dir`` when exactly one option ends in ``.data_dir``)."""
    options = set(options)
    if not options:
        return message

    def fix(m: re.Match) -> str:
        dashes, name = m.group(1) or "", m.group(2)
        dashed = "--" + name.replace("_", "-")
        if dashed in options:
            return dashed
        if dashes and "--" + name not in options:
            nested = [o for o in options if o.endswith("." + name)]
            if len(nested) == 1:
                return nested[0]
        return m.group(0)

    return re.sub(r"(?<![\w/.-])(--)?([a-z][a-z0-9]*(?:_[a-z0-9]+)+)(?![\w/-])", fix, message)


def _report(exc: BaseException, options=()) -> int | None:
    """Print ``error: ...`` (one line) for a user error and return its exit status; None for anything else."""
    found = user_error(exc)
    if found is None or os.environ.get("ZOO_DEBUG"):
        return None
    msg, rc = found
    print(f"error: {cli_spelling(' '.join(msg.split()), options)}", file=sys.stderr)
    return rc


@contextlib.contextmanager
def cli_output():
    """While a command runs: rich's global console (progress bars) writes to stderr, and ``QUIET_WARNINGS``
    are filtered. Both are restored afterwards (``main`` can be called from Python)."""
    import warnings

    import rich

    console = rich.get_console()
    saved = dict(console.__dict__)
    with warnings.catch_warnings():
        for pattern in QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern)
        rich.reconfigure(stderr=True)
        try:
            yield
        finally:
            console.__dict__.clear()
            console.__dict__.update(saved)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point (``argv=None``: ``sys.argv[1:]``); also callable from Python with a list."""
    from_console = argv is None
    argv = list(sys.argv[1:] if from_console else argv)
    with cli_output():
        if argv and argv[0] in LIGHTNING_COMMANDS:
            from zoo.cli.lightning import option_strings, run

            # From the console LightningCLI reads sys.argv itself (args=None); passing the same list again
            # would make it warn about args given twice. From Python the explicit list is parsed instead.
            try:
                run(None if from_console else argv)
            except KeyboardInterrupt:
                print("interrupted", file=sys.stderr)
                return 130
            except Exception as e:
                rc = _report(e, option_strings())
                if rc is None:
                    raise
                return rc
            return 0
        return run_command(argv)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help that shows each option's default (unless it is None / off, or the help text already gives it)."""

    def _get_help_string(self, action):
        h = action.help or ""
        if (action.default in (None, False, argparse.SUPPRESS) or "default" in h or "%(default)" in h
                or (not action.option_strings and action.nargs not in ("?", "*"))):
            return h
        return f"{h} (default: %(default)s)" if h else "(default: %(default)s)"


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the zoo conventions: defaults in the help, and a usage error is one line
    (``error: <message> — see zoo CMD --help``, exit status 2) instead of usage + error."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"error: {message} — see {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    from zoo.cli import asr, data, fairness, hub, speaker

    p = ArgumentParser(prog="zoo", description="Streaming speech recognition model zoo. Training and "
                       "evaluation of tasks: zoo fit|validate|test|predict --config CONFIG (Lightning CLI).")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=ArgumentParser)
    for name, text in LIGHTNING_COMMANDS.items():  # listed in the help; main() hands them to Lightning
        sub.add_parser(name, help=text, add_help=False).set_defaults(func=_lightning_stub(name))
    for domain in (hub, asr, speaker, data, fairness):
        domain.add_parsers(sub)
    return p


def _lightning_stub(name: str):
    return lambda args: main([name])


def _option_strings(parser: argparse.ArgumentParser, command: str | None) -> set[str]:
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        sp = action.choices.get(command) if isinstance(action.choices, dict) else None
        if sp is not None:
            return set(sp._option_string_actions)
    return set()


def run_command(argv: list[str]) -> int:
    """Run one non-Lightning subcommand; user errors become one line on stderr."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        rc = _report(e, _option_strings(parser, args.command))
        if rc is None:
            raise
        return rc


if __name__ == "__main__":
    sys.exit(main())
