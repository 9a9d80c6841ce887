"""Reading FHIR R4B JSON: decode, check, validate with fhir.resources, and explain each failure.

Order of checks: JSON syntax (line and column), the top-level and every nested ``resourceType``
(fhir.resources fails with a bare ``KeyError`` on an unknown one), the fhir.resources R4B model
(types, cardinality, date formats), then the required code bindings that fhir.resources does not
enforce (see ``_bindings``). Messages never echo free-text values from the input: they may be PHI.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from carebound._limits import MAX_DEPTH, InputLimitError, check_tree, limits, read_text
from carebound.fhir._bindings import check_bindings
from carebound.fhir._errors import FhirInputError, FhirIssue

R = TypeVar("R", bound=Resource)

_SPEC = "https://hl7.org/fhir/R4B"
_DATE_HINT = (
    "FHIR date forms: date YYYY, YYYY-MM or YYYY-MM-DD; dateTime adds Thh:mm:ss and a timezone "
    "(2026-01-02T09:30:00-05:00); instant (e.g. DocumentReference.date) needs the full date, "
    "time and timezone (2026-01-02T09:30:00Z)"
)
_TYPE_ERRORS = {
    "string_type",
    "list_type",
    "dict_type",
    "bool_type",
    "bool_parsing",
    "int_type",
    "int_parsing",
    "int_from_float",
    "float_type",
    "float_parsing",
    "decimal_type",
    "decimal_parsing",
    "model_type",
    "model_attributes_type",
    "model_validation_format",
}


def load_bundle(path: Path) -> Bundle:
    """Read and validate a FHIR R4B Bundle from a JSON file.

    Raises:
        FhirInputError: the file cannot be read, is not JSON, or is not a valid R4B Bundle.
    """
    return load_resource(path, Bundle)


def parse_bundle(data: bytes | str | Mapping[str, Any], *, source: str) -> Bundle:
    """Validate a FHIR R4B Bundle given as JSON bytes, JSON text or a decoded dict.

    Args:
        data: the Bundle; bytes may start with a UTF-8 byte-order mark.
        source: where the data came from (a file name, a queue message id); named in errors.

    Raises:
        FhirInputError: not JSON, or not a valid R4B Bundle.
    """
    return parse_resource(data, Bundle, source=source)


def load_resource(path: Path, model: type[R]) -> R:
    """Read and validate one FHIR R4B resource of type ``model`` from a JSON file.

    Raises:
        FhirInputError: the file cannot be read, is not JSON, or is not a valid ``model``.
    """
    document = read_json_file(path)
    return parse_resource(document, model, source=str(path))


def load_bundle_json(path: Path) -> dict[str, Any]:
    """Read a FHIR R4B Bundle file, validate it as :func:`load_bundle` does, and return its
    JSON (read once).

    Raises:
        FhirInputError: the file cannot be read, is not JSON, or is not a valid R4B Bundle.
    """
    document = read_json_file(path)
    parse_resource(document, Bundle, source=str(path))
    return dict(document) if isinstance(document, Mapping) else {}


def read_json_file(path: Path) -> Any:
    """A user-supplied FHIR JSON file, decoded under the input limits (``carebound._limits``):
    size, depth, and text without lone surrogates or control characters.

    Raises:
        FhirInputError: unreadable, too large, not JSON, or beyond a limit.
    """
    source = str(path)
    try:
        document = _decode(read_text(Path(path)), source)
        # A file is held to the stricter limits: no control characters in its text.
        check_tree(document, source=source, limit=limits())
    except InputLimitError as exc:
        raise _limit_error(exc) from None
    return document


def parse_resource(data: bytes | str | Mapping[str, Any], model: type[R], *, source: str) -> R:
    """Validate one FHIR R4B resource of type ``model`` (e.g. ``Patient``, ``Bundle``).

    Args:
        data: JSON bytes (UTF-8, optional byte-order mark), JSON text, or a decoded dict.
        model: the fhir.resources R4B class expected at the top level.
        source: where the data came from; named in errors.

    Raises:
        FhirInputError: with the JSON path of each problem and a hint how to fix the first.
    """
    document = _decode(data, source) if isinstance(data, bytes | str) else data
    try:
        # Data from other systems may carry control characters (terminals strip them); it may
        # not be too deep, too large or hold lone surrogates (see carebound._limits).
        check_tree(document, source=source, limit=replace(limits(), controls=True))
    except InputLimitError as exc:
        raise _limit_error(exc) from None
    expected = model.get_resource_type()
    if not isinstance(document, Mapping):
        raise FhirInputError(
            source,
            [FhirIssue("", f"the JSON is {_json_kind(document)}, not a resource object")],
            hint=f'a FHIR resource is a JSON object: {{"resourceType": "{expected}", ...}}',
        )
    try:
        issues = _check_resource_types(document, expected)
    except RecursionError:
        issues = [FhirIssue("", "the JSON is nested too deeply to be a FHIR resource")]
    if issues:
        raise FhirInputError(
            source,
            issues,
            hint=(
                "resourceType names a FHIR R4B resource, case-sensitive (e.g. DocumentReference); "
                f"this call reads a {expected}"
            ),
        )
    try:
        resource = model.model_validate(dict(document))
    except ValidationError as exc:
        errors = exc.errors()
        raise FhirInputError(
            source,
            [_issue(error) for error in errors],
            hint=_hint(errors[0], document),
        ) from None
    except (KeyError, TypeError, ValueError, RecursionError) as exc:
        # fhir.resources internals can fail this way on input our checks did not foresee.
        raise FhirInputError(
            source,
            [FhirIssue("", f"fhir.resources could not read the input ({type(exc).__name__})")],
            hint=f"compare the input with the {expected} definition at {_SPEC}/",
        ) from None
    issues = check_bindings(document)
    if issues:
        raise FhirInputError(
            source,
            issues,
            hint="use one of the allowed codes: FHIR R4 binds these elements to a required "
            "value set",
        )
    return resource


def _decode(data: bytes | str, source: str) -> object:
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise FhirInputError(
                source,
                [
                    FhirIssue(
                        "", f"not UTF-8 text: the byte at offset {exc.start} is not valid UTF-8"
                    )
                ],
                hint="FHIR JSON is UTF-8: re-export or convert the file to UTF-8",
            ) from None
    else:
        text = data.removeprefix("\ufeff")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise FhirInputError(
            source,
            [FhirIssue("", f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")],
            hint="fix the JSON syntax at that position (a missing comma, quote or bracket is "
            "the usual cause); `python -m json.tool FILE` shows the same position",
        ) from None
    except RecursionError:
        raise FhirInputError(
            source,
            [FhirIssue("", f"nested deeper than {MAX_DEPTH} levels (the limit)")],
            hint="flatten the document: no FHIR resource needs that much nesting",
        ) from None
    except ValueError as exc:
        raise FhirInputError(
            source,
            [FhirIssue("", f"invalid JSON: {exc}")],
            hint="FHIR JSON allows no NaN or Infinity",
        ) from None


def _limit_error(exc: InputLimitError) -> FhirInputError:
    return FhirInputError(exc.source, [FhirIssue(exc.path, exc.problem)], hint=exc.hint)


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def _json_kind(value: object) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else type(value).__name__


@cache
def _is_resource_type(name: str) -> bool:
    try:
        klass = get_fhir_model_class(name)
    except ValueError:
        return False
    return bool(klass.has_resource_base())


def _check_resource_types(document: Mapping[str, Any], expected: str) -> list[FhirIssue]:
    found = document.get("resourceType")
    if found is None:
        return [FhirIssue("resourceType", f'missing; expected "resourceType": "{expected}"')]
    if found != expected:
        shown = repr(found) if isinstance(found, str) and len(found) <= 60 else _json_kind(found)
        return [FhirIssue("resourceType", f"is {shown}, expected {expected!r}")]
    issues: list[FhirIssue] = []
    _walk(document, "", issues, expects_resource=False)
    return issues


def _walk(node: object, path: str, issues: list[FhirIssue], *, expects_resource: bool) -> None:
    """Check every nested resource's resourceType, which fhir.resources cannot report itself."""
    if isinstance(node, Mapping):
        if "resourceType" in node:
            found = node["resourceType"]
            if not isinstance(found, str) or not _is_resource_type(found):
                shown = repr(found) if isinstance(found, str) and len(found) <= 60 else "value"
                issues.append(
                    FhirIssue(
                        _join(path, "resourceType"),
                        f"{shown} is not a FHIR R4B resource type",
                    )
                )
                return
        elif expects_resource:
            issues.append(FhirIssue(path, "a resource here needs a resourceType"))
            return
        in_entry = path.endswith("]") and path.rsplit("[", 1)[0].endswith("entry")
        for key, child in node.items():
            child_is_resource = key == "contained" or (key == "resource" and in_entry)
            _walk(child, _join(path, str(key)), issues, expects_resource=child_is_resource)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            _walk(item, f"{path}[{i}]", issues, expects_resource=expects_resource)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _json_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part != "root":
            path = _join(path, "resourceType" if part == "resource_type" else part)
    return path


