"""The audit trail's keys: which key signs new events, and which keys may verify old ones.

Every audit event carries the id of the key that signed it and an HMAC-SHA256 made with that
key, so someone who can write to Redis but does not hold the key cannot rewrite the trail and
recompute a consistent chain. Keys come from configuration, first match wins:

``CAREBOUND_AUDIT_KEY``
    The signing key, ``ID:SECRET`` (or a bare ``SECRET``, whose id is ``default``).
``CAREBOUND_AUDIT_KEYS``
    Older keys, kept to verify events they signed: ``ID:SECRET,ID:SECRET,...``.
``$CAREBOUND_HOME/audit.key``
    Without ``CAREBOUND_AUDIT_KEY``: a key file, one ``ID:SECRET`` per line, the first line
    signs. Generated (mode 0600, id ``local-<random>``) on first use, so the embedded store
    works with no setup. Read once per process: restart processes after editing it.

Rotation: make the new key the signing key and keep the old one among the verifying keys
(``CAREBOUND_AUDIT_KEYS``, or a later line of the key file); events keep the id of the key that
signed them, so the whole trail still verifies. Drop an old key only when no event it signed
needs verifying any more.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import re
import secrets
import stat
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carebound.audit._errors import AuditKeyError

KEY_VAR = "CAREBOUND_AUDIT_KEY"
"""The signing key, ``ID:SECRET`` or ``SECRET``."""

KEYS_VAR = "CAREBOUND_AUDIT_KEYS"
"""Older keys that still verify: ``ID:SECRET,ID:SECRET``."""

KEY_FILE = "audit.key"
"""The key file's name in ``CAREBOUND_HOME``."""

DEFAULT_KEY_ID = "default"
"""The id of a ``CAREBOUND_AUDIT_KEY`` given without one."""

MIN_SECRET_CHARS = 16
"""Shortest secret accepted: a guessable key would make the MAC worthless."""

_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_HINT = (
    "give keys as ID:SECRET (ID: letters, digits, '_', '.', '-'; SECRET: at least "
    f"{MIN_SECRET_CHARS} characters), e.g. CAREBOUND_AUDIT_KEY=k2026:$(python -c "
    "'import secrets; print(secrets.token_hex(32))')"
)


@dataclass(frozen=True)
class AuditKeyring:
    """The key that signs new audit events and every key that may verify stored ones.

    Args:
        signing_id: id of the signing key (stored with each event it signs).
        keys: every known key by id, the signing key included.
    """

    signing_id: str
    keys: Mapping[str, bytes] = field(repr=False)  # secrets: never in a repr or a log line

    def __post_init__(self) -> None:
        if self.signing_id not in self.keys:
            raise AuditKeyError(
                f"the signing audit key {self.signing_id!r} is not among the keys", hint=_HINT
            )

    @classmethod
    def of(cls, signing: str, *older: str) -> AuditKeyring:
        """A keyring from ``ID:SECRET`` texts: the first signs, the others only verify."""
        parsed = [_parse_key(text, where="audit key") for text in (signing, *older)]
        return cls(parsed[0][0], _by_id(parsed, where="audit keys"))

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, home: Path | None = None
    ) -> AuditKeyring:
        """The keyring configured by the environment (see the module docs), generating the
        key file in ``home`` (``CAREBOUND_HOME``) on first use when no key is configured.

        Raises:
            AuditKeyError: a key is malformed, or the key file cannot be used.
        """
        env = os.environ if environ is None else environ
        if home is None:
            from carebound.store._settings import StoreSettings

            home = StoreSettings.from_env(env).home
        older = [
            _parse_key(part, where=KEYS_VAR)
            for part in env.get(KEYS_VAR, "").split(",")
            if part.strip()
        ]
        signing_text = env.get(KEY_VAR, "").strip()
        if signing_text:
            signing = _parse_key(signing_text, where=KEY_VAR, bare_ok=True)
            return cls(signing[0], _by_id([signing, *older], where=f"{KEY_VAR}/{KEYS_VAR}"))
        from_file = _key_file(home / KEY_FILE)
        return cls(from_file[0][0], _by_id([*from_file, *older], where=str(home / KEY_FILE)))

    def sign(self, message: bytes) -> str:
        """HMAC-SHA256 (hex) of ``message`` with the signing key."""
        return _hmac_sha256(self.keys[self.signing_id], message)

    def check(self, key_id: str | None, message: bytes, mac: str | None) -> str | None:
        """None when ``mac`` is the HMAC of ``message`` under key ``key_id``; else why not."""
        if key_id is None or mac is None:
            return "not signed (no key id or MAC): written without the audit key, or stripped"
        key = self.keys.get(key_id)
        if key is None:
            return (
                f"signed with audit key {key_id!r}, which is not configured: add it to "
                f"{KEYS_VAR} to verify events it signed"
            )
        expected = _hmac_sha256(key, message)
        if not hmac.compare_digest(expected, mac):
            return f"MAC mismatch under key {key_id!r}: forged or altered without the audit key"
        return None


