"""Limits on what a user may hand carebound, and the one loader of user-supplied YAML and JSON.

Every file a user gives (scenario, policy pack, FHIR case and world bundles, ERP data) is read
through :func:`load_document` or checked with :func:`check_tree`, so no input can crash the
parser or a later step: the file is at most :data:`MAX_FILE_BYTES`, nested at most
:data:`MAX_DEPTH` levels, at most :data:`MAX_NODES` values (YAML aliases counted each time they
are used), and its text holds no lone surrogate (it could never be stored) and, in files, no
control character (a terminal escape, a NUL). Durations and instants from input are bounded
(:data:`MAX_DURATION`, :data:`EARLIEST`, :data:`LATEST`) so date arithmetic cannot overflow.

Every refusal is an :class:`InputLimitError` naming the source, the place inside it, the
problem and the limit; loaders re-raise it as their own error type.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, AwareDatetime, Field

from carebound._errors import CareboundError

MAX_FILE_BYTES = 16 * 1024 * 1024
"""Largest YAML or JSON file read (16 MiB)."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and lists in one document (FHIR cases use about 10)."""
MAX_NODES = 1_000_000
"""Most values (scalars, mappings, lists) in one document, YAML alias uses included."""
MAX_DURATION = timedelta(days=3660)
"""Longest duration accepted from input (about ten years): a wait, a deadline, a horizon."""
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
"""Earliest instant accepted from input."""
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
"""Latest instant accepted from input (far enough below year 9999 that adding
:data:`MAX_DURATION` twice cannot overflow)."""

# C0 controls but tab, line feed and carriage return; DEL; C1 controls.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")

