"""Who acts: reviewer ids normalised one way everywhere, and the provenance of a decision.

A reviewer id is compared and stored only in its normal form: Unicode NFKC, case-folded,
surrounding whitespace trimmed. Ids holding control, format (zero-width, bidi) or separator
characters other than a plain space are refused: ``Casey``, ``casey `` and a fullwidth
``casey`` are all ``casey``, and ``casey\u200b`` is an error, never a second person.
"""

from __future__ import annotations

import unicodedata
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from carebound._errors import CareboundError

Channel = Literal["cli", "web", "api", "library", "scenario", "worker"]
"""Where a decision or a PHI read came from."""

PrincipalKind = Literal["reviewer", "service", "system", "unauthenticated"]
"""What kind of principal acted: a signed-in/token-bound reviewer, a service token acting as
itself, carebound's own worker (timeouts), or an explicitly unauthenticated development mode."""

_REFUSED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
MAX_ID_LENGTH = 128


class InvalidIdentifierError(CareboundError):
    """A reviewer or principal id holds characters that could make two ids look alike."""


def normalize_reviewer_id(raw: str, *, what: str = "reviewer id") -> str:
    """Return the one stored and compared form of a reviewer id.

    Raises:
        InvalidIdentifierError: the id is empty, too long, or holds control, zero-width or other
            invisible characters.
    """
    text = unicodedata.normalize("NFKC", raw).strip().casefold()
    text = unicodedata.normalize("NFKC", text)
    if not text:
        raise InvalidIdentifierError(f"the {what} is empty", hint="give a non-empty id")
    if len(text) > MAX_ID_LENGTH:
        raise InvalidIdentifierError(
            f"the {what} is longer than {MAX_ID_LENGTH} characters", hint="use a shorter id"
        )
    for ch in text:
        category = unicodedata.category(ch)
        if category in _REFUSED_CATEGORIES or (category == "Zs" and ch != " "):
            raise InvalidIdentifierError(
                f"the {what} {raw.encode('unicode_escape').decode('ascii')!r} holds the invisible "
                f"or control character U+{ord(ch):04X}",
                hint="type the id again with plain letters, digits, '.', '_' or '-'",
            )
    return text


class Provenance(BaseModel):
    """How a decision (or a PHI read) reached carebound, recorded with it in the audit trail.

    Attributes:
        channel: cli, web, api, library, scenario or worker.
        principal: the authenticated principal's id: a reviewer id (normalised), ``token:NAME``
            for a service token acting as itself, or ``system`` for carebound's own worker.
        kind: see :data:`PrincipalKind`.
        authenticated: False only in the explicit development mode (scenario runs, a local store
            opened with ``CAREBOUND_UNAUTHENTICATED=1``, a library caller that passes none).
        token: the name (never the secret) of the API or CLI token used, if any.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    channel: Channel = "library"
    principal: str = Field(default="", description="Who acted, as authenticated.")
    kind: PrincipalKind = "unauthenticated"
    authenticated: bool = False
    token: str | None = None


UNAUTHENTICATED_LIBRARY = Provenance()
"""The provenance of a decision made through the library with no principal given."""
