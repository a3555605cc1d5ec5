"""Shared fixtures: tiny models built offline, once per test session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DATA = REPO_ROOT / "sample_data"

# Every test runs offline, with its caches in a per-session folder.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("ift-cache")
    previous = os.environ.get("IFT_CACHE_DIR")
    os.environ["IFT_CACHE_DIR"] = str(cache)
    yield cache
    if previous is None:
        os.environ.pop("IFT_CACHE_DIR", None)
    else:
        os.environ["IFT_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def tiny_model_factory(tmp_path_factory):
    """Return a function family -> folder of a tiny random model of that family."""
    from engine.models.tiny import build_tiny_vlm

    built: dict[str, Path] = {}

    def build(family: str) -> Path:
        if family not in built:
            folder = tmp_path_factory.mktemp(f"tiny-{family}")
            build_tiny_vlm(family, folder, seed=0)
            built[family] = folder
        return built[family]

    return build


@pytest.fixture
def small_data(tmp_path) -> Path:
    """Eight real image–report pairs from the bundled sample data (two per cell type)."""
    folder = tmp_path / "data"
    folder.mkdir()
    for prefix in ("BA", "EO", "LY", "NE"):
        for image in sorted(SAMPLE_DATA.glob(f"{prefix}_*.jpg"))[:2]:
            shutil.copy(image, folder / image.name)
            shutil.copy(image.with_suffix(".txt"), folder / image.with_suffix(".txt").name)
    return folder
