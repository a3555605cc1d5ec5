"""Decoding and normalising report text files."""

from __future__ import annotations

import codecs
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path


# Extensions read as report text.
REPORT_EXTENSIONS = frozenset({".txt", ".md"})

# Checked longest first, because the UTF-32 LE mark starts with the UTF-16 LE mark.
_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


@dataclass
class DecodedText:
    """Text decoded from bytes, with the encoding used and any warnings."""

    text: str
    encoding: str
    warnings: list[str] = field(default_factory=list)


def decode_text_bytes(data: bytes, name: str) -> DecodedText:
    """Decode bytes as UTF-8 or a BOM-marked Unicode encoding, else cp1252.

    `name` is used in the warning that a cp1252 fallback produces. Bytes that
    cp1252 leaves undefined become U+FFFD.
    """
    for mark, encoding in _BYTE_ORDER_MARKS:
        if data.startswith(mark):
            return DecodedText(data[len(mark) :].decode(encoding, errors="replace"), encoding)
    try:
        return DecodedText(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        pass
    warning = (
        f"{name} is not valid UTF-8; read it as Windows-1252 (cp1252). "
        "Save it as UTF-8 if characters look wrong."
    )
    return DecodedText(data.decode("cp1252", errors="replace"), "cp1252", [warning])


def normalise_report(text: str) -> str:
    """Normalise newlines to `\\n`, Unicode to NFC, and strip every line.

    Leading and trailing blank lines are removed; blank lines inside are kept.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFC", text)
    lines = [line.strip() for line in text.split("\n")]
    return "\n".join(lines).strip("\n")


def read_report(path: Path, name: str) -> DecodedText:
    """Read and normalise one report file. The result's text may be empty."""
    decoded = decode_text_bytes(path.read_bytes(), name)
    decoded.text = normalise_report(decoded.text)
    return decoded
