"""``casa config …``: show every setting with its value, unit and reason, or write a YAML template."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from casa_sched.cli.entry import command_app
from casa_sched.settings import CasaSettings, SettingsError, load_settings

config_app = command_app(help="Show or export the settings (YAML < CASA_* environment < flags).", no_args_is_help=True)


def _rows(model: BaseModel, prefix: str = "") -> list[tuple[str, Any, str]]:
    rows: list[tuple[str, Any, str]] = []
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        key = f"{prefix}{name}"
        if isinstance(value, BaseModel):
            rows.extend(_rows(value, key + "."))
        else:
            rows.append((key, value, field.description or ""))
    return rows


@config_app.command("show")
def show(
    config: Annotated[
        Path | None, typer.Option(help="YAML settings file; unset: $CASA_CONFIG, if set.", exists=True)
    ] = None,
) -> None:
    """Every setting: its effective value and what it means (unit, reason for the default)."""
    try:
        settings = load_settings(config)
    except SettingsError as exc:
        typer.echo(f"casa config show: {exc}", err=True)
        raise typer.Exit(2) from None
    table = Table("setting", "value", "meaning", show_lines=False)
    for key, value, desc in _rows(settings):
        table.add_row(
            key, repr(value) if not isinstance(value, tuple) or len(value) < 6 else f"({len(value)} values)", desc
        )
    Console().print(table)


@config_app.command("template")
def template() -> None:
    """A YAML file with every default, to copy and edit (pass it with --config or CASA_CONFIG)."""
    data = CasaSettings().model_dump(mode="json")
    typer.echo(yaml.safe_dump(data, sort_keys=False))
