"""The typed checklist model.

It mirrors ``schemas/checklist.schema.json`` field for field and must accept
and reject exactly what the schema does (``tests/test_checklist_model.py``
proves it with generated documents). Checks that span fields — duplicate ids,
references to undeclared routes — live in ``cdss.validation``, not here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SCHEMA_ID = "urn:cdss:schema:checklist:1"

_SEMVER_NUMBER = "(?:0|[1-9][0-9]*)"
_SEMVER_PRE = "(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)"
SEMVER_PATTERN = (
    f"^{_SEMVER_NUMBER}\\.{_SEMVER_NUMBER}\\.{_SEMVER_NUMBER}"
    f"(?:-{_SEMVER_PRE}(?:\\.{_SEMVER_PRE})*)?"
    "(?:\\+[0-9a-zA-Z-]+(?:\\.[0-9a-zA-Z-]+)*)?$"
)
IDENTIFIER_PATTERN = "^[a-z0-9]+(?:-[a-z0-9]+)*$"

Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=IDENTIFIER_PATTERN)]
Title = Annotated[str, Field(min_length=1, max_length=120, pattern=r"\S")]
Phase = Literal["before", "during", "after"]


def refuse_null(value: Any) -> Any:
    """Optional keys are left out, never null: the published schemas allow no null there."""
    if value is None:
        raise ValueError("null is not allowed here; leave the key out instead")
    return value


class _Strict(BaseModel):
    # python-re gives the schema's regex semantics (jsonschema uses Python's re too).
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, regex_engine="python-re")

    _no_null = field_validator("*", mode="before")(refuse_null)


class Document(_Strict):
    id: Identifier
    title: Annotated[str, Field(min_length=1, max_length=200, pattern=r"\S")]
    file: Annotated[str, Field(min_length=1, max_length=200, pattern="^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    sha256: Annotated[str, Field(pattern="^[0-9a-f]{64}$")]


class Option(_Strict):
    """A route or a special-population module."""

    id: Identifier
    title: Title


class Context(_Strict):
    routes: list[Option]
    populations: list[Option]


class Reason(_Strict):
    code: Identifier
    label: Title


DEFAULT_REASONS: tuple[Reason, ...] = (
    Reason(code="patient-declined", label="Patient declined"),
    Reason(code="deferred", label="Deferred to a later visit"),
    Reason(code="not-possible-in-setting", label="Not possible in this setting"),
    Reason(code="other", label="Other (give a short reason)"),
)
REASON_NEEDING_TEXT = "other"


class Condition(_Strict):
    """Declarative applicability: every key present must hold (see ``cdss.plan``)."""

    routes: Annotated[list[Identifier], Field(min_length=1)] | None = None
    populations: Annotated[list[Identifier], Field(min_length=1)] | None = None

    def model_post_init(self, context: Any, /) -> None:
        if not self.model_fields_set:
            raise ValueError("a condition needs routes, populations or both")


class Source(_Strict):
    document: Identifier
    heading: Annotated[str, Field(min_length=1, max_length=300, pattern=r"\S")]


class Item(_Strict):
    id: Identifier
    text: Annotated[str, Field(min_length=1, max_length=300, pattern=r"\S")]
    why: Annotated[str, Field(min_length=1, max_length=600, pattern=r"\S")]
    sources: Annotated[list[Source], Field(min_length=1)]
    applies_when: Condition | None = None


class Section(_Strict):
    id: Identifier
    title: Title
    phase: Phase | None = None
    applies_when: Condition | None = None
    items: Annotated[list[Item], Field(min_length=1)]


class Checklist(_Strict):
    schema_id: Literal["urn:cdss:schema:checklist:1"] = Field(alias="$schema")
    id: Identifier
    version: Annotated[str, Field(max_length=64, pattern=SEMVER_PATTERN)]
    title: Title
    summary: Annotated[str, Field(min_length=1, max_length=600, pattern=r"\S")]
    documents: Annotated[list[Document], Field(min_length=1)]
    context: Context
    not_done_reasons: Annotated[list[Reason], Field(min_length=1)] | None = None
    sections: Annotated[list[Section], Field(min_length=1)]

    @property
    def reasons(self) -> tuple[Reason, ...]:
        """The reasons a clinician may give for 'not done': declared, or the defaults."""
        return tuple(self.not_done_reasons) if self.not_done_reasons else DEFAULT_REASONS

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"

    def items(self) -> list[tuple[Section, Item]]:
        """Every item with its section, in order, regardless of applicability."""
        return [(section, item) for section in self.sections for item in section.items]

    def to_json(self) -> dict[str, Any]:
        """The document as written: only the keys the author set, under their JSON names."""
        return self.model_dump(by_alias=True, exclude_unset=True, mode="json")
