"""Benchmark DICOM ingestion against a bare pydicom decoding loop.

Builds a folder of DICOM files by rewriting the single-frame images shipped
with pydicom (each copy gets a new SOP Instance UID, so no two copies share
a cache entry), then measures in one run:

* the bare loop: `dcmread` + `pixel_array` + a min–max conversion to 8 bits;
* `ingest()` with 1 worker and with 2 workers, each into an empty cache;
* the peak traced Python memory of a 1-worker ingest at N and 2N files.

Run from the repository root: python -m benchmarks.bench_ingest [--files 300] [--repeats 3]
"""

from __future__ import annotations

import argparse
import io
import shutil
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import generate_uid

from engine.data.ingest import IngestOptions, ingest

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def single_frame_sources() -> list[Path]:
    """Return the bundled DICOM files that decode and hold a single frame."""
    sources = []
    for path in sorted(TEST_FILES.glob("*.dcm")):
        try:
            dataset = pydicom.dcmread(path)
            if int(dataset.get("NumberOfFrames", 1) or 1) != 1:
                continue
            dataset.pixel_array
            dataset.save_as(io.BytesIO())
        except Exception:  # noqa: BLE001 - files that do not decode or rewrite are left out
            continue
        sources.append(path)
    return sources


def build_folder(target: Path, count: int) -> list[Path]:
    """Write `count` rewritten copies of the bundled images into `target`."""
    sources = single_frame_sources()
    target.mkdir(parents=True)
    written = []
    for index in range(count):
        dataset = pydicom.dcmread(sources[index % len(sources)])
        dataset.SOPInstanceUID = generate_uid()
        dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
        path = target / f"IM{index:05d}.dcm"
        dataset.save_as(path)
        written.append(path)
    (target / "report.txt").write_text("Findings: benchmark study.\n", encoding="utf-8")
    return written


def bare_loop(paths: list[Path]) -> None:
    for path in paths:
        pixels = pydicom.dcmread(path).pixel_array.astype(np.float64)
        low, high = pixels.min(), pixels.max()
        scaled = (pixels - low) / (high - low) * 255 if high > low else pixels * 0
        scaled.astype(np.uint8)


def time_best(function, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def ingest_fresh(folder: Path, workers: int) -> None:
    cache = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    try:
        result = ingest(folder, cache, IngestOptions(workers=workers))
        assert result.report.totals["samples"] > 0
    finally:
        shutil.rmtree(cache)


def peak_traced_bytes(folder: Path) -> int:
    tracemalloc.start()
    ingest_fresh(folder, workers=1)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=300, help="Number of DICOM files.")
    parser.add_argument("--repeats", type=int, default=3, help="Timed runs per variant; the best counts.")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as workspace:
        folder = Path(workspace) / "dicom"
        paths = build_folder(folder, args.files)
        half = Path(workspace) / "half"
        half.mkdir()
        for path in paths[: args.files // 2]:
            shutil.copyfile(path, half / path.name)
        shutil.copyfile(folder / "report.txt", half / "report.txt")

        bare = time_best(lambda: bare_loop(paths), args.repeats)
        one_worker = time_best(lambda: ingest_fresh(folder, 1), args.repeats)
        two_workers = time_best(lambda: ingest_fresh(folder, 2), args.repeats)
        peak_half = peak_traced_bytes(half)
        peak_full = peak_traced_bytes(folder)

    count = args.files
    print(f"files: {count} DICOM ({len(single_frame_sources())} distinct bundled images)")
    print(f"bare loop:          {count / bare:8.1f} files/s")
    print(f"ingest, 1 worker:   {count / one_worker:8.1f} files/s  ratio {bare / one_worker:.2f}x (goal >= 0.9)")
    print(f"ingest, 2 workers:  {count / two_workers:8.1f} files/s  ratio {bare / two_workers:.2f}x (goal >= 1.6)")
    print(
        f"peak traced memory: {peak_half / 2**20:.1f} MiB at {count // 2} files, "
        f"{peak_full / 2**20:.1f} MiB at {count} files"
    )


if __name__ == "__main__":
    main()
