"""The console script's last line of defence: no traceback reaches the user, and tests still see bugs."""

from __future__ import annotations

import io
import sys

import pytest

from infra import cli


class _ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_pipe_ends_quietly(monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    assert cli.main(["validate"]) == cli.EXIT_INVALID
    assert "Traceback" not in capsys.readouterr().err


def test_an_unhandled_exception_is_one_line_naming_it_as_a_bug(monkeypatch, capsys) -> None:
    import infra.commands.validate as validate

    def broken(args):
        raise KeyError("boom\nsecond line")

    monkeypatch.setattr(validate, "run", broken)
    assert cli.main(["validate"]) == cli.EXIT_INVALID
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and cli.INTERNAL_ERROR in err and "KeyError" in err and "Traceback" not in err


def test_the_traceback_is_there_on_request(monkeypatch) -> None:
    import infra.commands.validate as validate

    monkeypatch.setenv("KAITO_GITOPS_DEBUG", "1")
    monkeypatch.setattr(validate, "run", lambda args: 1 // 0)
    with pytest.raises(ZeroDivisionError):
        cli.main(["validate"])
