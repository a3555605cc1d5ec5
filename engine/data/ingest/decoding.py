"""Turning image files into cached 8-bit PNGs, one file or a batch at a time."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.ingest.cache import CachedImage, ImageCache, content_key, pixel_hash
from engine.data.ingest.dicom_pixels import decode_dicom
from engine.data.ingest.file_kinds import FileKind
from engine.data.ingest.options import IngestOptions
from engine.data.ingest.raster_images import decode_raster
from engine.data.ingest.records import RejectedFile, Status
from engine.data.ingest.transforms import downscale, pad_to_min_side


logger = logging.getLogger(__name__)

# Decoded images that may wait for the cache writer thread at once. Two keep
# the writer busy while the next file decodes; more only hold more memory.
_WRITES_IN_FLIGHT = 2


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


@dataclass
class _PendingWrite:
    """A decoded image whose cache entry is not written yet."""

    task: DecodeTask
    key: str
    pixels: np.ndarray
    entry: CachedImage


def decode_batch(tasks: Iterable[DecodeTask]) -> Iterator[DecodeOutcome]:
    """Decode each file (or reuse its cache entry) and yield one outcome per task, in order.

    Never raises for a bad file: every failure becomes an outcome with status
    `error` or `skipped`, so one file cannot stop a batch. A single writer
    thread encodes and writes the PNG and JSON files. zlib and file writes
    release the GIL, so on two or more cores they overlap with decoding. At
    most `_WRITES_IN_FLIGHT` decoded images wait for the writer, which keeps
    memory flat in the number of files.
    """
    pending: deque[Future[DecodeOutcome] | DecodeOutcome] = deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-cache-writer") as writer:
        for task in tasks:
            prepared = _decode_or_look_up(task)
            if isinstance(prepared, DecodeOutcome):
                pending.append(prepared)
            else:
                pending.append(writer.submit(_write_entry, prepared))
            while pending and (
                len(pending) > _WRITES_IN_FLIGHT or isinstance(pending[0], DecodeOutcome)
            ):
                yield _resolve(pending.popleft())
        while pending:
            yield _resolve(pending.popleft())


def decode_chunk(tasks: list[DecodeTask]) -> list[DecodeOutcome]:
    """Decode a list of tasks with `decode_batch`; the unit of work of a worker process."""
    return list(decode_batch(tasks))


def _resolve(item: Future[DecodeOutcome] | DecodeOutcome) -> DecodeOutcome:
    return item if isinstance(item, DecodeOutcome) else item.result()


def _decode_or_look_up(task: DecodeTask) -> DecodeOutcome | _PendingWrite:
    """Return the outcome of a cache hit or a failure, else the decoded image to write."""
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

    pixels = decoded.pixels
    notes = list(decoded.warnings)
    height, width = pixels.shape[:2]
    pixels = downscale(pixels, task.options.max_side)
    if pixels.shape[:2] != (height, width):
        notes.append(f"downscaled from {width}×{height} to {pixels.shape[1]}×{pixels.shape[0]}")
    padded = pad_to_min_side(pixels, task.options.min_side)
    if padded.shape != pixels.shape:
        notes.append(
            f"padded with black from {pixels.shape[1]}×{pixels.shape[0]} to "
            f"{padded.shape[1]}×{padded.shape[0]}"
        )

    entry = CachedImage(
        image_path=Path(),
        width=int(padded.shape[1]),
        height=int(padded.shape[0]),
        pixel_hash="",
        warnings=notes,
        group_key=decoded.group_key,
        dicom=decoded.dicom,
    )
    return _PendingWrite(task, key, padded, entry)


def _write_entry(pending: _PendingWrite) -> DecodeOutcome:
    """Hash the pixels and write the cache entry; runs on the writer thread in a batch."""
    task = pending.task
    pending.entry.pixel_hash = pixel_hash(pending.pixels)
    try:
        entry = ImageCache(task.cache_root).store(pending.key, pending.pixels, pending.entry)
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
