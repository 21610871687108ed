"""Building and running a typer app as a console script, shared by ``casa``, ``casa-profiler`` and
``casa-stress``.

:func:`command_app` makes every app and sub-app with plain help: typer's rich panels print a value
placeholder after every option, flags included (``--json <bool>``, ``--help <bool>``), while the
plain formatter shows a flag as a flag (``--json``, ``--dram / --no-dram``). :func:`run` turns
usage errors into one line on stderr, ``<command>: <what is wrong> (see <command> --help)``,
exit 2, where click's default prints a usage block and a boxed error over several lines.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError


def command_app(**kwargs: Any) -> typer.Typer:
    """A :class:`typer.Typer` with plain help (flags shown as flags) and no pretty tracebacks."""
    return typer.Typer(rich_markup_mode=None, pretty_exceptions_enable=False, **kwargs)


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