_BLOCK = 64
"""SHA-256's block size: the HMAC key is padded (or first hashed) to it (RFC 2104)."""
_INNER = bytes(b ^ 0x36 for b in range(256))
_OUTER = bytes(b ^ 0x5C for b in range(256))


@functools.lru_cache(maxsize=16)
def _pads(key: bytes) -> tuple[Any, Any]:
    """SHA-256 states that have read the key's inner and outer pads, copied for each MAC."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner = hashlib.sha256(key.translate(_INNER))
    outer = hashlib.sha256(key.translate(_OUTER))
    return inner, outer


def _hmac_sha256(key: bytes, message: bytes) -> str:
    """``hmac.new(key, message, hashlib.sha256).hexdigest()``, from the key's pads as hashed
    once (a start signs about twenty audit events; OpenSSL's HMAC set-up cost more than the
    hashing of an event's short message)."""
    inner, outer = _pads(key)
    inner = inner.copy()
    inner.update(message)
    outer = outer.copy()
    outer.update(inner.digest())
    return str(outer.hexdigest())


def _parse_key(text: str, *, where: str, bare_ok: bool = False) -> tuple[str, bytes]:
    text = text.strip()
    key_id, sep, secret = text.partition(":")
    if not sep:
        if not bare_ok:
            raise AuditKeyError(f"{where}: a key must be ID:SECRET", hint=_HINT)
        key_id, secret = DEFAULT_KEY_ID, text
    if not _KEY_ID.match(key_id):
        raise AuditKeyError(f"{where}: key id {key_id[:40]!r} is not a valid id", hint=_HINT)
    if len(secret) < MIN_SECRET_CHARS:
        raise AuditKeyError(
            f"{where}: the secret of key {key_id!r} has {len(secret)} characters; at least "
            f"{MIN_SECRET_CHARS} are needed",
            hint=_HINT,
        )
    return key_id, secret.encode()


def _by_id(keys: list[tuple[str, bytes]], *, where: str) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for key_id, secret in keys:
        if key_id in found and found[key_id] != secret:
            raise AuditKeyError(
                f"{where}: key id {key_id!r} is given twice with different secrets",
                hint="each key id names one secret for good: give a new key a new id",
            )
        found[key_id] = secret
    return found


_file_lock = threading.Lock()


def _key_file(path: Path) -> list[tuple[str, bytes]]:
    """The keys of the key file at ``path``, created with a fresh key if it does not exist."""
    with _file_lock:
        if not path.exists():
            _create_key_file(path)
        try:
            mode = path.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise AuditKeyError(
                    f"the audit key file {path} can be read by other users "
                    f"(mode {stat.S_IMODE(mode):o})",
                    hint=f"chmod 600 {path}",
                )
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise AuditKeyError(
                f"cannot read the audit key file {path}: {exc.strerror or exc}",
                hint=f"set {KEY_VAR}, or make {path} readable by this user",
            ) from exc
    keys = [
        _parse_key(line, where=f"{path} line {n}")
        for n, line in enumerate(lines, 1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not keys:
        raise AuditKeyError(f"the audit key file {path} holds no key", hint=_HINT)
    return keys


def _create_key_file(path: Path) -> None:
    """Write a new key file atomically (0600): another process racing us reads the winner's."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            # A key id of its own: a process on another host that generated another file
            # reports "signed with a key that is not configured", not a bare MAC mismatch.
            out.write(f"local-{secrets.token_hex(4)}:{secrets.token_hex(32)}\n")
        try:
            os.link(tmp, path)  # fails if another process created it first: theirs wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    except OSError as exc:
        raise AuditKeyError(
            f"cannot create the audit key file {path}: {exc.strerror or exc}",
            hint=f"set {KEY_VAR}, or point CAREBOUND_HOME at a writable directory",
        ) from exc


_cache: dict[tuple[str, str, str], AuditKeyring] = {}
_cache_lock = threading.Lock()


def default_keyring() -> AuditKeyring:
    """The keyring the environment configures now (read once per configuration)."""
    from carebound.store._settings import StoreSettings

    home = StoreSettings.from_env().home
    config = (os.environ.get(KEY_VAR, ""), os.environ.get(KEYS_VAR, ""), str(home))
    with _cache_lock:
        found = _cache.get(config)
        if found is None:
            found = _cache[config] = AuditKeyring.from_env(home=home)
        return found
