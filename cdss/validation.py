"""Checking a checklist: JSON Schema, then the model, then what no schema can say.

The pipeline is load -> check -> list of ``Issue``. Nothing here prints; the
CLI renders the issues as ``FILE:POINTER: message`` lines or as JSON.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, Literal

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError
from pydantic import ValidationError as ModelError

from cdss import jsonfile
from cdss.catalog import (
    LOCK_FILE,
    Catalog,
    Entry,
    content_hash,
    read_lock,
    scan_folder,
    schema_path,
    version_key,
)
from cdss.checklist import (
    DOI_PATTERN,
    FILE_PATTERN,
    IDENTIFIER_PATTERN,
    SCHEMA_V1,
    SECTION_ID_PATTERN,
    SEMVER_PATTERN,
    SHA256_PATTERN,
    URL_PATTERN,
    Checklist,
    Condition,
    DocumentSource,
    ecma_regex,
)
from cdss.errors import InvalidInput, Issue


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    """The ``pattern`` keyword with ECMA-262 semantics (jsonschema's own uses Python's ``$``)."""
    if isinstance(instance, str) and ecma_regex(pattern).search(instance) is None:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


EcmaValidator = validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})  # type: ignore[no-untyped-call]


@cache
def checklist_validator() -> Any:
    """The published schema, with patterns judged as any ECMA-262 validator judges them."""
    schema = json.loads(schema_path("checklist.schema.json").read_text(encoding="utf-8"))
    return EcmaValidator(schema)


def _describe(error: ValidationError) -> str:
    """One short sentence per schema error; jsonschema's own repeat whole instances."""
    instance: Any = error.instance
    kind = error.validator
    expected: Any = error.validator_value
    schema: Any = error.schema
    if kind == "type":
        return f"expected {_article(str(expected))}, found {jsonfile.json_type(instance)}"
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"missing required key {missing!r}"
    if kind == "additionalProperties":
        allowed = list(schema.get("properties", {}))
        unknown = [key for key in instance if key not in allowed]
        parts = []
        for key in unknown:
            close = difflib.get_close_matches(key, allowed, n=1)
            parts.append(f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        return "; ".join(parts) + f"; allowed keys: {', '.join(allowed)}"
    if kind == "minLength" or (kind == "pattern" and expected == r"\S"):
        return "must not be empty or blank"
    if kind == "maxLength":
        return f"is {len(instance)} characters; at most {expected} allowed"
    if kind == "minItems":
        count = expected
        return f"needs at least {count} entr{'y' if count == 1 else 'ies'}"
    if kind == "minProperties":
        return "must not be empty"
    if kind == "anyOf" and schema.get("anyOf") == [{"required": ["url"]}, {"required": ["doi"]}]:
        return "needs a url, a doi or both"
    if kind == "pattern":
        return f"{_short(instance)} is not {_PATTERN_NAMES.get(expected, 'valid')}"
    if kind in ("const", "enum"):
        choices = [expected] if kind == "const" else expected
        return f"{_short(instance)} is not one of: {', '.join(map(_short, choices))}"
    return error.message if len(error.message) < 200 else error.message[:197] + "..."


_PATTERN_NAMES = {
    IDENTIFIER_PATTERN: "a lowercase kebab-case id (a-z, 0-9 and single hyphens)",
    SEMVER_PATTERN: "a full semantic version such as 1.0.0",
    SHA256_PATTERN: "a sha256 in lowercase hex (64 characters)",
    FILE_PATTERN: "a plain file name",
    SECTION_ID_PATTERN: "a section number or name such as 5.1 or boxed-warning",
    URL_PATTERN: "an https:// address",
    DOI_PATTERN: "a DOI such as 10.1001/jamapsychiatry.2017.0080 (no https://doi.org/ prefix)",
}


def _article(json_type: str) -> str:
    return {"object": "an object", "array": "an array", "integer": "an integer"}.get(
        json_type, f"a {json_type}"
    )


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def schema_issues(document: dict[str, Any], source: str) -> list[Issue]:
    errors = sorted(
        checklist_validator().iter_errors(document), key=lambda e: list(map(str, e.absolute_path))
    )
    return [Issue(source, jsonfile.pointer(list(e.absolute_path)), _describe(e)) for e in errors]


def model_issues(error: ModelError, source: str) -> list[Issue]:
    """pydantic's ``loc`` tuples rendered as the same JSON pointers the schema uses."""
    return [Issue(source, jsonfile.pointer(_json_path(e["loc"])), e["msg"]) for e in error.errors()]


def _json_path(loc: tuple[int | str, ...]) -> list[str | int]:
    # A source is a tagged union; pydantic puts the tag ("document"/"reference") after
    # the index, where the document has no key.
    path: list[str | int] = []
    for index, part in enumerate(loc):
        after_source = index >= 2 and loc[index - 2] == "sources" and isinstance(loc[index - 1], int)
        if after_source and part in ("document", "reference"):
            continue
        path.append(part)
    return path


def check_document(
    document: dict[str, Any],
    source: str,
    *,
    path: Path | None = None,
    documents: Path | None = None,
) -> tuple[Checklist | None, list[Issue]]:
    """Every issue with one checklist document; the model when there are none."""
    issues = schema_issues(document, source)
    if issues:
        return None, issues
    try:
        checklist = Checklist.model_validate(document)
    except ModelError as error:
        return None, model_issues(error, source)
    issues = list(semantic_issues(checklist, source, path=path, documents=documents))
    return (None if issues else checklist), issues


def check_file(path: Path, *, documents: Path | None = None) -> tuple[Checklist | None, list[Issue]]:
    try:
        document = jsonfile.read(path)
    except InvalidInput as error:
        return None, [Issue(str(path), error.pointer or "", error.message)]
    return check_document(document, str(path), path=path, documents=documents)


def semantic_issues(
    checklist: Checklist, source: str, *, path: Path | None = None, documents: Path | None = None
) -> Iterator[Issue]:
    """What a schema cannot express: uniqueness, references, agreement with the path."""

    def issue(pointer: str, message: str) -> Issue:
        return Issue(source, pointer, message)

    if path is not None:
        if path.parent.name != checklist.id:
            yield issue("/id", f"id {checklist.id!r} differs from its folder {path.parent.name!r}")
        if path.name != f"{checklist.version}.json":
            yield issue(
                "/version",
                f"version {checklist.version!r} differs from the file name {path.name!r}",
            )

    yield from _format_issues(checklist, issue)
    yield from _duplicates("/documents", "document id", [d.id for d in checklist.documents], issue)
    for r, reference in enumerate(checklist.references or ()):
        yield from _duplicates(
            f"/references/{r}/sections", "section id", [x.id for x in reference.sections], issue
        )
    yield from _duplicates("/references", "reference id", [r.id for r in checklist.references or ()], issue)
    yield from _duplicates("/pauses", "pause id", [p.id for p in checklist.pauses or ()], issue)
    yield from _duplicates("/context/routes", "route", [r.id for r in checklist.context.routes], issue)
    yield from _duplicates(
        "/context/populations", "population", [p.id for p in checklist.context.populations], issue
    )
    if checklist.not_done_reasons:
        codes = [r.code for r in checklist.not_done_reasons]
        yield from _duplicates("/not_done_reasons", "reason code", codes, issue)
    yield from _duplicates("/sections", "section id", [s.id for s in checklist.sections], issue)

    seen_items: dict[str, str] = {}
    document_ids = {d.id for d in checklist.documents}
    routes = {r.id for r in checklist.context.routes}
    populations = {p.id for p in checklist.context.populations}
    pauses = list(dict.fromkeys(p.id for p in checklist.pauses or ()))
    for s, section in enumerate(checklist.sections):
        if section.pause is not None and section.pause not in pauses:
            valid = ", ".join(pauses) or "none declared"
            yield issue(f"/sections/{s}/pause", f"unknown pause {section.pause!r}; declared: {valid}")
        yield from _condition_issues(
            f"/sections/{s}/applies_when", section.applies_when, routes, populations, issue
        )
        for i, item in enumerate(section.items):
            here = f"/sections/{s}/items/{i}"
            if item.id in seen_items:
                yield issue(f"{here}/id", f"duplicate item id {item.id!r} (first at {seen_items[item.id]})")
            else:
                seen_items[item.id] = here
            yield from _condition_issues(
                f"{here}/applies_when", item.applies_when, routes, populations, issue
            )
            for k, cited in enumerate(item.sources):
                if isinstance(cited, DocumentSource):
                    if cited.document not in document_ids:
                        yield issue(
                            f"{here}/sources/{k}/document",
                            f"cites document {cited.document!r}, which /documents does not declare",
                        )
                    continue
                cited_reference = checklist.reference(cited.reference)
                if cited_reference is None:
                    yield issue(
                        f"{here}/sources/{k}/reference",
                        f"cites reference {cited.reference!r}, which /references does not declare",
                    )
                elif cited_reference.section(cited.section) is None:
                    declared = ", ".join(dict.fromkeys(x.id for x in cited_reference.sections))
                    yield issue(
                        f"{here}/sources/{k}/section",
                        f"cites section {cited.section!r} of reference {cited.reference!r}, "
                        f"which it does not declare; declared: {declared}",
                    )

    if documents is not None:
        yield from _document_issues(checklist, documents, issue)


def _format_issues(checklist: Checklist, issue: Any) -> Iterator[Issue]:
    """A file that says it is format 1 may not use what format 2 added."""
    if checklist.schema_id != SCHEMA_V1:
        return
    needs = '; declare "$schema": "urn:cdss:schema:checklist:2" to use it'
    if checklist.references is not None:
        yield issue("/references", "references are format 2" + needs)
    if checklist.pauses is not None:
        yield issue("/pauses", "pauses are format 2" + needs)
    for s, section in enumerate(checklist.sections):
        if section.pause is not None:
            yield issue(f"/sections/{s}/pause", "a section's pause is format 2" + needs)
        for i, item in enumerate(section.items):
            for k, cited in enumerate(item.sources):
                if not isinstance(cited, DocumentSource):
                    yield issue(
                        f"/sections/{s}/items/{i}/sources/{k}", "citing a reference is format 2" + needs
                    )


def _duplicates(pointer: str, what: str, values: list[str], issue: Any) -> Iterator[Issue]:
    first: dict[str, int] = {}
    for index, value in enumerate(values):
        if value in first:
            yield issue(
                f"{pointer}/{index}",
                f"duplicate {what} {value!r} (first at {pointer}/{first[value]})",
            )
        else:
            first[value] = index


def _condition_issues(
    pointer: str, condition: Condition | None, routes: set[str], populations: set[str], issue: Any
) -> Iterator[Issue]:
    if condition is None:
        return
    for key, declared, what in (
        ("routes", routes, "route"),
        ("populations", populations, "population"),
    ):
        values = getattr(condition, key) or []
        for index, value in enumerate(values):
            if value not in declared:
                valid = ", ".join(sorted(declared)) or "none declared"
                yield issue(f"{pointer}/{key}/{index}", f"unknown {what} {value!r}; declared: {valid}")
        if len(set(values)) < len(values):
            yield issue(f"{pointer}/{key}", f"lists a {what} more than once")


def _document_issues(checklist: Checklist, folder: Path, issue: Any) -> Iterator[Issue]:
    lines_by_document: dict[str, set[str]] = {}
    for d, document in enumerate(checklist.documents):
        path = folder / document.file
        try:
            data = path.read_bytes()
        except OSError:
            yield issue(f"/documents/{d}/file", f"document {document.file!r} is not in {folder}")
            continue
        actual = hashlib.sha256(data).hexdigest()
        if actual != document.sha256:
            yield issue(
                f"/documents/{d}/sha256",
                f"{document.file} has sha256 {actual[:12]}…, not the declared {document.sha256[:12]}…",
            )
            continue
        text = data.decode("utf-8", errors="replace")
        lines_by_document[document.id] = {line.strip() for line in text.splitlines()}
    for s, section in enumerate(checklist.sections):
        for i, item in enumerate(section.items):
            for k, cited in enumerate(item.sources):
                if not isinstance(cited, DocumentSource):
                    continue
                lines = lines_by_document.get(cited.document)
                if lines is not None and cited.heading.strip() not in lines:
                    yield issue(
                        f"/sections/{s}/items/{i}/sources/{k}/heading",
                        f"heading {cited.heading!r} is not a line of document {cited.document!r}",
                    )


def lock_issues(folder: Path) -> list[Issue]:
    """Released versions must still hash as locked, exist, and every version be released."""
    source = str(folder / LOCK_FILE)
    try:
        released = read_lock(folder)
    except InvalidInput as error:
        return [Issue(source, error.pointer or "", error.message)]
    issues: list[Issue] = []
    on_disk = {(e.id, e.version): e for e in scan_folder(folder)}
    for checklist_id, versions in released.items():
        for version, locked in versions.items():
            pointer = jsonfile.pointer(["released", checklist_id, version])
            entry = on_disk.get((checklist_id, version))
            if entry is None:
                issues.append(Issue(source, pointer, f"released version {checklist_id}@{version} is missing"))
                continue
            try:
                actual = content_hash(jsonfile.read(entry.path))
            except InvalidInput:
                continue  # the file's own issues are reported by check_file
            if actual != locked:
                issues.append(
                    Issue(
                        str(entry.path),
                        "",
                        f"released {entry.ref} changed (content hash {actual[:12]}…, locked "
                        f"{locked[:12]}…); a released version never changes: publish a new version",
                    )
                )
    for (checklist_id, version), entry in on_disk.items():
        if version not in released.get(checklist_id, {}):
            issues.append(
                Issue(
                    str(entry.path),
                    "",
                    f"{entry.ref} is not released; run `cdss release {entry.ref}`",
                )
            )
    return issues


Design = Literal["none", "newest", "all"]
"""Which files get design warnings: none, the newest version of each checklist, or all."""


def _newest(entries: list[Entry]) -> set[Path]:
    """The newest version of each checklist (drafts included: that is what an author edits)."""
    newest: dict[str, Entry] = {}
    for entry in entries:
        if entry.id not in newest or version_key(entry.version) > version_key(newest[entry.id].version):
            newest[entry.id] = entry
    return {entry.path for entry in newest.values()}


def _checked(path: Path, documents: Path | None, warn: bool) -> list[Issue]:
    """A file's errors, then (when asked and the file is valid) its design warnings."""
    from cdss.design import design_warnings

    checklist, issues = check_file(path, documents=documents)
    if warn and checklist is not None:
        issues.extend(design_warnings(checklist, str(path)))
    return issues


def check_catalog(
    catalog: Catalog, *, documents: Path | None = None, design: Design = "none"
) -> tuple[int, list[Issue]]:
    """Every version in every folder, plus each folder's lock: (files checked, issues).

    Issues include design warnings (``severity="warning"``) for the files ``design`` selects.
    """
    issues: list[Issue] = []
    count = 0
    for folder in catalog.folders:
        entries = list(scan_folder(folder))
        newest = _newest(entries)
        for entry in entries:
            count += 1
            warn = design == "all" or (design == "newest" and entry.path in newest)
            issues.extend(_checked(entry.path, documents, warn))
        issues.extend(lock_issues(folder))
    return count, issues


def check_paths(
    paths: list[Path], *, documents: Path | None = None, design: Design = "none"
) -> tuple[int, list[Issue]]:
    """Files, checklist folders (``<id>/``) or catalog folders, each checked as what it is.

    A file named here gets design warnings unless ``design`` is "none"; in a folder,
    ``design`` selects the newest version of each checklist or all of them.
    """
    issues: list[Issue] = []
    count = 0
    for path in paths:
        if path.is_dir() and ((path / LOCK_FILE).is_file() or any(scan_folder(path))):
            folder_count, folder_issues = check_catalog(Catalog([path]), documents=documents, design=design)
            count += folder_count
            issues.extend(folder_issues)
            continue
        files = sorted(p for p in path.glob("*.json") if p.name != LOCK_FILE) if path.is_dir() else [path]
        newest = _newest([Entry(f.parent.name, f.stem, f, f.parent.parent) for f in files])
        for file in files:
            count += 1
            warn = design == "all" or (design == "newest" and (file in newest or not path.is_dir()))
            issues.extend(_checked(file, documents, warn))
            if (file.parent.parent / LOCK_FILE).is_file():
                issues.extend(i for i in lock_issues(file.parent.parent) if i.file == str(file))
    return count, issues
