"""The plan that discovery produces: which images to decode with which report."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from engine.data.ingest.file_kinds import FileKind
from engine.data.ingest.records import FileRecord, ManifestProblem


@dataclass
class ImagePlan:
    """An image file and the report paired with it.

    `skip` is the record to emit instead of decoding (no report, empty
    report). `folder_group` is the hashed study folder when the image shares a
    folder-wide report.
    """

    path: Path
    name: str
    kind: FileKind
    report: str | None = None
    report_source: str | None = None
    report_warnings: list[str] = field(default_factory=list)
    folder_group: str | None = None
    skip: FileRecord | None = None


@dataclass
class ReportUse:
    """A report file paired with images; its status is settled after decoding."""

    name: str
    images: list[str] = field(default_factory=list)
    folder: str | None = None
    warnings: list[str] = field(default_factory=list)
    empty: bool = False


@dataclass
class IngestPlan:
    """Records already final, images to decode, and reports waiting on them."""

    records: list[FileRecord] = field(default_factory=list)
    images: list[ImagePlan] = field(default_factory=list)
    reports: list[ReportUse] = field(default_factory=list)
    manifest_problems: list[ManifestProblem] = field(default_factory=list)

    def extend(self, other: IngestPlan) -> None:
        """Append another plan's entries, as for the contents of a nested archive."""
        self.records.extend(other.records)
        self.images.extend(other.images)
        self.reports.extend(other.reports)
        self.manifest_problems.extend(other.manifest_problems)


_FOLDER_KEY_SALT = b"instruction-free-tuning/ingest/folder-key/v1"


def folder_group_key(folder: str) -> str:
    """Return an opaque group key for a study folder; folder names may contain names."""
    digest = hashlib.sha256(_FOLDER_KEY_SALT + b"\0" + folder.encode("utf-8"))
    return f"folder-{digest.hexdigest()[:16]}"


def skipped(name: str, category: str, reason: str, kind: str = "other") -> FileRecord:
    """Return a `skipped` record."""
    return FileRecord(path=name, status="skipped", category=category, reason=reason, kind=kind)


def failed(name: str, category: str, reason: str, kind: str = "other") -> FileRecord:
    """Return an `error` record."""
    return FileRecord(path=name, status="error", category=category, reason=reason, kind=kind)
