"""The ingestion report: one record per input file, totals and a summary."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Literal


Status = Literal["ok", "skipped", "error"]


class RejectedFile(Exception):
    """Raised by a decoder when one file cannot become a sample.

    `category` is a short, file-independent label that the summary counts;
    `reason` is the full message for this file, with the cause and the fix.
    """

    def __init__(self, status: Status, category: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.category = category
        self.reason = reason


@dataclass
class FileRecord:
    """What happened to one input file.

    `path` is relative to the input folder or archive, with `/` separators.
    For `ok` images, `report` is the paired report text, `size` the decoded
    (width, height) after resizing, and `cached_image` the cached 8-bit
    greyscale or RGB PNG.
    `dicom` contains only non-identifying descriptors (modality, size, frames,
    transfer syntax).
    """

    path: str
    status: Status
    category: str
    reason: str
    kind: str = "other"
    report: str | None = None
    report_source: str | None = None
    size: tuple[int, int] | None = None
    cached_image: str | None = None
    pixel_hash: str | None = None
    warnings: list[str] = field(default_factory=list)
    dicom: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the record as a JSON-ready mapping without empty fields."""
        data = asdict(self)
        if self.size is not None:
            data["size"] = list(self.size)
        return {key: value for key, value in data.items() if value not in (None, [], {})}


@dataclass
class ManifestProblem:
    """A manifest row that could not be used, such as one naming a missing file."""

    manifest: str
    row: int
    path: str
    reason: str


@dataclass
class IngestReport:
    """Every input file with its status, plus manifest rows that could not be used."""

    files: list[FileRecord] = field(default_factory=list)
    manifest_problems: list[ManifestProblem] = field(default_factory=list)

    @property
    def totals(self) -> dict[str, int]:
        """Counts by status and kind; `files` always equals ok + skipped + error."""
        statuses = Counter(record.status for record in self.files)
        totals = {
            "files": len(self.files),
            "ok": statuses["ok"],
            "skipped": statuses["skipped"],
            "error": statuses["error"],
            "samples": sum(
                1 for r in self.files if r.status == "ok" and r.cached_image is not None
            ),
            "duplicates": sum(
                1 for r in self.files if any(w.startswith("duplicate of ") for w in r.warnings)
            ),
            "manifest_problems": len(self.manifest_problems),
        }
        return totals

    def to_json(self) -> dict[str, Any]:
        """Return totals, per-file records and manifest problems as plain data."""
        return {
            "totals": self.totals,
            "files": [record.to_json() for record in self.files],
            "manifest_problems": [asdict(problem) for problem in self.manifest_problems],
        }

    def summary_text(self) -> str:
        """Return a human summary: the totals, then a count for each reason."""
        totals = self.totals
        lines = [
            f"{totals['files']} files: {totals['ok']} ok, {totals['skipped']} skipped, "
            f"{totals['error']} errors; {totals['samples']} image-report samples."
        ]
        for status in ("skipped", "error"):
            categories = Counter(r.category for r in self.files if r.status == status)
            if categories:
                lines.append(f"{status.capitalize()}:")
                for category, count in sorted(categories.items(), key=lambda item: (-item[1], item[0])):
                    lines.append(f"  {count:>6}  {category}")
        if totals["duplicates"]:
            lines.append(f"{totals['duplicates']} images duplicate another image's decoded pixels.")
        if self.manifest_problems:
            lines.append(f"{len(self.manifest_problems)} manifest rows could not be used:")
            for problem in self.manifest_problems[:20]:
                lines.append(f"  {problem.manifest} row {problem.row}: {problem.reason}")
            if len(self.manifest_problems) > 20:
                lines.append(f"  … and {len(self.manifest_problems) - 20} more (see the JSON report).")
        return "\n".join(lines)


@dataclass
class DecodedPixels:
    """A decoder's output before resizing: 8-bit pixels and notes about them.

    `pixels` has dtype uint8 and shape (H, W) for greyscale or (H, W, 3) for
    RGB. Greyscale stays one channel so that resizing, hashing and the cached
    PNG handle a third of the bytes. `group_key` is already hashed.
    """

    pixels: Any
    warnings: list[str] = field(default_factory=list)
    group_key: str | None = None
    dicom: dict[str, Any] | None = None

    @property
    def rgb(self) -> Any:
        """The pixels as an (H, W, 3) array, greyscale repeated into three channels."""
        if self.pixels.ndim == 2:
            return self.pixels[:, :, None].repeat(3, axis=2)
        return self.pixels
