"""The offline demo model: a tiny, randomly initialised LLaVA built on first use.

Its answers are meaningless. It exists so that ingestion, tuning, evaluation
and the app can run end to end on a machine without a model hub. It is built
with the same code the tests use, saved like any checkpoint, and then loaded
through the same Auto classes as a real model.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path


logger = logging.getLogger(__name__)

DEMO_FAMILY = "llava"
# Bump when the builder changes, so stale caches are rebuilt rather than reused.
DEMO_VERSION = "1"


def cache_root() -> Path:
    """Return the folder for engine caches (`IFT_CACHE_DIR`, default `~/.cache/instruction-free-tuning`)."""
    return Path(os.environ.get("IFT_CACHE_DIR", Path.home() / ".cache" / "instruction-free-tuning")).expanduser()


def demo_model_dir() -> Path:
    return cache_root() / f"demo-{DEMO_FAMILY}-v{DEMO_VERSION}"


def ensure_demo_model() -> Path:
    """Return the demo model folder, building it first if it is missing.

    The model is written to a temporary sibling folder and renamed into place,
    so a concurrent or interrupted build never leaves a half-written model.
    """
    target = demo_model_dir()
    if (target / "config.json").exists():
        return target

    from engine.models.tiny import build_tiny_vlm

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".demo-build-", dir=target.parent))
    try:
        logger.info("Building the offline demo model (tiny random %s) in %s", DEMO_FAMILY, target)
        build_tiny_vlm(DEMO_FAMILY, staging, seed=0)
        try:
            staging.rename(target)
        except OSError:
            # Another process finished first; its copy is equivalent.
            if not (target / "config.json").exists():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target
