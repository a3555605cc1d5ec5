"""Manifests: a table that names each image and its report.

A `.csv`, `.tsv` or `.jsonl` file at the top of the input has one row per
image. Columns are recognised by common names (case, spaces and hyphens
ignored): one image column, and either one report-text column or one
report-file column. Paths are relative to the manifest's folder.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from engine.data.ingest.file_kinds import FileKind
from engine.data.ingest.options import IngestError
from engine.data.ingest.plan import ImagePlan, IngestPlan, ReportUse, failed, skipped
from engine.data.ingest.records import FileRecord, ManifestProblem
from engine.data.ingest.report_text import decode_text_bytes, normalise_report, read_report


if TYPE_CHECKING:
    from engine.data.ingest.discovery import InputFile

IMAGE_COLUMNS = frozenset(
    {"image", "image_path", "image_file", "image_name", "img", "path", "file", "filename",
     "file_name", "dicom", "dicom_path", "dicom_file"}
)
REPORT_TEXT_COLUMNS = frozenset(
    {"report", "report_text", "text", "findings", "caption", "description", "impression"}
)
REPORT_FILE_COLUMNS = frozenset(
    {"report_file", "report_path", "report_filename", "text_file", "text_path", "caption_file"}
)

_DELIMITERS = (",", ";", "\t", "|")


@dataclass
class ManifestColumns:
    """The columns chosen for image paths and for reports."""

    image: str
    report_text: str | None
    report_file: str | None


def normalise_column(name: str) -> str:
    """Lower-case a column name and turn spaces and hyphens into underscores."""
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def choose_columns(columns: list[str], manifest_name: str) -> ManifestColumns:
    """Pick the image and report columns, or raise IngestError naming the columns found."""
    found = ", ".join(repr(column) for column in columns) or "none"
    by_role = {
        role: [column for column in columns if normalise_column(column) in names]
        for role, names in (
            ("image", IMAGE_COLUMNS),
            ("text", REPORT_TEXT_COLUMNS),
            ("file", REPORT_FILE_COLUMNS),
        )
    }
    images, texts, files = by_role["image"], by_role["text"], by_role["file"]
    hint = (
        f"Name one column 'image' (the image path) and one either 'report' (the text) or "
        f"'report_file' (a path). Columns found: {found}."
    )
    if not images:
        raise IngestError(f"Manifest {manifest_name} has no image column. {hint}")
    if len(images) > 1:
        raise IngestError(
            f"Manifest {manifest_name} is ambiguous: several columns could hold the image "
            f"path ({', '.join(images)}). Rename all but one. {hint}"
        )
    if not texts and not files:
        raise IngestError(f"Manifest {manifest_name} has no report column. {hint}")
    if len(texts) + len(files) > 1:
        raise IngestError(
            f"Manifest {manifest_name} is ambiguous: several columns could hold the report "
            f"({', '.join(texts + files)}). Rename all but one. {hint}"
        )
    return ManifestColumns(images[0], texts[0] if texts else None, files[0] if files else None)


def read_rows(path: Path, name: str) -> tuple[list[str], list[tuple[int, dict[str, str]]], list[str]]:
    """Read a manifest into (columns, [(row number, row)], warnings).

    Row numbers count data rows from 1 (the CSV header is not a row). CSV
    fields may hold quoted delimiters and newlines. The delimiter of a
    `.csv` file is the one of `, ; TAB |` that occurs most in its first line.
    """
    decoded = decode_text_bytes(path.read_bytes(), name)
    text = decoded.text
    if path.suffix.lower() == ".jsonl":
        return (*_read_jsonl(text, name), decoded.warnings)

    if path.suffix.lower() == ".tsv":
        delimiter = "\t"
    else:
        first_line = text.split("\n", 1)[0]
        delimiter = max(_DELIMITERS, key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise IngestError(f"Manifest {name} is empty. Add a header row and one row per image.") from None
    columns = [column.strip() for column in header]
    rows = []
    for number, values in enumerate(reader, start=1):
        if not any(value.strip() for value in values):
            continue
        rows.append((number, dict(zip(columns, values))))
    return columns, rows, decoded.warnings


def _read_jsonl(text: str, name: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    columns: list[str] = []
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise IngestError(
                f"Manifest {name} line {number} is not valid JSON ({error.msg}). "
                "Write one JSON object per line."
            ) from error
        if not isinstance(row, dict):
            raise IngestError(f"Manifest {name} line {number} is not a JSON object.")
        for key in row:
            if key not in columns:
                columns.append(key)
        rows.append((number, {key: "" if value is None else str(value) for key, value in row.items()}))
    return columns, rows


def plan_from_manifests(
    root: Path, prefix: str, files: list[InputFile], manifests: list[InputFile]
) -> IngestPlan:
    """Plan images and reports from the one manifest at the top of the tree."""
    if len(manifests) > 1:
        names = ", ".join(manifest.name for manifest in manifests)
        raise IngestError(
            f"Several manifests at the top of the input ({names}); keep exactly one, or move "
            "the others into a subfolder."
        )
    manifest = manifests[0]
    columns, rows, warnings = read_rows(manifest.path, manifest.name)
    chosen = choose_columns(columns, manifest.name)

    by_name = {file.name: file for file in files}
    plan = IngestPlan()
    used: set[str] = set()
    report_uses: dict[str, ReportUse] = {}
    for number, row in rows:
        image_name = _resolve(prefix, row.get(chosen.image, ""))
        problem = _row_problem(image_name, row.get(chosen.image, ""), by_name, used, "image")
        if problem:
            plan.manifest_problems.append(ManifestProblem(manifest.name, number, row.get(chosen.image, ""), problem))
            continue
        image = by_name[image_name]
        used.add(image_name)
        item = ImagePlan(path=image.path, name=image.name, kind=image.kind)

        report_source = None
        if chosen.report_file is not None:
            report_value = row.get(chosen.report_file, "")
            report_name = _resolve(prefix, report_value)
            problem = _row_problem(report_name, report_value, by_name, set(), "report file")
            if problem:
                plan.manifest_problems.append(ManifestProblem(manifest.name, number, report_value, problem))
                item.skip = skipped(image.name, "image without report",
                                    f"{image.name}: manifest row {number} names a report that is not usable ({problem}).",
                                    kind="image")
                plan.images.append(item)
                continue
            decoded = read_report(by_name[report_name].path, report_name)
            text, report_source = decoded.text, report_name
            item.report_warnings = decoded.warnings
            used.add(report_name)
        else:
            text = normalise_report(row.get(chosen.report_text or "", ""))

        if not text:
            item.skip = skipped(image.name, "empty report",
                                f"{image.name}: its report in manifest row {number} is empty. Write the report, or remove the row.",
                                kind="image")
        else:
            item.report = text
            item.report_source = report_source or f"{manifest.name} row {number}"
            if report_source:
                report_uses.setdefault(report_source, ReportUse(report_source)).images.append(image.name)
        plan.images.append(item)

    plan.reports.extend(report_uses.values())
    plan.records.append(
        FileRecord(
            path=manifest.name,
            status="ok",
            category="manifest",
            reason=f"manifest with {len(rows)} rows (image column {chosen.image!r})",
            kind="manifest",
            warnings=warnings,
        )
    )
    for file in files:
        if file.name in used or file is manifest:
            continue
        plan.records.append(_unlisted_record(file, manifest.name))
    return plan


def _resolve(prefix: str, value: str) -> str:
    value = value.strip().replace("\\", "/")
    return prefix + PurePosixPath(value).as_posix() if value else ""


def _row_problem(name: str, value: str, by_name: dict, used: set[str], label: str) -> str | None:
    raw = value.strip().replace("\\", "/")
    if not raw:
        return f"no {label} path in the row"
    if raw.startswith("/") or ".." in PurePosixPath(raw).parts:
        return f"{label} path {raw!r} points outside the input folder"
    if name not in by_name:
        return f"{label} {raw!r} not found in the input"
    if name in used:
        return f"{label} {raw!r} is named by an earlier row; only the first row is used"
    return None


def _unlisted_record(file: InputFile, manifest_name: str) -> FileRecord:
    if file.kind is FileKind.EMPTY:
        return failed(file.name, "empty file", f"{file.name}: the file is empty (0 bytes).")
    kind = {FileKind.REPORT: "report", FileKind.MANIFEST: "manifest"}.get(
        file.kind, "image" if file.kind in (FileKind.DICOM, FileKind.RASTER) else "other"
    )
    return skipped(
        file.name,
        "not named in the manifest",
        f"{file.name}: no row of {manifest_name} names this file; add a row for it or remove it.",
        kind=kind,
    )
