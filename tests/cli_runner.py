"""``manage.py cors ARGS`` in this process, the way ``manage.py`` runs it.

Django's ``run_from_argv`` parses the command line, writes a ``CommandError`` as its one
``CommandError: ...`` line on stderr and exits with its status, as in a real process,
without the second or two a process spends starting Python and Django. The real process
is tested once (``tests/test_cli.py::test_process_exit_codes``).
"""

from __future__ import annotations

import contextlib
import io
import sys
from dataclasses import dataclass
from unittest import mock

from django.core.management import get_commands, load_command_class
from django.db import connections


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


class Terminal(io.StringIO):
    """Standard input that is a terminal (what ``--replace`` asks on)."""

    def isatty(self) -> bool:
        return True


def run_cors(*args: str, stdin: str = "", terminal: bool = False) -> Ran:
    out, err = io.StringIO(), io.StringIO()
    source = Terminal(stdin) if terminal else io.StringIO(stdin)
    returncode = 0
    with (
        mock.patch.object(sys, "stdin", source),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        # run_from_argv closes every connection at the end: the test's transaction stays open.
        mock.patch.object(connections, "close_all"),
    ):
        command = load_command_class(get_commands()["cors"], "cors")  # writes to sys.stdout/stderr
        try:
            command.run_from_argv(["manage.py", "cors", *args])
        except SystemExit as exc:
            returncode = exc.code if isinstance(exc.code, int) else 1
    return Ran(returncode, out.getvalue(), err.getvalue())
