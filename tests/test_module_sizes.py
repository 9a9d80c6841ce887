"""Issue 14's size rule for the whole installed package: no source module over 500 lines and no
class over 400, in carebound/ and in the agents/, tools/ and guardrails/ folders mapped into it.

(tests/test_engine_layout.py holds the engine to the same rule; this extends it everywhere.)
"""

from __future__ import annotations

from pathlib import Path

from tests.test_engine_layout import MAX_CLASS_LINES, MAX_MODULE_LINES, oversized

ROOT = Path(__file__).resolve().parents[1]
SOURCE_FOLDERS = ("carebound", "agents", "tools", "guardrails")


def _sources() -> dict[str, str]:
    sources = {
        str(path.relative_to(ROOT)): path.read_text()
        for folder in SOURCE_FOLDERS
        for path in sorted((ROOT / folder).rglob("*.py"))
    }
    assert "carebound/checkpoint/_sync.py" in sources
    assert "tools/connectors/_ehr.py" in sources
    return sources


def test_no_module_or_class_is_too_long() -> None:
    offenders = {name: found for name, src in _sources().items() if (found := oversized(src))}
    assert offenders == {}


def test_the_check_can_fail() -> None:
    big_module = "x = 1\n" * (MAX_MODULE_LINES + 1)
    big_class = "class Big:\n" + "    x = 1\n" * MAX_CLASS_LINES
    assert oversized(big_module) == ["<module>"]
    assert oversized(big_class) == ["Big"]
    assert oversized(big_module + big_class) == ["<module>", "Big"]