Format = Literal["yaml", "json"]
# libyaml's parser when installed (several times faster); its events and errors are PyYAML's.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class InputLimitError(CareboundError):
    """User-supplied input is too large, too deep, or holds text that cannot be used.

    Attributes:
        source: the file (or other origin) named in the message.
        path: where inside the document, e.g. ``reviewers[0].name`` (``""``: the whole of it).
        problem: what is wrong there, with the limit that applies.
    """

    def __init__(self, source: str, path: str, problem: str, *, hint: str) -> None:
        self.source = source
        self.path = path
        self.problem = problem
        where = f"{source}: {path}" if path else source
        super().__init__(f"{where}: {problem}", hint=hint)


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits one check applies (the module constants by default)."""

    max_bytes: int = MAX_FILE_BYTES
    max_depth: int = MAX_DEPTH
    max_nodes: int = MAX_NODES
    controls: bool = False
    """Whether text may hold control characters (data from other systems may; files not)."""


def limits() -> Limits:
    """The limits in force (read at call time, so tests can lower the module constants)."""
    return Limits(max_bytes=MAX_FILE_BYTES, max_depth=MAX_DEPTH, max_nodes=MAX_NODES)


def text_problem(value: str, *, controls: bool = False) -> str | None:
    """Why ``value`` cannot be used as text (None if it can): a lone surrogate, or (unless
    ``controls``) a control character; the message names the character and its offset."""
    found = _SURROGATE.search(value)
    if found is not None:
        return (
            f"holds a lone surrogate (U+{ord(found.group()):04X}) at character "
            f"{found.start()}: not valid Unicode text"
        )
    if not controls:
        found = _CONTROL.search(value)
        if found is not None:
            return (
                f"holds a control character (U+{ord(found.group()):04X}) at character "
                f"{found.start()}"
            )
    return None


def _check_text(value: str) -> str:
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(f"text {problem}; remove it")
    return value


SafeText = Annotated[str, AfterValidator(_check_text)]
"""A string with no lone surrogate and no control character but tab and line breaks."""
BoundedDuration = Annotated[timedelta, Field(ge=timedelta(0), le=MAX_DURATION)]
"""A duration from input: not negative, at most :data:`MAX_DURATION`."""
BoundedInstant = Annotated[AwareDatetime, Field(ge=EARLIEST, le=LATEST)]
"""An instant from input: with a time zone (``Z`` or ``+01:00``), between 1900 and 2200."""


_Path = tuple[Any, str | int] | None
"""Where a node sits, as a linked list (parent path, key): O(1) per node, spelled out only
for an error."""


def _where(path: _Path, limit: int = 12) -> str:
    keys: list[str | int] = []
    while path is not None:
        path, key = path
        keys.append(key)
    keys.reverse()
    shown = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keys[:limit])
    return shown.lstrip(".") + ("..." if len(keys) > limit else "")


_FILE_TEXT = re.compile(f"{_SURROGATE.pattern[:-1]}{_CONTROL.pattern[1:-1]}]")


def check_tree(data: Any, *, source: str, limit: Limits | None = None) -> None:
    """Walk a decoded document (without recursion) and refuse what breaks the limits.

    Raises:
        InputLimitError: too deep, too many values, or a string (key or value) that is not
            usable text.
    """
    limit = limit or limits()
    bad_text = (_SURROGATE if limit.controls else _FILE_TEXT).search
    stack: list[tuple[Any, int, _Path]] = [(data, 0, None)]
    nodes = 0
    while stack:
        value, depth, path = stack.pop()
        nodes += 1
        if type(value) is str:
            if bad_text(value):
                _text_refused(value, source, path, limit)
            continue
        if isinstance(value, Mapping):
            items: Any = value.items()
        elif isinstance(value, list | tuple):
            items = enumerate(value)
        else:
            continue
        if depth >= limit.max_depth:
            raise InputLimitError(
                source,
                _where(path),
                f"nested deeper than {limit.max_depth} levels (the limit)",
                hint="flatten the document: no carebound input needs that much nesting",
            )
        if nodes + len(value) > limit.max_nodes:
            raise InputLimitError(
                source,
                "",
                f"holds more than {limit.max_nodes:,} values (the limit)",
                hint="split the input, or remove repeated YAML aliases",
            )
        for key, item in items:
            if type(key) is str and bad_text(key):
                _text_refused(key, source, path, limit, what="a key ")
            stack.append((item, depth + 1, (path, key)))


def _text_refused(value: str, source: str, path: _Path, limit: Limits, what: str = "") -> None:
    problem = text_problem(value, controls=limit.controls)
    if problem is not None:
        hint = "remove the character (re-type the text)"
        raise InputLimitError(source, _where(path), f"{what}{problem}", hint=hint)


def read_text(path: Path, *, limit: Limits | None = None) -> str:
    """The UTF-8 text of a user-supplied file, refused beyond the size limit.

    Raises:
        InputLimitError: missing, unreadable, too large, or not UTF-8.
    """
    limit = limit or limits()
    source = str(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(limit.max_bytes + 1)
    except OSError as exc:
        raise InputLimitError(
            source,
            "",
            f"cannot read the file: {exc.strerror or exc}",
            hint="check the path and the file's permissions",
        ) from None
    if len(data) > limit.max_bytes:
        raise InputLimitError(
            source,
            "",
            f"is larger than {limit.max_bytes:,} bytes (the limit)",
            hint="split the file; no carebound input needs to be that large",
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputLimitError(
            source,
            "",
            f"not UTF-8 text: the byte at offset {exc.start} is not valid UTF-8",
            hint="save the file as UTF-8",
        ) from None


def parse_text(text: str, fmt: Format, *, source: str, limit: Limits | None = None) -> Any:
    """Parse YAML or JSON text under the limits; the result passed :func:`check_tree`.

    Raises:
        InputLimitError: a syntax error (with line and column) or a limit broken.
    """
    limit = limit or limits()
    data = _parse_yaml(text, source, limit) if fmt == "yaml" else _parse_json(text, source)
    check_tree(data, source=source, limit=limit)
    return data


def load_document(path: Path, fmt: Format, *, limit: Limits | None = None) -> Any:
    """Read and parse a user-supplied YAML or JSON file under the limits.

    Raises:
        InputLimitError: unreadable, too large, malformed, too deep, too many values, or text
            that cannot be used; the message names the file and the place.
    """
    limit = limit or limits()
    return parse_text(read_text(path, limit=limit), fmt, source=str(path), limit=limit)


def _parse_json(text: str, source: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InputLimitError(
            source,
            "",
            f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
            hint="fix the JSON syntax at that position",
        ) from None
    except RecursionError:
        raise InputLimitError(
            source,
            "",
            f"nested deeper than {MAX_DEPTH} levels (the limit)",
            hint="flatten the document: no carebound input needs that much nesting",
        ) from None
    except ValueError as exc:
        raise InputLimitError(
            source, "", f"not valid JSON: {exc}", hint="JSON has no NaN or Infinity"
        ) from None


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def _parse_yaml(text: str, source: str, limit: Limits) -> Any:
    try:
        _check_yaml_events(text, source, limit)
        return yaml.load(text, Loader=_SafeLoader)  # a safe loader: plain data only
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = str(getattr(exc, "problem", None) or exc)
        if "nesting depth" in problem:  # libyaml stops at its own limit (1,000) before ours
            raise InputLimitError(
                source,
                "",
                f"nested deeper than {limit.max_depth} levels (the limit){where}",
                hint="flatten the document: no carebound input needs that much nesting",
            ) from None
        raise InputLimitError(
            source,
            "",
            f"not valid YAML{where}: {problem}",
            hint="fix the YAML syntax at that position",
        ) from None
    except (ValueError, OverflowError) as exc:
        # PyYAML's constructors raise these for impossible values, e.g. a date 2026-02-30.
        raise InputLimitError(
            source, "", f"holds a value YAML cannot read: {exc}", hint="correct that value"
        ) from None


def _check_yaml_events(text: str, source: str, limit: Limits) -> None:
    """Depth and size from the parser's event stream (iterative) before the recursive
    composer runs: a 10,000-deep document never reaches it."""
    depth = 0
    for events, event in enumerate(yaml.parse(text, Loader=_SafeLoader), start=1):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > limit.max_depth:
                mark = event.start_mark
                at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
                raise InputLimitError(
                    source,
                    "",
                    f"nested deeper than {limit.max_depth} levels (the limit){at}",
                    hint="flatten the document: no carebound input needs that much nesting",
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        if events > limit.max_nodes:
            raise InputLimitError(
                source,
                "",
                f"holds more than {limit.max_nodes:,} values (the limit)",
                hint="split the input",
            )
