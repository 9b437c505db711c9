"""The `kaito-gitops` console script.

Each sub-command lives in its own module under `infra.commands` and exposes
`register(subparsers)`, which adds its parser and sets `handler` to a function
taking the parsed arguments and returning an exit code: 0 ok, 1 invalid input,
2 usage error. Modules are imported only when their command runs, so `validate`
never pays for importing the Pulumi providers or torch.
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import sys
from typing import Callable

# command name -> module under infra.commands
COMMANDS = {
    "validate": "validate",
    "render": "render",
    "diff": "diff",
    "plan": "plan",
    "new": "new",
    "dataset": "dataset",
    "retire": "retire",
}

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
INTERNAL_ERROR = "internal error"  # tests look for it: every one is a bug to fix, not an answer


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on usage errors already; this keeps the message on one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        from infra.diagnostics import escape

        print(f"{self.prog}: error: {escape(message)}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = _Parser(prog="kaito-gitops", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, module in COMMANDS.items():
        # Import only the command being run; list the rest by name for --help.
        if wanted in (None, name) or wanted not in COMMANDS:
            importlib.import_module(f"infra.commands.{module}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    return guarded("kaito-gitops", lambda: args.handler(args))


def guarded(prog: str, run: Callable[[], int]) -> int:
    """Every entry point's last line of defence: a failure is one line and a non-zero exit, never a traceback."""
    try:
        return int(run())
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `kaito-gitops plan | head`: the reader left; say nothing more
        _silence_stdout()
        return EXIT_INVALID
    except Exception as error:  # noqa: BLE001 - a bug: one line for the user, the traceback on request
        if os.environ.get("KAITO_GITOPS_DEBUG"):
            raise
        from infra.diagnostics import escape

        print(f"{prog}: {INTERNAL_ERROR}: {type(error).__name__}: {escape(str(error))[:300]} (please report it; "
              "KAITO_GITOPS_DEBUG=1 shows the traceback)", file=sys.stderr)
        return EXIT_INVALID


def _silence_stdout() -> None:
    """Python's advice for SIGPIPE: point stdout at devnull so the interpreter's final flush does not fail."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass


if __name__ == "__main__":
    sys.exit(main())
