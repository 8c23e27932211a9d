"""Checking resources against the FHIR R4B models of ``fhir.resources`` (the optional ``fhir`` extra).

cdss builds its resources as plain JSON; every one is validated here before
it is written, and every resource read is validated here before it is used.
Without the extra installed, the FHIR commands stop with one line naming it.
"""

from __future__ import annotations

from typing import Any

from cdss.errors import CdssError, Issue

EXTRA = "fhir"
MISSING = (
    f"FHIR export and import need the optional '{EXTRA}' extra (fhir.resources): pip install 'cdss[{EXTRA}]'"
)


class MissingExtra(CdssError):
    """``fhir.resources`` is not installed."""


def _model(resource_type: str) -> Any:
    try:
        from fhir.resources.R4B import get_fhir_model_class
    except ImportError:
        raise MissingExtra(MISSING) from None
    return get_fhir_model_class(resource_type)


def require() -> None:
    """Say at once, before any work, when the extra is missing."""
    _model("Bundle")


def _pointer(location: tuple[int | str, ...]) -> str:
    return "".join(f"/{str(part).replace('~', '~0').replace('/', '~1')}" for part in location)


def problems(resource: Any, source: str, at: str = "") -> list[Issue]:
    """What the R4B model of ``resource``'s type finds wrong, as issues at JSON pointers under ``at``."""
    from pydantic import ValidationError

    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        return [Issue(source, at, "expected a FHIR resource: a JSON object with a resourceType")]
    try:
        model = _model(resource["resourceType"])
    except KeyError:
        return [Issue(source, f"{at}/resourceType", f"unknown resourceType {resource['resourceType']!r}")]
    try:
        model.model_validate(resource)
    except ValidationError as error:
        return [
            Issue(source, at + _pointer(tuple(e["loc"])), e["msg"]) for e in error.errors(include_url=False)
        ]
    return []


def check(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource cdss built, refused loudly if the R4B model does not accept it (that is a bug in cdss)."""
    found = problems(resource, f"{resource.get('resourceType')}/{resource.get('id')}")
    if found:
        raise AssertionError("cdss built an invalid FHIR resource: " + "; ".join(map(str, found)))
    return resource
