"""Pure image transforms that bring any decoded array to 8-bit greyscale or RGB.

Each function takes an array (or sizes) and returns a new value; none reads
files or keeps state. Arrays are (H, W) for grey and (H, W, 3) for RGB.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


# A window from the 0.5th to the 99.5th percentile ignores the few outlier
# pixels (burned-in text, metal, detector defects) that a min–max window
# would stretch the whole image to fit.
PERCENTILE_LOW = 0.5
PERCENTILE_HIGH = 99.5

# Percentiles are taken from at most this many evenly spaced pixels.
_PERCENTILE_SAMPLE = 1 << 20


def percentile_window(
    values: np.ndarray, exclude: float | None = None
) -> tuple[float, float]:
    """Return the (low, high) percentile window of `values`.

    `exclude` drops one value first (DICOM Pixel Padding Value). When the
    percentiles coincide, the window falls back to the min and max. For a
    constant array both ends are equal, so `window_to_unit` maps it to 0.
    """
    flat = values.reshape(-1)
    if flat.size > _PERCENTILE_SAMPLE:
        flat = flat[:: flat.size // _PERCENTILE_SAMPLE]
    if exclude is not None:
        kept = flat[flat != exclude]
        if kept.size:
            flat = kept
    finite = flat[np.isfinite(flat)] if flat.dtype.kind == "f" else flat
    if finite.size == 0:
        return 0.0, 0.0
    low, high = np.percentile(finite, [PERCENTILE_LOW, PERCENTILE_HIGH])
    if high <= low:
        low, high = float(finite.min()), float(finite.max())
    return float(low), float(high)


def window_to_unit(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map `values` linearly so that `low` → 0 and `high` → 1, clipped, as float32.

    NaN becomes 0. When `high <= low` every value maps to 0.
    """
    if high <= low:
        return np.zeros(values.shape, dtype=np.float32)
    precision = np.float64 if values.dtype.itemsize > 2 else np.float32
    unit = values.astype(precision)
    unit -= precision(low)
    unit *= precision(1.0 / (high - low))
    if values.dtype.kind == "f":
        np.nan_to_num(unit, copy=False, nan=0.0, posinf=1.0, neginf=0.0)
    np.clip(unit, 0.0, 1.0, out=unit)
    return unit.astype(np.float32, copy=False)


def unit_to_uint8(unit: np.ndarray) -> np.ndarray:
    """Round values in [0, 1] to 8 bits."""
    scaled = unit * 255.0
    np.rint(scaled, out=scaled)
    return scaled.astype(np.uint8)


def scale_to_uint8(values: np.ndarray, maximum: float) -> np.ndarray:
    """Scale integers in [0, maximum] to 8 bits, for data whose full range is known."""
    if maximum <= 0:
        return np.zeros(values.shape, dtype=np.uint8)
    return unit_to_uint8(window_to_unit(values, 0.0, float(maximum)))


def composite_on_black(rgba: np.ndarray) -> np.ndarray:
    """Composite an 8-bit (H, W, 4) RGBA array onto black and return RGB.

    Fully transparent pixels become black, so transparent padding around a
    cut-out does not turn white or keep hidden colour values.
    """
    rgb = rgba[:, :, :3].astype(np.uint16)
    alpha = rgba[:, :, 3:4].astype(np.uint16)
    return ((rgb * alpha + 127) // 255).astype(np.uint8)


def aspect_ratio(width: int, height: int) -> float:
    """Return long side / short side; infinite when a side is 0."""
    short_side = min(width, height)
    if short_side <= 0:
        return float("inf")
    return max(width, height) / short_side


def downscaled_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """Return the size whose long side is at most `max_side`, keeping the ratio."""
    long_side = max(width, height)
    if long_side <= max_side:
        return width, height
    scale = max_side / long_side
    return max(1, round(width * scale)), max(1, round(height * scale))


def downscale(pixels: np.ndarray, max_side: int) -> np.ndarray:
    """Downscale an 8-bit grey or RGB array so its long side is at most `max_side`.

    Uses Pillow's Lanczos filter, with `reduce` first for large factors.
    Returns the input unchanged when it already fits.
    """
    height, width = pixels.shape[:2]
    target = downscaled_size(width, height, max_side)
    if target == (width, height):
        return pixels
    image = Image.fromarray(pixels)
    reducing_gap = 3.0
    return np.asarray(image.resize(target, Image.Resampling.LANCZOS, reducing_gap=reducing_gap))


def pad_to_min_side(pixels: np.ndarray, min_side: int) -> np.ndarray:
    """Pad a grey or RGB array with black so both sides are at least `min_side`.

    The image stays centred. Returns the input unchanged when it already fits.
    """
    height, width = pixels.shape[:2]
    pad_height = max(0, min_side - height)
    pad_width = max(0, min_side - width)
    if pad_height == 0 and pad_width == 0:
        return pixels
    top = pad_height // 2
    left = pad_width // 2
    padding = [(top, pad_height - top), (left, pad_width - left)] + [(0, 0)] * (pixels.ndim - 2)
    return np.pad(pixels, padding, mode="constant", constant_values=0)
