"""Turning one image file into a cached 8-bit RGB PNG; the unit of parallel work."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.data.ingest.cache import CachedImage, ImageCache, content_key, pixel_hash
from engine.data.ingest.dicom_pixels import decode_dicom
from engine.data.ingest.file_kinds import FileKind
from engine.data.ingest.options import IngestOptions
from engine.data.ingest.raster_images import decode_raster
from engine.data.ingest.records import RejectedFile, Status
from engine.data.ingest.transforms import downscale, pad_to_min_side

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DecodeTask:
    """One image file to decode. `name` is the path shown to the user."""

    path: Path
    name: str
    kind: FileKind
    cache_root: Path
    options: IngestOptions


@dataclass
class DecodeOutcome:
    """The result of a DecodeTask: a cached image, or why there is none."""

    name: str
    status: Status
    category: str
    reason: str
    image: CachedImage | None = None
    notes: list[str] = field(default_factory=list)
    dicom: dict[str, Any] | None = None


def decode_to_cache(task: DecodeTask) -> DecodeOutcome:
    """Decode one file (or reuse its cache entry) and return the outcome.

    Never raises for a bad file: every failure becomes an outcome with status
    `error` or `skipped`, so one file cannot stop a batch.
    """
    cache = ImageCache(task.cache_root)
    try:
        key = content_key(task.path, task.options.fingerprint())
    except OSError as error:
        return _failure(task, RejectedFile("error", "unreadable file", f"{task.name}: cannot be read ({error})."))

    cached = cache.lookup(key)
    if cached is not None:
        return _success(task, cached)

    try:
        if task.kind is FileKind.DICOM:
            decoded = decode_dicom(task.path, task.name, task.options)
        else:
            decoded = decode_raster(task.path, task.name, task.options)
    except RejectedFile as rejection:
        return _failure(task, rejection)
    except MemoryError:
        return _failure(
            task,
            RejectedFile(
                "error",
                "out of memory",
                f"{task.name}: ran out of memory while decoding. Lower "
                "IngestOptions.reject_above_pixels or use fewer workers.",
            ),
        )
    except Exception as error:  # noqa: BLE001 - one damaged file must not stop the batch
        logger.exception("Unexpected error while decoding %s", task.name)
        return _failure(
            task,
            RejectedFile(
                "error",
                "unexpected decoder error",
                f"{task.name}: unexpected {type(error).__name__} while decoding ({error}). "
                "Please report this file's type and export settings.",
            ),
        )

    rgb = decoded.rgb
    notes = list(decoded.warnings)
    height, width = rgb.shape[:2]
    rgb = downscale(rgb, task.options.max_side)
    if rgb.shape[:2] != (height, width):
        notes.append(f"downscaled from {width}×{height} to {rgb.shape[1]}×{rgb.shape[0]}")
    padded = pad_to_min_side(rgb, task.options.min_side)
    if padded.shape != rgb.shape:
        notes.append(
            f"padded with black from {rgb.shape[1]}×{rgb.shape[0]} to "
            f"{padded.shape[1]}×{padded.shape[0]}"
        )

    entry = CachedImage(
        image_path=Path(),
        width=int(padded.shape[1]),
        height=int(padded.shape[0]),
        pixel_hash=pixel_hash(padded),
        warnings=notes,
        group_key=decoded.group_key,
        dicom=decoded.dicom,
    )
    try:
        entry = cache.store(key, padded, entry)
    except OSError as error:
        return _failure(
            task,
            RejectedFile(
                "error",
                "cache not writable",
                f"{task.name}: the decoded image could not be written to the cache "
                f"{task.cache_root} ({error}). Free disk space or choose another cache folder.",
            ),
        )
    return _success(task, entry)


def _success(task: DecodeTask, image: CachedImage) -> DecodeOutcome:
    return DecodeOutcome(
        name=task.name,
        status="ok",
        category="image",
        reason="decoded",
        image=image,
        notes=list(image.warnings),
        dicom=image.dicom,
    )


def _failure(task: DecodeTask, rejection: RejectedFile) -> DecodeOutcome:
    return DecodeOutcome(
        name=task.name,
        status=rejection.status,
        category=rejection.category,
        reason=rejection.reason,
    )
