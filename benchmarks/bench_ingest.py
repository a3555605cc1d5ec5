"""Benchmark DICOM ingestion against a bare pydicom decoding loop.

Builds a folder of DICOM files by rewriting the single-frame images shipped
with pydicom (each copy gets a new SOP Instance UID, so no two copies share
a cache entry), then measures in one run, on the same files:

* the bare loop: `dcmread` + `pixel_array` + a min–max conversion to 8 bits;
* `ingest()` with 1 worker and with 2 workers, each into an empty cache;
* the peak traced Python memory of a 1-worker ingest at N/2 and N files.

Each variant runs once untimed first, so that the files are in the page
cache and the forkserver process (which imports the decoders once) is up for
every timed run. The timed runs go in rounds (bare loop, 1 worker,
2 workers), so that load from other programs hits all variants alike. Each
round gives a ratio to that round's bare loop; the script prints the median
and the range over the rounds.

Run from the repository root: python -m benchmarks.bench_ingest [--files 300] [--repeats 5]
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import tempfile
import time
import tracemalloc
import warnings
from dataclasses import dataclass
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
            _ = dataset.pixel_array  # decodes, or raises for files the benchmark cannot use
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


@dataclass
class Timing:
    """Seconds of one run: wall clock, CPU of the calling thread, CPU of this process."""

    wall: float
    thread_cpu: float
    process_cpu: float


def time_once(function) -> Timing:
    wall, thread_cpu, process_cpu = time.perf_counter(), time.thread_time(), time.process_time()
    function()
    return Timing(
        time.perf_counter() - wall, time.thread_time() - thread_cpu, time.process_time() - process_cpu
    )


def describe(values: list[float], unit: str) -> str:
    """Format the median and the range of `values`."""
    return f"{statistics.median(values):7.2f}{unit} (range {min(values):.2f}–{max(values):.2f})"


def time_ingest(folder: Path, workers: int) -> Timing:
    """Time `ingest()` into an empty cache; creating and deleting the cache folder is not timed."""
    cache = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    try:
        options = IngestOptions(workers=workers)
        timing = time_once(lambda: ingest(folder, cache, options))
        assert len(list(cache.rglob("*.png"))) > 0
    finally:
        shutil.rmtree(cache)
    return timing


def peak_traced_bytes(folder: Path) -> int:
    tracemalloc.start()
    time_ingest(folder, workers=1)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=300, help="Number of DICOM files.")
    parser.add_argument(
        "--repeats", type=int, default=5, help="Timed rounds; the median and range are reported."
    )
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

        variants = {
            "bare loop": lambda: time_once(lambda: bare_loop(paths)),
            "ingest, 1 worker": lambda: time_ingest(folder, 1),
            "ingest, 2 workers": lambda: time_ingest(folder, 2),
        }
        first_runs = {label: run_variant() for label, run_variant in variants.items()}
        timings: dict[str, list[Timing]] = {label: [] for label in variants}
        for _ in range(args.repeats):
            for label, run_variant in variants.items():
                timings[label].append(run_variant())
        peak_half = peak_traced_bytes(half)
        peak_full = peak_traced_bytes(folder)

    count = args.files
    goals = {"ingest, 1 worker": 0.9, "ingest, 2 workers": 1.6}
    print(f"files: {count} DICOM ({len(single_frame_sources())} distinct bundled images), {args.repeats} rounds")
    print("wall clock:")
    for label, runs in timings.items():
        line = f"  {label + ':':19s} {describe([count / run.wall for run in runs], ' files/s')}"
        if label in goals:
            ratios = [bare.wall / run.wall for bare, run in zip(timings["bare loop"], runs)]
            line += f"  ratio {describe(ratios, 'x')} (goal >= {goals[label]})"
        print(line)
    print(
        "  first 2-worker ingest of the run, with the forkserver start: "
        f"{count / first_runs['ingest, 2 workers'].wall:.1f} files/s"
    )
    # CPU time depends far less on other programs than the wall clock does.
    # When the cache writer thread has a core of its own, the calling thread's
    # CPU time bounds a 1-worker ingest. Worker processes are not counted.
    print("CPU time per file, in this process:")
    for label in ("bare loop", "ingest, 1 worker"):
        runs = timings[label]
        print(
            f"  {label + ':':19s} calling thread {describe([run.thread_cpu / count * 1e3 for run in runs], ' ms')}"
            f", all threads {describe([run.process_cpu / count * 1e3 for run in runs], ' ms')}"
        )
    print(
        f"peak traced memory: {peak_half / 2**20:.1f} MiB at {count // 2} files, "
        f"{peak_full / 2**20:.1f} MiB at {count} files"
    )


if __name__ == "__main__":
    main()
