"""Attribute-style reports: one `key: value` line per attribute."""

from __future__ import annotations

import re


_ATTRIBUTE_LINE = re.compile(r"^\s*([^:\n]{1,60}?)\s*:\s*(\S.*?)\s*$")


def parse_attributes(report: str) -> dict[str, str]:
    """Parse a report written as `key: value` lines into a mapping.

    Returns an empty mapping unless every non-blank line has that form, so a
    prose report that happens to contain a colon is not mistaken for one.
    """
    lines = [line for line in report.splitlines() if line.strip()]
    if not lines:
        return {}

    attributes: dict[str, str] = {}
    for line in lines:
        match = _ATTRIBUTE_LINE.match(line)
        if match is None:
            return {}
        attributes[match.group(1)] = match.group(2)
    return attributes


def is_attribute_report(report: str) -> bool:
    """Return True when the report is a list of `key: value` lines."""
    return bool(parse_attributes(report))
