"""The typed checklist model.

It mirrors ``schemas/checklist.schema.json`` field for field and must accept
and reject exactly what the schema does (``tests/test_checklist_model.py``
proves it with generated documents). Checks that span fields — duplicate ids,
references to undeclared routes — live in ``cdss.validation``, not here.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

SCHEMA_ID = "urn:cdss:schema:checklist:2"
SCHEMA_V1 = "urn:cdss:schema:checklist:1"
SCHEMA_IDS = (SCHEMA_V1, SCHEMA_ID)

_SEMVER_NUMBER = "(?:0|[1-9][0-9]*)"
_SEMVER_PRE = "(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)"
SEMVER_PATTERN = (
    f"^{_SEMVER_NUMBER}\\.{_SEMVER_NUMBER}\\.{_SEMVER_NUMBER}"
    f"(?:-{_SEMVER_PRE}(?:\\.{_SEMVER_PRE})*)?"
    "(?:\\+[0-9a-zA-Z-]+(?:\\.[0-9a-zA-Z-]+)*)?$"
)
IDENTIFIER_PATTERN = "^[a-z0-9]+(?:-[a-z0-9]+)*$"
SECTION_ID_PATTERN = "^[A-Za-z0-9]+(?:[.-][A-Za-z0-9]+)*$"
_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
URL_PATTERN = f"^https://{_LABEL}(?:\\.{_LABEL})+(?::[0-9]{{1,5}})?(?:[/?#][!-~]*)?$"
DOI_PATTERN = "^10\\.[0-9]{4,9}/[!-~]+$"
SHA256_PATTERN = "^[0-9a-f]{64}$"
FILE_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._-]*$"

# ECMA-262 WhiteSpace and LineTerminator: what \s means in a JSON Schema pattern.
_ECMA_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_ECMA_ESCAPES = {
    "d": "[0-9]",
    "D": "[^0-9]",
    "w": "[A-Za-z0-9_]",
    "W": "[^A-Za-z0-9_]",
    "s": f"[{_ECMA_SPACE}]",
    "S": f"[^{_ECMA_SPACE}]",
}


@cache
def ecma_regex(pattern: str) -> re.Pattern[str]:
    """A schema pattern compiled to mean in Python what it means in ECMA-262.

    JSON Schema patterns are ECMA-262 regexes, searched (not anchored). Python's
    ``$`` also matches before a final newline and its ``\\d``, ``\\w``, ``\\s``
    are Unicode-wide, so ``"abc\\n"`` would pass ``^[a-z]+$`` in Python and fail
    everywhere else. This rewrites ``$`` to ``\\Z`` and the class escapes to
    ECMA's sets, so cdss, jsonschema in any language and the pydantic model agree.
    """
    out: list[str] = []
    index, in_class = 0, False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            escape = pattern[index + 1]
            if escape in _ECMA_ESCAPES:
                if in_class and escape.isupper():
                    raise ValueError(f"pattern {pattern!r}: a negated class escape inside [...]")
                spelled = _ECMA_ESCAPES[escape]
                out.append(spelled[1:-1] if in_class else spelled)
            else:
                out.append(pattern[index : index + 2])
            index += 2
            continue
        if char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        elif char == "$" and not in_class:
            char = "\\Z"
        out.append(char)
        index += 1
    return re.compile("".join(out))


def ecma_pattern(pattern: str) -> AfterValidator:
    """A pydantic check of a schema ``pattern`` with the schema's own semantics."""
    compiled = ecma_regex(pattern)

    def check(value: str) -> str:
        if compiled.search(value) is None:
            raise ValueError(f"does not match the pattern {pattern}")
        return value

    return AfterValidator(check)


_NOT_BLANK = ecma_pattern(r"\S")
Identifier = Annotated[str, Field(min_length=1, max_length=64), ecma_pattern(IDENTIFIER_PATTERN)]
SectionId = Annotated[str, Field(min_length=1, max_length=64), ecma_pattern(SECTION_ID_PATTERN)]
Title = Annotated[str, Field(min_length=1, max_length=120), _NOT_BLANK]
LongTitle = Annotated[str, Field(min_length=1, max_length=200), _NOT_BLANK]
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
    title: LongTitle
    file: Annotated[str, Field(min_length=1, max_length=200), ecma_pattern(FILE_PATTERN)]
    sha256: Annotated[str, ecma_pattern(SHA256_PATTERN)]


ReferenceKind = Literal["prescribing-information", "rems", "guideline", "professional-code"]


class ReferenceSection(_Strict):
    id: SectionId
    title: LongTitle


