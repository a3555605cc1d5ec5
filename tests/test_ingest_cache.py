"""The image cache: PNG encoding, greyscale entries, the writer thread and worker processes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.data.ingest import IngestOptions, ingest
from engine.data.ingest.cache import ImageCache, encode_png, pixel_hash
from engine.data.ingest.dicom_pixels import decode_dicom
from tests.ingest_fixtures import PYDICOM_TEST_FILES, dicom_dataset, horizontal_ramp, write_dicom


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def records_by_path(result) -> dict:
    return {record.path: record for record in result.report.files}


@pytest.mark.parametrize(
    ("shape", "mode"),
    [((1, 1), "L"), ((3, 5), "L"), ((5, 3, 3), "RGB"), ((64, 257), "L"), ((31, 40, 3), "RGB")],
)
def test_encode_png_round_trips(tmp_path, shape, mode):
    pixels = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    path = tmp_path / "image.png"
    path.write_bytes(encode_png(pixels))

    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.mode == mode
        decoded = np.asarray(image)
    assert np.array_equal(decoded, pixels)


@pytest.mark.parametrize(
    "pixels",
    [np.zeros((4, 4), dtype=np.uint16), np.zeros((4, 4, 4), dtype=np.uint8), np.zeros(4, dtype=np.uint8)],
)
def test_encode_png_rejects_other_arrays(pixels):
    with pytest.raises(ValueError, match="expects uint8"):
        encode_png(pixels)


def test_grey_hash_equals_rgb_copy_hash():
    grey = horizontal_ramp(6, 9, 0, 255, np.uint8)
    rgb = np.repeat(grey[:, :, np.newaxis], 3, axis=2)

    assert pixel_hash(grey) == pixel_hash(rgb)
    assert pixel_hash(grey) != pixel_hash(grey.T.copy())


def test_grey_dicom_is_cached_as_grey_png(tmp_path):
    root = tmp_path / "in"
    ramp = horizontal_ramp(40, 64, 0, 4095, np.uint16)
    path = write_dicom(root / "ramp.dcm", dicom_dataset(ramp, bits_stored=12))
    write_text(root / "ramp.txt", "ramp")

    result = ingest(root, tmp_path / "cache")

    sample = result.samples[0]
    expected = decode_dicom(path, "ramp.dcm", IngestOptions()).rgb
    with Image.open(sample.image_path) as cached:
        assert cached.mode == "L"
        as_rgb = np.asarray(cached.convert("RGB"))
    assert np.array_equal(as_rgb, expected)
    assert sample.pixel_hash == pixel_hash(expected)


def test_colour_dicom_is_cached_as_rgb_png(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    shutil.copyfile(PYDICOM_TEST_FILES / "SC_rgb_rle.dcm", root / "colour.dcm")
    write_text(root / "colour.txt", "colour")

    result = ingest(root, tmp_path / "cache")

    with Image.open(result.samples[0].image_path) as cached:
        assert cached.mode == "RGB"
        cached_pixels = np.asarray(cached)
    expected = decode_dicom(root / "colour.dcm", "colour.dcm", IngestOptions()).rgb
    assert np.array_equal(cached_pixels, expected)


def test_grey_and_rgb_copies_are_duplicates(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    grey = horizontal_ramp(30, 40, 0, 255, np.uint8)
    Image.fromarray(grey).save(root / "a.png")
    Image.fromarray(np.repeat(grey[:, :, np.newaxis], 3, axis=2)).save(root / "b.png")
    write_text(root / "a.txt", "one")
    write_text(root / "b.txt", "two")

    result = ingest(root, tmp_path / "cache")

    assert "duplicate of a.png (same decoded pixels)" in records_by_path(result)["b.png"].warnings
    with Image.open(result.samples[0].image_path) as first, Image.open(result.samples[1].image_path) as second:
        assert {first.mode, second.mode} == {"L", "RGB"}


def test_unwritable_cache_is_reported_per_file(tmp_path, monkeypatch):
    root = tmp_path / "in"
    for index in range(4):
        ramp = horizontal_ramp(30, 30 + index, 0, 255, np.uint8)
        write_dicom(root / f"im{index}.dcm", dicom_dataset(ramp))
    write_text(root / "report.txt", "study report")
    original_store = ImageCache.store

    def store_failing_for_im2(self, key, pixels, entry):
        if pixels.shape[1] == 32:
            raise OSError(28, "No space left on device")
        return original_store(self, key, pixels, entry)

    monkeypatch.setattr(ImageCache, "store", store_failing_for_im2)
    result = ingest(root, tmp_path / "cache")

    records = records_by_path(result)
    assert records["im2.dcm"].status == "error"
    assert records["im2.dcm"].category == "cache not writable"
    assert "No space left on device" in records["im2.dcm"].reason
    assert [records[f"im{index}.dcm"].status for index in (0, 1, 3)] == ["ok", "ok", "ok"]
    assert len(result.samples) == 3


def test_two_workers_match_one_worker(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    names = ["CT_small.dcm", "MR_small_RLE.dcm", "SC_rgb_jpeg_dcmtk.dcm", "examples_palette.dcm", "rtplan.dcm"]
    for name in names:
        shutil.copyfile(PYDICOM_TEST_FILES / name, root / name)
    Image.fromarray(horizontal_ramp(30, 40, 0, 255, np.uint8)).save(root / "grey.png")
    ct_bytes = (PYDICOM_TEST_FILES / "CT_small.dcm").read_bytes()
    (root / "truncated.dcm").write_bytes(ct_bytes[: len(ct_bytes) * 2 // 3])
    write_text(root / "report.txt", "study report")

    one_worker = ingest(root, tmp_path / "cache-1", IngestOptions(workers=1))
    two_workers = ingest(root, tmp_path / "cache-2", IngestOptions(workers=2))

    def comparable(result) -> list[dict]:
        records = []
        for record in result.report.files:
            data = record.to_json()
            if "cached_image" in data:
                data["cached_image"] = Path(data["cached_image"]).name
            records.append(data)
        return records

    assert comparable(two_workers) == comparable(one_worker)
    assert [s.pixel_hash for s in two_workers.samples] == [s.pixel_hash for s in one_worker.samples]
    assert one_worker.report.totals["ok"] == 6
    assert one_worker.report.totals["skipped"] == 1
    assert one_worker.report.totals["error"] == 1
