"""Ingestion of folder layouts: flat pairs, manifests, study folders, archives, uploads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from engine.data.ingest import ingest

SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data"


def test_sample_data_yields_40_samples(tmp_path):
    result = ingest(SAMPLE_DATA, tmp_path / "cache")

    input_files = sorted(p.name for p in SAMPLE_DATA.iterdir() if p.is_file())
    reported = sorted(record.path for record in result.report.files)
    assert reported == input_files
    assert len(result.samples) == 40
    assert result.report.totals["files"] == len(input_files)
    assert result.report.totals["ok"] == len(input_files)
    for sample in result.samples:
        assert len(sample.attributes) == 12
        assert sample.report.startswith("Cell type: ")
        with Image.open(sample.image_path) as image:
            assert image.mode == "RGB"
        assert sample.pixel_hash


def test_sample_data_cached_pixels_match_source(tmp_path):
    result = ingest(SAMPLE_DATA, tmp_path / "cache")

    sample = result.samples[0]
    with Image.open(SAMPLE_DATA / sample.source) as original:
        expected = np.asarray(original.convert("RGB"))
    with Image.open(sample.image_path) as cached:
        actual = np.asarray(cached)
    assert np.array_equal(actual, expected)
