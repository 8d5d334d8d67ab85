"""Showing an identifier in a message without repeating it.

Rule: a problem names the offending value, but a message that repeats an e-mail address,
a phone number or a name copies the identifier into terminals, logs and CI output. The
guard shows such a value masked: its first and last characters with ``***`` between them
(a value of three characters or fewer is shown as ``***``), enough to find it in the file
at the line the problem names, not enough to read it.

Examples
--------
>>> from analysis.anonymisation.masking import mask
>>> mask("jane.doe@example.org"), mask("07700 900123"), mask("Jo")
('j***g', '0***3', '***')
"""

from __future__ import annotations

__all__ = ["mask"]


def mask(value: object) -> str:
    """``value`` as text with all but its first and last characters hidden."""
    text = str(value).strip()
    if len(text) <= 3:
        return "***"
    return f"{text[0]}***{text[-1]}"