def _issue(error: ErrorDetails) -> FhirIssue:
    kind = error["type"]
    message = error["msg"].removeprefix("Value error, ")
    if kind == "extra_forbidden":
        problem = "not an element of this type in FHIR R4B"
    elif kind.endswith("missing"):
        problem = "required element is missing"
    elif "does not match spec regex" in message:
        problem = f"not a valid FHIR {message.split(' ', 1)[0].lower()}"
    elif kind in _TYPE_ERRORS:
        problem = f"{message} (got {_json_kind(error.get('input'))})"
    else:
        problem = message
    return FhirIssue(_json_path(error["loc"]), problem)


def _hint(error: ErrorDetails, document: Mapping[str, Any]) -> str:
    resource_type = _resource_type_at(document, error["loc"])
    page = f"{_SPEC}/{resource_type.lower()}.html"
    names = [part for part in error["loc"] if isinstance(part, str) and part != "root"]
    name = names[-1] if names else resource_type
    kind = error["type"]
    if kind == "extra_forbidden":
        return (
            f"remove {name!r} or correct its spelling; {page} lists the elements of "
            f"{resource_type} (choice elements carry their type: valueString, onsetDateTime)"
        )
    if kind.endswith("missing"):
        return f"add the required element {name!r} (see {page})"
    if "regex" in error["msg"] or "date" in kind:
        return _DATE_HINT
    return f"give {name!r} the type and form FHIR R4B defines for it (see {page})"


def _resource_type_at(document: Mapping[str, Any], loc: tuple[int | str, ...]) -> str:
    """The resourceType of the innermost resource on the way to ``loc``."""
    found = str(document.get("resourceType", "Resource"))
    node: object = document
    for part in loc:
        if isinstance(node, Mapping) and isinstance(part, str):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            break
        if isinstance(node, Mapping) and isinstance(node.get("resourceType"), str):
            found = node["resourceType"]
    return found
