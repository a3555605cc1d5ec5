"""Classifying input files: system clutter, reports, manifests, archives, images."""

from __future__ import annotations

import struct
from enum import Enum
from pathlib import Path, PurePosixPath

from PIL import Image

from engine.data.ingest.dicom_header import DICOM_EXTENSIONS, sniff_dicom
from engine.data.ingest.raster_images import RASTER_EXTENSIONS
from engine.data.ingest.report_text import REPORT_EXTENSIONS


MANIFEST_EXTENSIONS = frozenset({".csv", ".tsv", ".jsonl"})
ARCHIVE_EXTENSIONS = frozenset({".zip"})

# Files that operating systems and archivers add next to the user's files.
_SYSTEM_FILE_NAMES = frozenset({"thumbs.db", "desktop.ini", "ehthumbs.db", "icon\r"})
_SYSTEM_FOLDER_NAMES = frozenset({"__macosx", "$recycle.bin", "system volume information"})

# Enough bytes for the DICOM prefix at offset 128 and every Pillow signature.
_SNIFF_BYTES = 132


class FileKind(Enum):
    """The kind of an input file, from its extension or its content."""

    REPORT = "report"
    MANIFEST = "manifest"
    ARCHIVE = "archive"
    DICOM = "dicom"
    RASTER = "raster"
    EMPTY = "empty"
    OTHER = "other"


def system_file_reason(relative_path: str) -> str | None:
    """Return why a path is operating-system clutter, or None for a user file.

    Covers hidden files and folders (leading dot), macOS `__MACOSX/` folders
    and AppleDouble `._*` files, and Windows `Thumbs.db` and `desktop.ini`.
    """
    parts = PurePosixPath(relative_path).parts
    for folder in parts[:-1]:
        if folder.lower() in _SYSTEM_FOLDER_NAMES:
            return f"inside the system folder {folder}/"
        if folder.startswith("."):
            return f"inside the hidden folder {folder}/"
    name = parts[-1]
    if name.startswith("._"):
        return "AppleDouble metadata file (._*) written by macOS"
    if name.startswith("."):
        return "hidden file"
    if name.lower() in _SYSTEM_FILE_NAMES:
        return f"{name} is a system file written by Windows"
    return None


def classify(path: Path) -> FileKind:
    """Classify a file by extension, and by content when the extension is not known.

    Extensionless files and unknown extensions are checked for the DICOM
    prefix (or a bare DICOM data set) and for any image signature that
    Pillow recognises. `.dcm` files are always DICOM, so that a damaged one
    is reported as such.
    """
    suffix = path.suffix.lower()
    if path.name.upper() == "DICOMDIR" or suffix in DICOM_EXTENSIONS:
        return FileKind.EMPTY if _is_empty(path) else FileKind.DICOM
    if suffix in REPORT_EXTENSIONS:
        return FileKind.REPORT
    if suffix in MANIFEST_EXTENSIONS:
        return FileKind.MANIFEST
    if suffix in ARCHIVE_EXTENSIONS:
        return FileKind.ARCHIVE
    if suffix in RASTER_EXTENSIONS:
        return FileKind.EMPTY if _is_empty(path) else FileKind.RASTER

    with path.open("rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if not head:
        return FileKind.EMPTY
    if sniff_dicom(head):
        return FileKind.DICOM
    if _has_image_signature(head):
        return FileKind.RASTER
    return FileKind.OTHER


def _is_empty(path: Path) -> bool:
    return path.stat().st_size == 0


def _has_image_signature(head: bytes) -> bool:
    Image.init()
    for _, accept in Image.OPEN.values():
        if accept is None:
            continue
        try:
            if accept(head):
                return True
        except (IndexError, ValueError, TypeError, struct.error):
            continue
    return False