class Reference(_Strict):
    """An external source (label, REMS, guideline) that items cite by section."""

    id: Identifier
    kind: ReferenceKind
    title: LongTitle
    issuer: LongTitle
    version: Annotated[str, Field(min_length=1, max_length=120), _NOT_BLANK]
    url: Annotated[str, Field(max_length=500), ecma_pattern(URL_PATTERN)] | None = None
    doi: Annotated[str, Field(max_length=200), ecma_pattern(DOI_PATTERN)] | None = None
    sections: Annotated[list[ReferenceSection], Field(min_length=1)]

    @model_validator(mode="after")
    def _findable(self) -> Reference:
        if self.url is None and self.doi is None:
            raise ValueError("a reference needs a url, a doi or both")
        return self

    def section(self, section_id: str) -> ReferenceSection | None:
        return next((s for s in self.sections if s.id == section_id), None)


class Pause(_Strict):
    """A moment in the session when the clinician stops to tick some sections."""

    id: Identifier
    title: Title
    moment: Annotated[str, Field(min_length=1, max_length=300), _NOT_BLANK]


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


class DocumentSource(_Strict):
    """A seed document and a heading in it, word for word."""

    document: Identifier
    heading: Annotated[str, Field(min_length=1, max_length=300), _NOT_BLANK]


class ReferenceSource(_Strict):
    """A declared reference and one of its declared sections."""

    reference: Identifier
    section: SectionId


def _source_kind(value: Any) -> str | None:
    # The schema's if/then/else: an object with "reference" is a reference citation.
    if isinstance(value, dict):
        return "reference" if "reference" in value else "document"
    if isinstance(value, DocumentSource | ReferenceSource):
        return "reference" if isinstance(value, ReferenceSource) else "document"
    return None


Source = Annotated[
    Annotated[DocumentSource, Tag("document")] | Annotated[ReferenceSource, Tag("reference")],
    Discriminator(
        _source_kind,
        custom_error_type="source",
        custom_error_message='expected {"document", "heading"} or {"reference", "section"}',
    ),
]


class Item(_Strict):
    id: Identifier
    text: Annotated[str, Field(min_length=1, max_length=300), _NOT_BLANK]
    why: Annotated[str, Field(min_length=1, max_length=600), _NOT_BLANK]
    sources: Annotated[list[Source], Field(min_length=1)]
    applies_when: Condition | None = None


class Section(_Strict):
    id: Identifier
    title: Title
    phase: Phase | None = None
    pause: Identifier | None = None
    applies_when: Condition | None = None
    items: Annotated[list[Item], Field(min_length=1)]


class Checklist(_Strict):
    schema_id: Literal["urn:cdss:schema:checklist:1", "urn:cdss:schema:checklist:2"] = Field(alias="$schema")
    id: Identifier
    version: Annotated[str, Field(max_length=64), ecma_pattern(SEMVER_PATTERN)]
    title: Title
    summary: Annotated[str, Field(min_length=1, max_length=600), _NOT_BLANK]
    documents: Annotated[list[Document], Field(min_length=1)]
    references: Annotated[list[Reference], Field(min_length=1)] | None = None
    context: Context
    not_done_reasons: Annotated[list[Reason], Field(min_length=1)] | None = None
    pauses: Annotated[list[Pause], Field(min_length=1)] | None = None
    sections: Annotated[list[Section], Field(min_length=1)]

    @property
    def reasons(self) -> tuple[Reason, ...]:
        """The reasons a clinician may give for 'not done': declared, or the defaults."""
        return tuple(self.not_done_reasons) if self.not_done_reasons else DEFAULT_REASONS

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"

    def reference(self, reference_id: str) -> Reference | None:
        return next((r for r in self.references or () if r.id == reference_id), None)

    def citation(self, source: DocumentSource | ReferenceSource) -> str:
        """How a person reads a source: the document and heading, or the reference and section."""
        if isinstance(source, DocumentSource):
            titles = {d.id: d.title for d in self.documents}
            return f"{titles.get(source.document, source.document)} — {source.heading}"
        reference = self.reference(source.reference)
        if reference is None:
            return f"{source.reference}, section {source.section}"
        section = reference.section(source.section)
        heading = f" {section.title}" if section else ""
        return f"{reference.title} ({reference.version}), section {source.section}{heading}"

    def items(self) -> list[tuple[Section, Item]]:
        """Every item with its section, in order, regardless of applicability."""
        return [(section, item) for section in self.sections for item in section.items]

    def to_json(self) -> dict[str, Any]:
        """The document as written: only the keys the author set, under their JSON names."""
        return self.model_dump(by_alias=True, exclude_unset=True, mode="json")
