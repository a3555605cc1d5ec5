"""Command-line front end of ingestion: `python -m engine ingest PATH`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.data.ingest.options import IngestError, IngestOptions
from engine.data.ingest.pipeline import ingest
from engine.data.loading import make_private_dir
from engine.models.demo import cache_root


DEFAULT_CACHE_DIR = cache_root() / "images"


def add_ingest_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ingestion arguments to `parser`."""
    defaults = IngestOptions()
    parser.add_argument("path", type=Path, help="Folder or .zip archive of images and reports.")
    parser.add_argument(
        "--json", type=Path, metavar="REPORT.json",
        help="Write the per-file report (totals, status, reason, pairing) to this JSON file.",
    )
    parser.add_argument(
        "--cache", type=Path, default=None, metavar="DIR",
        help=f"Folder for the decoded 8-bit PNG images (default: {DEFAULT_CACHE_DIR}).",
    )
    parser.add_argument(
        "--max-side", type=int, default=defaults.max_side,
        help="Downscale images whose longest side exceeds this many pixels.",
    )
    parser.add_argument(
        "--min-side", type=int, default=defaults.min_side,
        help="Pad images with black until both sides have at least this many pixels.",
    )
    parser.add_argument(
        "--reject-above-pixels", type=int, default=defaults.reject_above_pixels,
        help="Reject images whose header declares more pixels (width × height) than this.",
    )
    parser.add_argument(
        "--workers", type=int, default=defaults.workers,
        help="Number of processes that decode images in parallel.",
    )


def run_ingest(args: argparse.Namespace) -> int:
    """Run ingestion from parsed arguments; return 0 on success, 2 on an unusable input.

    The summary goes to standard output, errors to standard error.
    """
    cache_dir = make_private_dir((args.cache or DEFAULT_CACHE_DIR).expanduser())
    try:
        options = IngestOptions(
            max_side=args.max_side,
            min_side=args.min_side,
            reject_above_pixels=args.reject_above_pixels,
            workers=args.workers,
        )
        result = ingest(args.path, cache_dir, options)
    except IngestError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(result.report.to_json(), indent=2, ensure_ascii=False), encoding="utf-8"
        )
    print(result.report.summary_text())
    if args.json is not None:
        print(f"Report written to {args.json}")
    return 0
