"""User-facing errors. The CLI prints ``error: <message>`` for any ZooError and exits 2.

Message style: ``<what is wrong> — <what to do>``, one line, options spelled as on the command line."""


class ZooError(Exception):
    """Base class: a problem with the user's input that has a one-line explanation."""


class AudioError(ZooError):
    """Audio that cannot be used: missing, unreadable, empty or non-finite."""


class ManifestError(ZooError):
    """A malformed manifest (the message names the file and line)."""


class ModelNotFoundError(ZooError):
    """A model name, folder or Hub repo that cannot be found."""


class ModelFolderError(ZooError):
    """A model folder that is incomplete or whose weights do not match its config."""


class ConfigError(ZooError):
    """A command-line option or training config that cannot be used (a typo'd key, a bad value)."""


class OutputExistsError(ZooError):
    """An output that already exists and would be replaced (``--force`` replaces it)."""


def find_zoo_error(exc: BaseException | None) -> "ZooError | None":
    """The ZooError that caused ``exc`` (jsonargparse and Lightning wrap errors raised while building the task or
    data), else None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, ZooError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def one_line_errors(main):
    """Decorate a script's ``main(argv) -> int``: a ZooError becomes ``error: <message>`` on stderr and exit
    status 2 instead of a traceback."""
    import functools
    import sys

    @functools.wraps(main)
    def wrapper(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except ZooError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    return wrapper
