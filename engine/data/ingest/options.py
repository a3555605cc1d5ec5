"""Settings and the user-facing error of the ingestion step."""

from __future__ import annotations

from dataclasses import dataclass


class IngestError(ValueError):
    """Raised when the input as a whole cannot be ingested.

    The message names the path or value, the cause and what to do. Problems
    with single files never raise: they become `error` records in the report.
    """


# Pillow 12 warns above this many pixels (`PIL.Image.MAX_IMAGE_PIXELS`) and
# raises above twice as many. Using it as the default limit keeps the two
# checks consistent; the ingestion never lifts Pillow's own guard.
PILLOW_WARNING_PIXELS = 89_478_485


@dataclass(frozen=True)
class IngestOptions:
    """Limits and policies of the ingestion step.

    Every image leaves ingestion as 8-bit greyscale or RGB (converted to RGB
    when a consumer opens it) with both sides between `min_side` and
    `max_side` pixels.
    """

    max_side: int = 2048
    """Maximum side length in pixels. Larger images are downscaled to it, keeping the
    aspect ratio."""

    min_side: int = 28
    """Minimum side length in pixels. Smaller images are padded with black to it."""

    reject_above_pixels: int = PILLOW_WARNING_PIXELS
    """Images whose header declares more pixels (width × height) are rejected
    before any decoding."""

    max_aspect_ratio: float = 200.0
    """Images whose long side exceeds `max_aspect_ratio` × the short side are
    rejected."""

    workers: int = 1
    """Processes that decode images in parallel. 1 decodes in this process."""

    max_archive_bytes: int = 20 * 1024**3
    """Total uncompressed size allowed for one zip archive, in bytes."""

    max_archive_members: int = 100_000
    """Number of entries allowed in one zip archive."""

    def __post_init__(self) -> None:
        problems = []
        for name in ("max_side", "min_side", "reject_above_pixels", "workers"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.min_side, int) and isinstance(self.max_side, int):
            if self.min_side > self.max_side:
                problems.append(
                    f"min_side ({self.min_side}) must not exceed max_side ({self.max_side})"
                )
        if not self.max_aspect_ratio >= 1:
            problems.append(f"max_aspect_ratio must be at least 1, got {self.max_aspect_ratio!r}")
        for name in ("max_archive_bytes", "max_archive_members"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}")
        if problems:
            raise IngestError("Invalid IngestOptions: " + "; ".join(problems) + ".")

    def fingerprint(self) -> str:
        """Return the settings that change a decoded image, for cache keys."""
        return f"max_side={self.max_side};min_side={self.min_side}"
