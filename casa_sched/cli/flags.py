"""Command-line flags derived from declarations, so no help text restates a default.

Two kinds of flag, both turned into typer options here:

- a :class:`SettingFlag` overrides one field of :class:`~casa_sched.settings.CasaSettings`; its
  help is the field's ``description`` and the default it shows is the field's default (unset, the
  flag leaves the value from the file / environment / defaults alone);
- a field of a frozen *inputs* dataclass (``flag(default, help)``) names an input that is not a
  setting (a trace directory, a CSV file); its default is the dataclass field's.

:func:`with_flags` appends both to a command's own parameters and hands the command an
:class:`Overrides` and the inputs dataclass instead of one keyword per flag.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from casa_sched.settings import CasaSettings

R = TypeVar("R")


def setting_field(key: str) -> FieldInfo:
    """The pydantic field of a dotted settings key (``"slo.cstr"``); KeyError names the key."""
    model: type[BaseModel] = CasaSettings
    *sections, name = key.split(".")
    for section in sections:
        annotation = model.model_fields[section].annotation
        assert isinstance(annotation, type), key
        assert issubclass(annotation, BaseModel), key
        model = annotation
    if name not in model.model_fields:
        raise KeyError(f"no setting {key!r}")
    return model.model_fields[name]


def with_default(help: str, default: Any) -> str:
    """``help`` with the default appended as typer shows it, for a flag whose unset value is None."""
    shown = "none" if default is None else '""' if default == "" else default
    return f"{help}  [default: {shown}]"


@dataclass(frozen=True)
class SettingFlag:
    """``--<field>`` (or ``flag``) overriding the setting ``key``; ``shown_default`` is the default
    the help shows for a command that starts from its own defaults (``casa simulate``), else the
    field's."""

    key: str
    flag: str | None = None
    shown_default: str | None = None

    @property
    def option(self) -> str:
        return self.flag or "--" + self.key.rsplit(".", 1)[-1].replace("_", "-")

    @property
    def name(self) -> str:
        return self.option.removeprefix("--").replace("-", "_")

    def parameter(self) -> inspect.Parameter:
        field = setting_field(self.key)
        decls = [f"{self.option}/--no-{self.option[2:]}"] if field.annotation is bool else [self.option]
        shown = field.default if self.shown_default is None else self.shown_default
        option = typer.Option(*decls, help=with_default(field.description or "", shown), show_default=False)
        annotation = Annotated[field.annotation | None, option]  # type: ignore[name-defined]
        return inspect.Parameter(self.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)


@dataclass(frozen=True)
class Overrides:
    """Setting flags as ``load_settings`` takes them: values by dotted key (None = not given)
    and the flag each key came from, so an error names what the user typed."""

    values: Mapping[str, Any]
    flag_names: Mapping[str, str]


def flag(default: Any, help: str, *, exists: bool = False) -> Any:
    """A field of an inputs dataclass that becomes ``--<name>``; ``exists`` checks a path up front."""
    return dataclasses.field(default=default, metadata={"help": help, "exists": exists})


def _input_parameters(inputs: type[Any]) -> list[inspect.Parameter]:
    hints = typing.get_type_hints(inputs)
    params = []
    for f in dataclasses.fields(inputs):
        option = typer.Option(
            "--" + f.name.replace("_", "-"), help=f.metadata["help"], exists=bool(f.metadata.get("exists"))
        )
        params.append(
            inspect.Parameter(
                f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=Annotated[hints[f.name], option]
            )
        )
    return params


def with_flags(inputs: type[Any], settings: Sequence[SettingFlag]) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Give a command the flags of ``settings`` and of ``inputs`` (a dataclass of :func:`flag`
    fields), listed where its ``inputs`` parameter stands. The command takes keyword arguments
    ``inputs`` (an instance of the dataclass) and ``overrides`` (:class:`Overrides`) in their place."""
    names = {s.name for s in settings} | {f.name for f in dataclasses.fields(inputs)}

    def decorate(command: Callable[..., R]) -> Callable[..., R]:
        signature = inspect.signature(command, eval_str=True)
        at = list(signature.parameters).index("inputs")
        own = [p for name, p in signature.parameters.items() if name not in ("inputs", "overrides")]
        clash = names & {p.name for p in own}
        if clash:
            raise TypeError(f"{command.__name__}: flags declared twice: {sorted(clash)}")

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> R:
            overrides = Overrides({s.key: kwargs.pop(s.name) for s in settings}, {s.key: s.option for s in settings})
            values = inputs(**{f.name: kwargs.pop(f.name) for f in dataclasses.fields(inputs)})
            return command(inputs=values, overrides=overrides, **kwargs)

        generated = [s.parameter() for s in settings] + _input_parameters(inputs)
        params = own[:at] + generated + own[at:]
        wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        return wrapper

    return decorate


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def configure_logging(command: str, level: str, **basic_config: Any) -> None:
    """``logging.basicConfig`` at ``--log-level``; an unknown level is one line on stderr, exit 2."""
    import logging

    name = level.strip().upper()
    if name not in LOG_LEVELS:
        typer.echo(f"{command}: --log-level must be one of {', '.join(LOG_LEVELS)}, got {level!r}", err=True)
        raise typer.Exit(2)
    logging.basicConfig(level=name, format="%(asctime)s %(levelname)s %(name)s: %(message)s", **basic_config)
