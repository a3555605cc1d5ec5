"""Response shuffling: a fresh order of the report's phrases at every draw.

A report is split into phrases: one per line for `key: value` attribute
reports, comma-separated parts for `comma`, sentences for `sentence`. The
phrases are shuffled with the caller's random generator and joined back with
the separator they came with, so the multiset of phrases never changes.
"""

from __future__ import annotations

import random
import re

from engine.data.attributes import is_attribute_report


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")


def resolve_shuffling(mode: str, report: str) -> str:
    """Turn `auto` into `comma` for attribute-style reports and `sentence` for prose."""
    if mode != "auto":
        return mode
    if is_attribute_report(report):
        return "comma"
    lines = [line for line in report.splitlines() if line.strip()]
    if len(lines) == 1 and lines[0].count(",") >= 2 and not _SENTENCE_END.search(lines[0]):
        return "comma"
    return "sentence"


def split_phrases(report: str, mode: str) -> tuple[list[str], str]:
    """Return the report's phrases and the separator that joins them."""
    if mode == "none":
        return [report], ""
    if is_attribute_report(report):
        return [line.strip() for line in report.splitlines() if line.strip()], "\n"
    if mode == "comma":
        return [part.strip() for part in report.split(",") if part.strip()], ", "
    if mode == "sentence":
        text = " ".join(line.strip() for line in report.splitlines() if line.strip())
        return [part.strip() for part in _SENTENCE_END.split(text) if part.strip()], " "
    raise ValueError(f"Unknown shuffling mode {mode!r}; choose none, comma, sentence or auto.")


def shuffle_report(report: str, mode: str, rng: random.Random) -> str:
    """Return the report with its phrases in a new random order drawn from `rng`."""
    mode = resolve_shuffling(mode, report)
    if mode == "none":
        return report
    phrases, separator = split_phrases(report, mode)
    rng.shuffle(phrases)
    return separator.join(phrases)
