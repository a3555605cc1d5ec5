"""Decoding PNG, JPEG, TIFF, BMP and other Pillow formats to 8-bit greyscale or RGB."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from engine.data.ingest.options import IngestOptions
from engine.data.ingest.records import DecodedPixels, RejectedFile
from engine.data.ingest.transforms import (
    aspect_ratio,
    composite_on_black,
    downscaled_size,
    percentile_window,
    unit_to_uint8,
    window_to_unit,
)


# Extensions decoded with Pillow. Other files are recognised by content.
RASTER_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".tif", ".tiff", ".bmp", ".gif", ".webp"}
)

# Pillow modes whose samples exceed 8 bits and must be windowed with numpy,
# because `Image.convert("L")` clips them instead of scaling.
_HIGH_BIT_DEPTH_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


def check_header_size(width: int, height: int, name: str, options: IngestOptions) -> None:
    """Raise RejectedFile when a header size breaks the pixel or aspect-ratio limits."""
    pixels = width * height
    if pixels > options.reject_above_pixels:
        raise RejectedFile(
            "error",
            "image too large",
            f"{name}: {width}×{height} = {pixels:,} pixels exceeds the limit of "
            f"{options.reject_above_pixels:,} (IngestOptions.reject_above_pixels). "
            "Export a smaller image, or raise the limit if the machine has the memory.",
        )
    ratio = aspect_ratio(width, height)
    if ratio > options.max_aspect_ratio:
        raise RejectedFile(
            "error",
            "extreme aspect ratio",
            f"{name}: {width}×{height} has an aspect ratio of {ratio:.0f}:1, over the limit "
            f"of {options.max_aspect_ratio:.0f}:1 (IngestOptions.max_aspect_ratio). "
            "Crop the image to the region of interest.",
        )


def decode_raster(path: Path, name: str, options: IngestOptions) -> DecodedPixels:
    """Decode an image file with Pillow into 8-bit greyscale or RGB.

    Steps: header size check, full pixel load (so truncated files fail here),
    EXIF orientation, the first frame of multi-frame files, high-bit-depth
    windowing with numpy, alpha composited onto black, greyscale kept as one
    channel and every other mode converted to RGB. Large JPEGs are decoded at a reduced scale (`draft`)
    when that still leaves at least `max_side` pixels.
    """
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            # The header check below enforces our own, lower, limit.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError as error:
        raise RejectedFile(
            "error",
            "image too large",
            f"{name}: rejected by Pillow's decompression-bomb guard ({error}). "
            "Export a smaller image.",
        ) from error
    except UnidentifiedImageError as error:
        raise RejectedFile(
            "error",
            "not a readable image",
            f"{name}: not an image that Pillow can read (the content does not match any "
            "image format). Re-export it as PNG or JPEG, or remove it.",
        ) from error
    except OSError as error:
        raise RejectedFile(
            "error", "not a readable image", f"{name}: cannot be opened as an image: {error}."
        ) from error

    with image:
        width, height = image.size
        check_header_size(width, height, name, options)
        frame_count = getattr(image, "n_frames", 1)
        if frame_count > 1:
            notes.append(f"frame 1 of {frame_count} used (first frame)")
        if image.format == "JPEG":
            target = downscaled_size(width, height, options.max_side)
            image.draft(image.mode, target)
        orientation = _exif_orientation(image)
        try:
            image.load()
            oriented = ImageOps.exif_transpose(image)
        except (OSError, SyntaxError, ValueError) as error:
            raise RejectedFile(
                "error",
                "truncated or corrupt image",
                f"{name}: pixel data could not be decoded ({error}). The file is truncated "
                "or damaged; export or copy it again.",
            ) from error
        if orientation not in (None, 1):
            notes.append(f"EXIF orientation {orientation} applied")
        pixels = pillow_to_pixels(oriented, notes)
    return DecodedPixels(pixels=pixels, warnings=notes)


def _exif_orientation(image: Image.Image) -> int | None:
    try:
        return image.getexif().get(0x0112)
    except (OSError, ValueError):
        return None


def pillow_to_pixels(image: Image.Image, notes: list[str]) -> np.ndarray:
    """Convert a loaded Pillow image of any mode to 8 bits, (H, W) grey or (H, W, 3) RGB.

    Greyscale ("L", "1", and high-bit-depth "I;16", "I", "F") stays one
    channel. High-bit-depth grey gets a percentile window first and a note
    saying so. Alpha ("RGBA", "LA", "PA", palette transparency) is composited
    onto black and gives RGB. Every other mode is converted to RGB.
    """
    mode = image.mode
    if mode in _HIGH_BIT_DEPTH_MODES:
        values = np.asarray(image)
        if values.dtype.byteorder not in ("=", "|"):
            values = values.astype(values.dtype.newbyteorder("="))
        low, high = percentile_window(values)
        notes.append(f"{mode} image windowed to 8 bits: [{low:g}, {high:g}] (percentile window)")
        return unit_to_uint8(window_to_unit(values, low, high))

    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        mode == "P" and "transparency" in image.info
    ) or (mode in ("L", "RGB") and "transparency" in image.info)
    if has_alpha:
        rgba = np.asarray(image.convert("RGBA"))
        if rgba[:, :, 3].min() < 255:
            notes.append("alpha channel composited onto black")
        return composite_on_black(rgba)
    if mode in ("L", "RGB"):
        return np.asarray(image)
    if mode == "1":
        return np.asarray(image.convert("L"))
    return np.asarray(image.convert("RGB"))
