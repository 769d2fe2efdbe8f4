"""zoo.errors.one_line_errors: scripts turn a ZooError into one stderr line and exit status 2."""
from __future__ import annotations

import pytest

from zoo.errors import ZooError, one_line_errors


def test_zoo_error_becomes_one_line_and_2(capsys):
    @one_line_errors
    def main(argv=None) -> int:
        if argv:
            raise ZooError("bad thing — do this instead")
        return 0

    assert main([]) == 0 and main.__name__ == "main"
    assert main(["x"]) == 2
    assert capsys.readouterr().err == "error: bad thing — do this instead\n"


def test_other_errors_are_not_hidden():
    @one_line_errors
    def main() -> int:
        raise ValueError("a bug")

    with pytest.raises(ValueError):
        main()
