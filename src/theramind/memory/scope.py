"""Namespaces like ("patients", patient_id, kind), and the filters every memory call runs under."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

from theramind.errors import InputError, MemoryScopeError
from theramind.records import MemoryKind

Namespace = tuple[str, ...]
Where = dict[str, Any]

ROOT = "patients"
MEMORY_KINDS: tuple[str, ...] = get_args(MemoryKind)


def require_patient_id(patient_id: object) -> str:
    """Return the patient id, or raise MemoryScopeError when it is missing or blank."""
    if not isinstance(patient_id, str) or not patient_id.strip():
        raise MemoryScopeError(
            "memory access needs a non-empty patient id; every read and write is scoped to one "
            f"patient (got {patient_id!r})"
        )
    return patient_id


def require_kind(kind: object) -> MemoryKind:
    """Return the memory kind, or raise InputError naming the allowed kinds."""
    if kind not in MEMORY_KINDS:
        raise InputError(f"unknown memory kind {kind!r}; expected one of {', '.join(MEMORY_KINDS)}")
    return kind  # type: ignore[return-value]


@dataclass(frozen=True)
class Scope:
    """One patient's memory, optionally narrowed to one kind."""

    patient_id: str
    kind: MemoryKind | None = None

    def __post_init__(self) -> None:
        """Refuse a scope without a patient id or with an unknown kind."""
        require_patient_id(self.patient_id)
        if self.kind is not None:
            require_kind(self.kind)

    @classmethod
    def of(cls, namespace: Namespace) -> Scope:
        """Parse ("patients", patient_id) or ("patients", patient_id, kind)."""
        if isinstance(namespace, str) or not isinstance(namespace, tuple | list):
            raise InputError(
                f"a memory namespace is a tuple like ('patients', id), not {namespace!r}"
            )
        parts = tuple(namespace)
        if not parts or parts[0] != ROOT:
            raise InputError(f"memory namespace must start with {ROOT!r}: {parts!r}")
        if len(parts) < 2:
            raise MemoryScopeError(f"memory namespace {parts!r} has no patient id")
        if len(parts) > 3:
            raise InputError(f"memory namespace {parts!r} is too deep; use (patients, id, kind)")
        kind = require_kind(parts[2]) if len(parts) == 3 else None
        return cls(require_patient_id(parts[1]), kind)

    @property
    def namespace(self) -> Namespace:
        """Return the namespace tuple of this scope."""
        base: Namespace = (ROOT, self.patient_id)
        return (*base, self.kind) if self.kind else base

    def where(
        self,
        *,
        key: str | None = None,
        exclude_session: int | None = None,
        from_session: int | None = None,
    ) -> Where:
        """Return the metadata filter of this scope; the patient id clause is always present."""
        clauses: list[Where] = [{"patient_id": {"$eq": self.patient_id}}]
        if self.kind is not None:
            clauses.append({"kind": {"$eq": self.kind}})
        if key is not None:
            clauses.append({"key": {"$eq": key}})
        if exclude_session is not None:
            clauses.append({"session_no": {"$ne": int(exclude_session)}})
        if from_session is not None:
            clauses.append({"session_no": {"$gte": int(from_session)}})
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def where_filter(namespace: Namespace, **kwargs: Any) -> Where:
    """Turn a namespace into a metadata filter, refusing one without a patient id."""
    return Scope.of(namespace).where(**kwargs)


_OPS: dict[str, Any] = {
    "$eq": lambda a, b: a == b,
    "$ne": lambda a, b: a != b,
    "$gt": lambda a, b: a is not None and a > b,
    "$gte": lambda a, b: a is not None and a >= b,
    "$lt": lambda a, b: a is not None and a < b,
    "$lte": lambda a, b: a is not None and a <= b,
    "$in": lambda a, b: a in b,
    "$nin": lambda a, b: a not in b,
}


def matches(metadata: dict[str, Any], where: Where | None) -> bool:
    """Evaluate a chroma-style `where` filter against one metadata dict (pure Python)."""
    if not where:
        return True
    for field, cond in where.items():
        if field == "$and":
            if not all(matches(metadata, sub) for sub in cond):
                return False
        elif field == "$or":
            if not any(matches(metadata, sub) for sub in cond):
                return False
        elif isinstance(cond, dict):
            value = metadata.get(field)
            for op, operand in cond.items():
                if op not in _OPS:
                    raise InputError(f"unsupported filter operator {op!r}")
                if not _OPS[op](value, operand):
                    return False
        elif metadata.get(field) != cond:
            return False
    return True
