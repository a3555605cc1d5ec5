"""Turn the user's data path into training samples, with every file accounted for."""

from __future__ import annotations

import logging
from pathlib import Path

from engine.data.sample import Sample


logger = logging.getLogger(__name__)


def make_private_dir(path: Path) -> Path:
    """Create `path` (and parents) readable by the owner only, because it will hold decoded patient images."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def load_samples(path: Path, cache_dir: Path) -> tuple[list[Sample], dict]:
    """Ingest a folder or zip and return (samples, ingestion report as a dict)."""
    from engine.data.ingest import ingest

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Data path {path} does not exist; pass a folder or .zip of images with reports.")
    result = ingest(path, make_private_dir(Path(cache_dir)))
    report = result.report.to_json()
    if not result.samples:
        raise ValueError(
            f"No usable image–report pairs in {path}.\n{result.report.summary_text()}\n"
            "Each image needs a report: a same-named .txt/.md file, a manifest, or a report.txt in its folder."
        )
    logger.info("Ingested %s: %d usable pairs", path, len(result.samples))
    return result.samples, report
