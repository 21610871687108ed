"""Contract types take their defaults from the settings' field definitions (written down once)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


def setting_default(section: type[BaseModel], name: str) -> Any:
    """The default of settings field ``section.name`` (e.g. ``SLOSettings, "cstr"`` → 0.05)."""
    return section.model_fields[name].default
