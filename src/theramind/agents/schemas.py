"""Model-facing schemas: the stored records narrowed to the labels allowed for one call.

Constrained decoding (vLLM json_schema, llama.cpp grammar, the stub server) then cannot emit a
label that breaks a domain rule, and prompt-only backends get the rule back as a validation
error. Schemas are cached per set of allowed labels.
"""

from __future__ import annotations

from functools import cache
from types import GenericAlias
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field, create_model, field_validator

from theramind.records import EfficacyVerdict as EfficacyLabel
from theramind.records import (
    Perception,
    StrategyChoice,
    TherapyDecision,
)
from theramind.strict import Strict

R = TypeVar("R", bound=BaseModel)


def as_record(value: BaseModel, record: type[R]) -> R:
    """The stored record type of a value that a narrowed per-call schema produced.

    A model answers a subclass narrowed to this turn's labels; what the graphs keep and store
    is the base record, so its fields are taken over as that type. They are not validated
    again: the narrowed schema inherits every rule of the record and only narrows labels, so
    what it accepted the record accepts.
    """
    fields = {name: getattr(value, name) for name in record.model_fields}
    return record.model_construct(value.model_fields_set & set(fields), **fields)


def _literal(values: tuple[str, ...]) -> Any:
    return Literal[values]


def _literal_list(values: tuple[str, ...]) -> Any:
    return GenericAlias(list, (_literal(values),))  # list[Literal[...]], built at run time


def _narrowed(record: type[R], name: str, values: tuple[str, ...], description: str) -> type[R]:
    """`record` with its field `name` limited to `values` (same name, doc and other rules)."""
    field: dict[str, Any] = {name: (_literal(values), Field(description=description))}
    return create_model(record.__name__, __base__=record, __doc__=record.__doc__, **field)


@cache
def perception_schema(emotions: tuple[str, ...]) -> type[Perception]:
    """Perception with `emotion` limited to the taxonomy's emotions."""
    return _narrowed(Perception, "emotion", emotions, "The patient's primary emotion.")


@cache
def strategy_schema(allowed: tuple[str, ...]) -> type[StrategyChoice]:
    """StrategyChoice limited to the strategies allowed this turn."""
    return _narrowed(
        StrategyChoice, "strategy", allowed, "Exactly one of the allowed strategy ids."
    )


class EfficacyVerdict(Strict):
    """Whether the therapy applied in the session helped the patient."""

    verdict: EfficacyLabel = Field(
        description="effective, partially_effective or not_effective, judged from the signals."
    )
    reason: str = Field(max_length=400, description="One or two sentences naming the evidence.")


def efficacy_schema() -> type[EfficacyVerdict]:
    """The part of an EfficacyReport the model writes (the framework adds the signals)."""
    return EfficacyVerdict


@cache
def decision_schema(
    actions: tuple[str, ...], therapies: tuple[str, ...], phases: tuple[str, ...]
) -> type[TherapyDecision]:
    """TherapyDecision limited to the actions, therapies and phases allowed by the evaluation."""

    def _unique(cls: type, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))  # a repeated therapy is one therapy

    validators: dict[str, Any] = {"unique": field_validator("therapies")(classmethod(_unique))}
    return create_model(
        "TherapyDecision",
        __base__=TherapyDecision,
        __doc__=TherapyDecision.__doc__,
        __validators__=validators,
        action=(_literal(actions), Field(description="What to do with the therapy.")),
        therapies=(
            _literal_list(therapies),
            Field(min_length=1, max_length=2, description="One or two therapy ids."),
        ),
        phase=(_literal(phases), Field(description="The treatment phase for the next session.")),
    )
