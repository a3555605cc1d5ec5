"""Choose, stage and summarise the data a run tunes on; no gradio here.

A dataset is a folder or a `.zip` that the training process ingests again by
path. Uploaded files are hard-linked (or copied) from gradio's temporary
folder into a per-session folder of the workspace. When a run starts on
them, they move to `<workspace>/datasets/` and so outlive the browser session.
"""

from __future__ import annotations

import importlib
import logging
import os
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from app.settings import AppSettings, format_size, make_private_dir


logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DATA_DIR = PROJECT_ROOT / "sample_data"
PREVIEW_LIMIT = 24
THUMBNAIL_SIDE = 256
# Only these DICOM descriptors are shown; names, ids and dates never reach the page.
SHOWN_DICOM_KEYS = ("modality", "size", "frames", "rows", "columns", "number_of_frames")


class IngestionUnavailableError(RuntimeError):
    """Raised when `engine.data.ingest` is not installed in this checkout."""


class UploadTooLargeError(ValueError):
    """Raised when one upload batch exceeds the total size limit."""


@dataclass(frozen=True)
class Dataset:
    """The data chosen on the Data tab, as stored in the browser session."""

    path: str
    """Folder or zip that the training process ingests."""
    label: str
    num_samples: int
    num_attribute_reports: int

    def to_state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, value: dict[str, Any] | None) -> Dataset | None:
        return cls(**value) if value else None


def import_ingest():
    """Return the ingestion module, or raise IngestionUnavailableError with a plain explanation."""
    try:
        ingest = importlib.import_module("engine.data.ingest")
    except ImportError as error:
        raise IngestionUnavailableError(
            "Data ingestion (engine.data.ingest) is not available yet in this installation, "
            "so files cannot be checked or previewed. Update the project and restart the app."
        ) from error
    return ingest


def ingest_path(path: Path, settings: AppSettings):
    """Ingest a folder or zip into the workspace's image cache; returns an IngestResult."""
    return import_ingest().ingest(Path(path), settings.image_cache_dir)


def ingest_uploaded_files(paths: list[Path], settings: AppSettings):
    """Ingest a browser upload (bare file names, or one zip); returns an IngestResult."""
    return import_ingest().ingest_files([Path(p) for p in paths], settings.image_cache_dir)


def check_upload_size(paths: list[Path], limit: int) -> int:
    """Return the total size of the files in bytes; raises UploadTooLargeError above `limit`."""
    total = sum(Path(p).stat().st_size for p in paths)
    if total > limit:
        raise UploadTooLargeError(
            f"The upload is {format_size(total)}, above the limit of {format_size(limit)} per upload. "
            "Upload fewer files at a time, or restart the app with a larger --max-upload-total."
        )
    return total


def stage_upload(paths: list[Path], session_dir: Path) -> Path:
    """Link the uploaded files under their bare names into a new folder of the session; return the dataset path.

    A single zip stays a zip (its folder structure is kept); other files
    become one flat folder. Callers check name collisions first (ingestion
    rejects them), so a second file with an existing name is skipped here.
    """
    target = make_private_dir(session_dir / f"upload-{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**6:06d}")
    for path in dict.fromkeys(Path(p) for p in paths):
        destination = target / path.name
        if destination.exists():
            continue
        try:
            os.link(path, destination)
        except OSError:
            shutil.copyfile(path, destination)
    if len(paths) == 1 and Path(paths[0]).suffix.lower() == ".zip":
        return target / Path(paths[0]).name
    return target


def latest_upload(value: list[str], previous: list[str]) -> list[str]:
    """Return the files of the latest upload to a file component that contained `previous` before it.

    gradio's upload button on a component that already contains files appends
    the new ones, so a value that starts with `previous` and is longer yields
    only the appended part. Any other value is a fresh upload and is returned whole.
    """
    if previous and len(value) > len(previous) and value[: len(previous)] == previous:
        return value[len(previous):]
    return value


