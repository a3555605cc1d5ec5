"""A content-addressed cache of decoded 8-bit RGB PNG images.

Each entry is `<key>.png` plus `<key>.json`, where the key hashes the source
file's bytes together with the settings that change the decoded picture.
Re-ingesting an unchanged file reads the JSON instead of decoding again.
The JSON holds only the size, pixel hash, hashed group key, non-identifying
DICOM descriptors and the decoder's notes.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

# Bump when a decoder change alters decoded pixels, so old entries are not reused.
DECODER_VERSION = "1"

# zlib level 1 writes several times faster than Pillow's default of 6, for
# files about a third larger; the cache favours ingestion speed.
_PNG_COMPRESS_LEVEL = 1

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


def pixel_hash(rgb: np.ndarray) -> str:
    """Hash decoded pixels with their shape, so equal images match whatever their file."""
    digest = hashlib.sha256(repr(rgb.shape).encode())
    digest.update(np.ascontiguousarray(rgb).tobytes())
    return digest.hexdigest()[:32]


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

    def store(self, key: str, rgb: np.ndarray, entry: CachedImage) -> CachedImage:
        """Write the PNG and its JSON atomically and return the entry with its path."""
        image_path, meta_path = self._paths(key)
        image_path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(
            image_path,
            lambda handle: Image.fromarray(rgb, mode="RGB").save(
                handle, format="PNG", compress_level=_PNG_COMPRESS_LEVEL
            ),
        )
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
