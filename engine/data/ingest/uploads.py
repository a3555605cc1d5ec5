"""Ingesting a browser upload, where every file arrives under its bare name.

A browser folder upload (Gradio included) drops the folder structure: each
file reaches the server as its bare name in a temporary folder of its own.
The files are staged into one folder and ingested as a flat layout. When two
different files share a bare name, pairing by name would be a guess, so the
upload is rejected with a request for a zip or unique names.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path

from engine.data.ingest.file_kinds import ARCHIVE_EXTENSIONS
from engine.data.ingest.options import IngestError, IngestOptions
from engine.data.ingest.pipeline import IngestResult, ingest


def find_name_collisions(paths: list[Path]) -> dict[str, list[Path]]:
    """Return bare names shared by files with different content.

    The same path given twice, or two byte-identical files with one name, do
    not collide.
    """
    by_name: dict[str, list[Path]] = defaultdict(list)
    for path in dict.fromkeys(Path(p) for p in paths):
        by_name[path.name].append(path)
    collisions = {}
    for name, group in by_name.items():
        distinct = [group[0]]
        for candidate in group[1:]:
            if not any(filecmp.cmp(candidate, kept, shallow=False) for kept in distinct):
                distinct.append(candidate)
        if len(distinct) > 1:
            collisions[name] = distinct
    return collisions


def ingest_files(
    paths: list[Path], cache_dir: Path, options: IngestOptions | None = None
) -> IngestResult:
    """Ingest uploaded files given by path, each known only by its bare name.

    A single `.zip` is ingested as an archive, with its folder structure.
    Otherwise the files are staged (hard-linked where possible, else copied)
    into one folder and ingested as a flat folder. Raises IngestError when
    two different files share a bare name.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise IngestError("No files were uploaded. Select a folder, files, or a .zip archive.")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise IngestError(f"Uploaded files not found: {', '.join(missing[:5])}. Upload them again.")
    if len(paths) == 1 and paths[0].suffix.lower() in ARCHIVE_EXTENSIONS:
        return ingest(paths[0], cache_dir, options)

    collisions = find_name_collisions(paths)
    if collisions:
        examples = ", ".join(
            f"{name!r} ({len(group)} different files)" for name, group in list(collisions.items())[:5]
        )
        raise IngestError(
            f"{len(collisions)} file name(s) occur more than once with different content: "
            f"{examples}. A browser upload drops folder names, so these files cannot be told "
            "apart or paired with the right report. Upload a .zip of the folder instead, or "
            "give every file a unique name."
        )

    cache_dir = Path(cache_dir)
    staging_parent = cache_dir / "staging"
    staging_parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="upload-", dir=staging_parent))
    try:
        for path in dict.fromkeys(paths):
            target = staging / path.name
            if target.exists():
                continue
            try:
                os.link(path, target)
            except OSError:
                shutil.copyfile(path, target)
        return ingest(staging, cache_dir, options)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
