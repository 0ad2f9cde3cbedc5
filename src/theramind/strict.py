"""The one base of the framework's pydantic models: unknown keys are errors."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Base of every record, setting and file schema: unknown keys are errors (typos caught)."""

    model_config = ConfigDict(extra="forbid")
