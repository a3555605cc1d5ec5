"""Decoding PNG, JPEG, TIFF and BMP files, and the size limits applied to every image."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from engine.data.ingest import IngestOptions
from engine.data.ingest.raster_images import decode_raster
from engine.data.ingest.records import RejectedFile
from engine.data.ingest.transforms import composite_on_black, pad_to_min_side, percentile_window
from tests.ingest_fixtures import write_png_header


OPTIONS = IngestOptions()


def decode(path, options=OPTIONS):
    return decode_raster(path, path.name, options)


def test_16_bit_png_is_windowed_not_clipped(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (40, 1))
    path = tmp_path / "ramp16.png"
    Image.fromarray(ramp).save(path)
    with Image.open(path) as check:
        assert check.mode.startswith("I")

    result = decode(path)
    row = result.rgb[0, :, 0]

    assert row[0] == 0
    assert row[-1] == 255
    assert 120 <= row[128] <= 135
    assert np.all(np.diff(row.astype(int)) >= 0)
    assert any("percentile window" in note for note in result.warnings)


def test_float_tiff_is_windowed(tmp_path):
    values = np.tile(np.linspace(-1.0, 1.0, 100, dtype=np.float32), (40, 1))
    path = tmp_path / "float.tif"
    Image.fromarray(values, mode="F").save(path)

    row = decode(path).rgb[0, :, 0]

    assert row[0] == 0
    assert row[-1] == 255
    assert 120 <= row[50] <= 135


def test_rgba_composited_onto_black(tmp_path):
    rgba = np.zeros((30, 30, 4), dtype=np.uint8)
    rgba[:, :, 0] = 200
    rgba[:, :15, 3] = 255
    rgba[:, 15:, 3] = 0
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba, mode="RGBA").save(path)

    rgb = decode(path).rgb

    assert tuple(rgb[0, 0]) == (200, 0, 0)
    assert tuple(rgb[0, 29]) == (0, 0, 0)


def test_la_half_alpha(tmp_path):
    la = np.zeros((30, 30, 2), dtype=np.uint8)
    la[:, :, 0] = 200
    la[:, :, 1] = 128
    path = tmp_path / "la.png"
    Image.fromarray(la, mode="LA").save(path)

    rgb = decode(path).rgb

    assert tuple(rgb[0, 0]) == (100, 100, 100)


def test_palette_image_becomes_rgb(tmp_path):
    image = Image.new("P", (30, 30))
    image.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    image.paste(1, (0, 0, 30, 15))
    path = tmp_path / "palette.png"
    image.save(path)

    rgb = decode(path).rgb

    assert tuple(rgb[0, 0]) == (10, 20, 30)
    assert tuple(rgb[29, 0]) == (0, 0, 0)


def test_palette_transparency_is_black(tmp_path):
    image = Image.new("P", (30, 30), 1)
    image.putpalette([0, 0, 0, 250, 250, 250] + [0] * 762)
    image.info["transparency"] = 1
    path = tmp_path / "transparent.png"
    image.save(path, transparency=1)

    rgb = decode(path).rgb

    assert rgb.max() == 0


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    image = Image.new("CMYK", (32, 32), (0, 255, 255, 0))
    path = tmp_path / "cmyk.jpg"
    image.save(path, quality=95)

    rgb = decode(path).rgb

    assert rgb.shape == (32, 32, 3)
    assert rgb[16, 16, 0] > 230
    assert rgb[16, 16, 1] < 30
    assert rgb[16, 16, 2] < 30


def test_exif_rotation_is_applied(tmp_path):
    pixels = np.zeros((40, 60, 3), dtype=np.uint8)
    pixels[:, :30] = (255, 255, 255)
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif, quality=95)

    result = decode(path)

    assert result.rgb.shape == (60, 40, 3)
    # The white left half of the stored image is the top half once rotated clockwise.
    assert result.rgb[5, 20].min() > 200
    assert result.rgb[55, 20].max() < 50
    assert "EXIF orientation 6 applied" in result.warnings


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_truncated_file_is_rejected(tmp_path, suffix):
    noise = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="JPEG" if suffix == ".jpg" else "PNG")
    path = tmp_path / f"truncated{suffix}"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])

    with pytest.raises(RejectedFile, match="truncated or damaged") as caught:
        decode(path)
    assert caught.value.category == "truncated or corrupt image"


def test_text_file_named_png_is_rejected(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not an image\n", encoding="utf-8")

    with pytest.raises(RejectedFile, match="not an image that Pillow can read"):
        decode(path)


def test_huge_header_rejected_before_decoding(tmp_path):
    path = write_png_header(tmp_path / "huge.png", 10_000, 10_000)

    with pytest.raises(RejectedFile, match="10000×10000 = 100,000,000 pixels exceeds the limit of 89,478,485"):
        decode(path)


def test_bomb_sized_header_rejected_by_pillow_guard(tmp_path):
    path = write_png_header(tmp_path / "bomb.png", 50_000, 50_000)

    with pytest.raises(RejectedFile, match="decompression-bomb guard"):
        decode(path)
    assert Image.MAX_IMAGE_PIXELS == 89_478_485


def test_extreme_aspect_ratio_rejected(tmp_path):
    path = tmp_path / "strip.png"
    Image.new("RGB", (2500, 10)).save(path)

    with pytest.raises(RejectedFile, match="aspect ratio of 250:1, over the limit of 200:1"):
        decode(path)


def test_large_jpeg_draft_keeps_max_side(tmp_path):
    path = tmp_path / "large.jpg"
    Image.new("RGB", (4000, 1000), (0, 128, 255)).save(path)

    rgb = decode(path, IngestOptions(max_side=500)).rgb

    assert max(rgb.shape[:2]) >= 500
    assert max(rgb.shape[:2]) < 4000


def test_pad_to_min_side_centres_image():
    tiny = np.full((10, 20, 3), 200, dtype=np.uint8)

    padded = pad_to_min_side(tiny, 28)

    assert padded.shape == (28, 28, 3)
    assert padded[0, 0].max() == 0
    assert tuple(padded[14, 14]) == (200, 200, 200)
    assert padded[9:19, 4:24].min() == 200


def test_composite_on_black_is_pure():
    rgba = np.array([[[255, 255, 255, 51]]], dtype=np.uint8)
    copy = rgba.copy()

    result = composite_on_black(rgba)

    assert tuple(result[0, 0]) == (51, 51, 51)
    assert np.array_equal(rgba, copy)


def test_percentile_window_excludes_padding():
    values = np.concatenate([np.full(5000, -2000.0), np.linspace(0, 100, 5000)])

    low, high = percentile_window(values, exclude=-2000.0)

    assert low >= 0
    assert high <= 100
