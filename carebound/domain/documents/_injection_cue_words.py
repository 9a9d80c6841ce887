# ruff: noqa: E501 - a table of regular expressions
"""The shared words of the injection cues: what "instructions", "earlier", "an AI" and "a record"
look like in a pattern, the clinical words that exclude a match, and the default language.

Used by the cue families (``_injection_cues_control``, ``_injection_cues_actions``).
"""

from __future__ import annotations

# Words that make "instructions" clinical: the previous *dosing* instructions are a patient's.
_CLINICAL = (
    r"(?!(?:discharge|dosing|dose|medication|med|diet|fasting|prep|wound|care|home|post-?op|"
    r"pre-?op|insulin|warfarin|coumadin|bowel|activity|feeding|exercise|patient|lab|specimen|"
    r"collection|shipping|delivery|mailing|follow-up|follow up|pharmacy|sig)\b)"
)

_INSTR = (
    r"(?:instructions?|instruction set|prompts?|system prompt|rules|guidelines|directives|"
    r"programming|guardrails|context|constraints|training|commands?)"
)
_EARLIER = r"(?:(?:all|any|the|your|of|my|these|those|its) )*(?:previous|prior|above|earlier|preceding|original|initial|former|existing|old|following|system|safety|current|other)?"
_AI = (
    r"(?:ai|a\.i\.|artificial intelligence|assistant|ai assistant|chat ?bot|bot|llm|gpt|"
    r"language model|model|agent|ai agent|copilot|classifier|automated (?:\w++ )?(?:system|agent|"
    r"assistant|software|reviewer|screening|analysis|processing|pipeline|workflow|triage|"
    r"intake|filing|process)|automation|document (?:ai|agent|processor|pipeline)|"
    r"(?:ai|automated|intake|filing|triage|screening) (?:system|bot|software|tool|engine))"
)
_RECORD = r"(?:document|fax|file|page|text|message|note|report|referral|request|record|item|attachment|letter|form)"

_EN = "en"
