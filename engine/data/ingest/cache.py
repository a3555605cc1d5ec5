"""A content-addressed cache of decoded 8-bit PNG images.

Each entry is `<key>.png` plus `<key>.json`, where the key hashes the source
file's bytes together with the settings that change the decoded picture.
Greyscale images are stored as 8-bit greyscale PNG and colour images as
8-bit RGB PNG; readers convert to RGB when they open them.
Re-ingesting an unchanged file reads the JSON instead of decoding again.
The JSON holds only the size, pixel hash, hashed group key, non-identifying
DICOM descriptors and the decoder's notes.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


# Bump when a decoder change alters decoded pixels, so old entries are not reused.
DECODER_VERSION = "1"

# zlib level 1 writes several times faster than Pillow's default of 6, for
# files about a third larger; the cache favours ingestion speed.
_PNG_COMPRESS_LEVEL = 1

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# IDAT data is split into chunks of this size; the PNG format allows at most
# 2**31 - 1 bytes in one chunk.
_PNG_IDAT_BYTES = 1 << 24

_READ_CHUNK_BYTES = 1 << 20


@dataclass
class CachedImage:
    """A decoded image stored in the cache."""

    image_path: Path
    width: int
    height: int
    pixel_hash: str
    warnings: list[str] = field(default_factory=list)
    group_key: str | None = None
    dicom: dict[str, Any] | None = None


def content_key(path: Path, settings: str) -> str:
    """Hash a file's bytes with the decoder version and the settings fingerprint."""
    digest = hashlib.sha256()
    digest.update(f"decoder={DECODER_VERSION};{settings}\0".encode())
    with path.open("rb") as handle:
        while chunk := handle.read(_READ_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def pixel_hash(pixels: np.ndarray) -> str:
    """Hash decoded pixels with their shape, so equal images match whatever their file.

    Greyscale (H, W) arrays are hashed as their (H, W, 3) RGB expansion, so a
    greyscale image and an RGB copy of it with three equal channels get the
    same hash.
    """
    if pixels.ndim == 2:
        pixels = pixels[:, :, None].repeat(3, axis=2)
    digest = hashlib.sha256(repr(pixels.shape).encode())
    digest.update(np.ascontiguousarray(pixels).tobytes())
    return digest.hexdigest()[:32]


def encode_png(pixels: np.ndarray) -> bytes:
    """Encode an 8-bit (H, W) grey or (H, W, 3) RGB array as PNG.

    Every row uses PNG filter type 0 (None) and zlib compression level 1.
    Pillow 12's encoder chooses a filter for each row, which took about twice
    as long at the same level for files about 6 % smaller on the bundled
    pydicom images (docs/benchmarks.md, section Ingestion).
    """
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3) or pixels.ndim == 3 and pixels.shape[2] != 3:
        raise ValueError(f"encode_png expects uint8 (H, W) or (H, W, 3) pixels, got {pixels.dtype} {pixels.shape}")
    height, width = pixels.shape[:2]
    colour_type = 0 if pixels.ndim == 2 else 2
    rows = pixels.reshape(height, -1)
    scanlines = np.zeros((height, rows.shape[1] + 1), dtype=np.uint8)
    scanlines[:, 1:] = rows
    compressed = zlib.compress(scanlines.data, _PNG_COMPRESS_LEVEL)

    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    parts = [_PNG_SIGNATURE, *_png_chunk(b"IHDR", header)]
    view = memoryview(compressed)
    for start in range(0, max(len(view), 1), _PNG_IDAT_BYTES):
        parts.extend(_png_chunk(b"IDAT", view[start : start + _PNG_IDAT_BYTES]))
    parts.extend(_png_chunk(b"IEND", b""))
    return b"".join(parts)


def _png_chunk(kind: bytes, data: bytes | memoryview) -> list[bytes | memoryview]:
    checksum = zlib.crc32(data, zlib.crc32(kind))
    return [struct.pack(">I", len(data)), kind, data, struct.pack(">I", checksum)]


class ImageCache:
    """Stores and looks up decoded images under a cache folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _paths(self, key: str) -> tuple[Path, Path]:
        folder = self.root / key[:2]
        return folder / f"{key}.png", folder / f"{key}.json"

    def lookup(self, key: str) -> CachedImage | None:
        """Return the cached entry for `key`, or None when absent or incomplete."""
        image_path, meta_path = self._paths(key)
        if not image_path.is_file() or not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            return CachedImage(image_path=image_path, **meta)
        except (ValueError, TypeError):
            return None

    def store(self, key: str, pixels: np.ndarray, entry: CachedImage) -> CachedImage:
        """Write the PNG and its JSON atomically and return the entry with its path.

        `pixels` is an 8-bit (H, W) grey or (H, W, 3) RGB array.
        """
        image_path, meta_path = self._paths(key)
        image_path.parent.mkdir(parents=True, exist_ok=True)
        encoded = encode_png(pixels)
        _write_atomically(image_path, lambda handle: handle.write(encoded))
        entry.image_path = image_path
        meta = asdict(entry)
        del meta["image_path"]
        _write_atomically(meta_path, lambda handle: handle.write(json.dumps(meta).encode("utf-8")))
        return entry


def _write_atomically(target: Path, write) -> None:
    # A per-process temporary name is enough: two processes writing the same
    # key write identical bytes, and os.replace makes the last one win whole.
    temporary = target.with_name(f".tmp-{os.getpid()}-{target.name}")
    try:
        with temporary.open("wb") as handle:
            write(handle)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
