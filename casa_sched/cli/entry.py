"""Running a typer app as a console script: usage errors as one line on stderr naming the flag.

Shared by ``casa``, ``casa-profiler`` and ``casa-stress``: click's default prints a usage block
and a boxed error over several lines; here it is one line, ``<command>: <what is wrong> (see
<command> --help)``, exit 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import NoReturn

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError


def run(app: typer.Typer, prog_name: str, argv: Sequence[str] | None = None) -> NoReturn:
    """Run ``app`` with ``argv`` (default ``sys.argv[1:]``) and exit with its code."""
    try:
        code = app(args=argv, prog_name=prog_name, standalone_mode=False)
    except NoArgsIsHelpError as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else prog_name
        typer.echo(f"{where}: {exc.format_message()} (see {where} --help)", err=True)
        sys.exit(exc.exit_code)
    except ClickException as exc:
        typer.echo(f"{prog_name}: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
