"""The ingestion entry points: from a folder, archive or upload to samples and a report."""

from __future__ import annotations

import logging
import multiprocessing
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from engine.data.attributes import parse_attributes
from engine.data.ingest.decoding import DecodeOutcome, DecodeTask, decode_batch, decode_chunk
from engine.data.ingest.discovery import discover, plan_archive
from engine.data.ingest.file_kinds import ARCHIVE_EXTENSIONS
from engine.data.ingest.options import IngestError, IngestOptions
from engine.data.ingest.plan import ImagePlan, IngestPlan, ReportUse
from engine.data.ingest.records import FileRecord, IngestReport
from engine.data.sample import Sample


logger = logging.getLogger(__name__)


@dataclass
class IngestResult:
    """Samples ready for training (status ok only) and the report on every input file."""

    samples: list[Sample] = field(default_factory=list)
    report: IngestReport = field(default_factory=IngestReport)


def ingest(path: Path, cache_dir: Path, options: IngestOptions | None = None) -> IngestResult:
    """Ingest a folder or a `.zip` archive of image–report pairs.

    Every file under `path` appears exactly once in `result.report.files`.
    Decoded images are cached under `cache_dir`, keyed by content, as 8-bit
    greyscale PNG for greyscale images and 8-bit RGB PNG otherwise. Raises
    IngestError when the input as a whole is unusable (not found, not a
    folder or zip, an ambiguous manifest).
    """
    options = options or IngestOptions()
    path = Path(path)
    cache_dir = Path(cache_dir)
    if not path.exists():
        raise IngestError(f"Input {path} not found. Give a folder or a .zip archive.")
    is_archive = path.is_file() and path.suffix.lower() in ARCHIVE_EXTENSIONS
    if not path.is_dir() and not is_archive:
        raise IngestError(
            f"Input {path} is a single file. Give the folder that contains the images and their "
            "reports, or a .zip archive of it."
        )

    logger.info("Ingesting %s with %d worker(s)", path.name, options.workers)
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging_parent = cache_dir / "staging"
    staging_parent.mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="ingest-", dir=staging_parent))
    try:
        if is_archive:
            plan = plan_archive(path, "", staging / "input", options)
        else:
            plan = discover(path, "", options, staging)
        result = _execute(plan, cache_dir, options)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    totals = result.report.totals
    logger.info(
        "Ingested %d files: %d ok, %d skipped, %d errors, %d samples",
        totals["files"], totals["ok"], totals["skipped"], totals["error"], totals["samples"],
    )
    return result


def _execute(plan: IngestPlan, cache_dir: Path, options: IngestOptions) -> IngestResult:
    """Decode the planned images, then settle every record and build the samples."""
    to_decode = [item for item in plan.images if item.skip is None]
    tasks = [DecodeTask(item.path, item.name, item.kind, cache_dir, options) for item in to_decode]
    outcomes = dict(zip((item.name for item in to_decode), _decode_all(tasks, options)))

    report = IngestReport(manifest_problems=list(plan.manifest_problems))
    samples: list[Sample] = []
    first_by_hash: dict[str, str] = {}
    ok_images: set[str] = set()

    for item in plan.images:
        if item.skip is not None:
            report.files.append(item.skip)
            continue
        outcome = outcomes[item.name]
        record = _image_record(item, outcome)
        if record.status == "ok":
            assert outcome.image is not None
            duplicate_of = first_by_hash.setdefault(outcome.image.pixel_hash, item.name)
            if duplicate_of != item.name:
                record.warnings.append(f"duplicate of {duplicate_of} (same decoded pixels)")
            ok_images.add(item.name)
            samples.append(_sample(item, outcome))
        else:
            logger.warning("%s: %s", "Skipped" if record.status == "skipped" else "Rejected", record.reason)
        report.files.append(record)

    for use in plan.reports:
        report.files.append(_report_record(use, ok_images))
    report.files.extend(plan.records)
    report.files.sort(key=lambda record: record.path)
    return IngestResult(samples=samples, report=report)


def _decode_all(tasks: list[DecodeTask], options: IngestOptions) -> Iterator[DecodeOutcome]:
    if options.workers == 1 or len(tasks) < 2:
        return decode_batch(tasks)
    workers = min(options.workers, len(tasks))
    # Several chunks per worker balance the load when some files decode slowly;
    # each chunk overlaps its cache writes with decoding through decode_batch.
    chunk_size = max(1, min(32, len(tasks) // (workers * 4)))
    chunks = [tasks[start : start + chunk_size] for start in range(0, len(tasks), chunk_size)]
    with ProcessPoolExecutor(max_workers=workers, mp_context=_worker_context()) as pool:
        return iter([outcome for chunk in pool.map(decode_chunk, chunks) for outcome in chunk])


def _worker_context() -> multiprocessing.context.BaseContext:
    """Return the forkserver context, with the decoders imported in the server once.

    forkserver children do not inherit threads or a loaded model from the
    caller (a UI or trainer process), which fork would copy unsafely. Workers
    fork from the server process, so preloading the decoding module there
    spares each worker importing numpy, pydicom and Pillow (about 0.3 s a
    worker). The preload list is process-wide and takes effect only when the
    server starts; a server already started by other code is used as it is.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([decode_chunk.__module__])
    return context


def _image_record(item: ImagePlan, outcome: DecodeOutcome) -> FileRecord:
    kind = "dicom" if outcome.dicom is not None or item.kind.value == "dicom" else "image"
    if outcome.status != "ok" or outcome.image is None:
        return FileRecord(
            path=item.name, status=outcome.status, category=outcome.category,
            reason=outcome.reason, kind=kind, report_source=item.report_source,
        )
    image = outcome.image
    return FileRecord(
        path=item.name,
        status="ok",
        category="image",
        reason=f"decoded, paired with {item.report_source}",
        kind=kind,
        report=item.report,
        report_source=item.report_source,
        size=(image.width, image.height),
        cached_image=str(image.image_path),
        pixel_hash=image.pixel_hash,
        warnings=list(outcome.notes) + list(item.report_warnings),
        dicom=outcome.dicom,
    )


def _report_record(use: ReportUse, ok_images: set[str]) -> FileRecord:
    usable = [name for name in use.images if name in ok_images]
    if use.empty:
        return FileRecord(
            path=use.name, status="skipped", category="empty report",
            reason=f"{use.name}: the report is empty or only whitespace, so its images were skipped.",
            kind="report", warnings=list(use.warnings),
        )
    if not usable:
        return FileRecord(
            path=use.name, status="skipped", category="report whose images failed",
            reason=f"{use.name}: none of its images could be used ({', '.join(use.images[:3])}"
            f"{', …' if len(use.images) > 3 else ''}); see their records.",
            kind="report", warnings=list(use.warnings),
        )
    if use.folder is not None:
        target = f"{len(usable)} images in {use.folder or 'the top folder'}/"
    elif len(usable) == 1:
        target = usable[0]
    else:
        target = f"{len(usable)} images"
    return FileRecord(
        path=use.name, status="ok", category="report", reason=f"report for {target}",
        kind="report", warnings=list(use.warnings),
    )


def _sample(item: ImagePlan, outcome: DecodeOutcome) -> Sample:
    assert outcome.image is not None and item.report is not None
    group = outcome.image.group_key or item.folder_group
    return Sample(
        sample_id=item.name,
        image_path=outcome.image.image_path,
        report=item.report,
        source=item.name,
        attributes=parse_attributes(item.report),
        group=group,
        pixel_hash=outcome.image.pixel_hash,
    )