def keep_for_run(dataset_path: str, settings: AppSettings) -> str:
    """Move a session upload into `<workspace>/datasets/` so that it outlives the session; return the new path."""
    path = Path(dataset_path).resolve()
    sessions = settings.sessions_dir.resolve()
    if sessions not in path.parents:
        return dataset_path
    # <sessions>/<session>/<upload folder>[/<archive.zip>]
    parts = path.relative_to(sessions).parts
    source = sessions / parts[0] / parts[1]
    destination = settings.datasets_dir / parts[1]
    if not destination.exists():
        shutil.move(str(source), destination)
        logger.info("Kept uploaded dataset %s for a run", destination)
    return str(destination.joinpath(*parts[2:]))


def describe_result(result, path: str, label: str) -> Dataset:
    from engine.data.attributes import is_attribute_report

    attribute_reports = sum(1 for sample in result.samples if is_attribute_report(sample.report))
    return Dataset(path=str(path), label=label, num_samples=len(result.samples), num_attribute_reports=attribute_reports)


# --- what the Data tab shows --------------------------------------------------------


def summary_markdown(report, dataset: Dataset | None) -> str:
    totals = report.totals
    lines = [
        f"**{totals['samples']} image–report pairs ready** from {totals['files']} files: "
        f"{totals['ok']} ok, {totals['skipped']} skipped, {totals['error']} rejected.",
    ]
    if dataset is not None:
        lines.append(f"Data set: {dataset.label}.")
        if dataset.num_attribute_reports:
            lines.append(
                f"{dataset.num_attribute_reports} reports are `key: value` attribute lists, "
                "so the Compare tab can generate quiz questions from them."
            )
    if totals["duplicates"]:
        lines.append(f"{totals['duplicates']} images have the same decoded pixels as another image.")
    if totals["manifest_problems"]:
        lines.append(f"{totals['manifest_problems']} manifest rows could not be used (listed below).")
    if totals["skipped"] or totals["error"]:
        lines.append("Each skipped or rejected file is listed below with the reason and what to do.")
    return "\n\n".join(lines)


def count_rows(report) -> list[list[Any]]:
    """Return [status, reason, count] rows, most frequent first within each status."""
    counts = Counter((record.status, record.category) for record in report.files)
    order = {"ok": 0, "skipped": 1, "error": 2}
    rows = sorted(counts.items(), key=lambda item: (order.get(item[0][0], 3), -item[1], item[0][1]))
    return [[_status_label(status), category, count] for (status, category), count in rows]


def problem_rows(report) -> list[list[str]]:
    """Return [file, status, reason and fix] rows for every skipped or rejected file and manifest row."""
    rows = [
        [record.path, _status_label(record.status), record.reason]
        for record in report.files
        if record.status != "ok"
    ]
    for problem in report.manifest_problems:
        rows.append([f"{problem.manifest} row {problem.row}: {problem.path}", "manifest row unused", problem.reason])
    return rows


def preview_items(samples, report, limit: int = PREVIEW_LIMIT) -> list[tuple[Any, str]]:
    """Return (thumbnail, caption) pairs for the first `limit` samples; DICOM details limited to safe keys."""
    from PIL import Image

    records = {record.path: record for record in report.files}
    items = []
    for sample in samples[:limit]:
        with Image.open(sample.image_path) as image:
            thumbnail = image.convert("RGB")
            thumbnail.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        caption = f"{sample.source}\n{_shorten(sample.report, 240)}"
        record = records.get(sample.source)
        if record is not None and record.dicom:
            shown = {key: record.dicom[key] for key in SHOWN_DICOM_KEYS if key in record.dicom}
            caption += "\nDICOM " + ", ".join(f"{key}: {value}" for key, value in shown.items())
        items.append((thumbnail, caption))
    return items


def split_text(samples, quiz_fraction: float, seed: int = 0) -> str:
    from engine.data.split import split_samples

    if not samples:
        return ""
    split = split_samples(samples, quiz_fraction, seed)
    text = f"{len(split.tune)} images for tuning, {len(split.quiz)} held out as the quiz set."
    if split.overlapping:
        text += f" {split.overlapping} quiz images duplicate a tuning image, so their scores overstate learning."
    return text


def _status_label(status: str) -> str:
    return {"ok": "ok", "skipped": "skipped", "error": "rejected"}.get(status, status)


def _shorten(text: str, limit: int) -> str:
    flat = " · ".join(line.strip() for line in text.splitlines() if line.strip())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
