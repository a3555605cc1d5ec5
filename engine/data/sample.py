"""The unit of training data: one decoded image paired with its report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    """One image–report pair, ready for the processor.

    `image_path` points to an 8-bit greyscale or RGB PNG written by the
    ingestion step (which decodes DICOM and high-bit-depth files once);
    consumers convert it to RGB on load.
    `source` is the path of the original file relative to the input, used in
    messages and manifests. `group` is an opaque key (never a patient
    identifier in clear) that keeps images of one patient or study on the same
    side of a tuning/quiz split; it is `None` when nothing links images.
    `pixel_hash` is a hash of the decoded pixels, used to find the same image
    under two names; empty when unknown.
    """

    sample_id: str
    image_path: Path
    report: str
    source: str
    attributes: dict[str, str] = field(default_factory=dict)
    group: str | None = None
    pixel_hash: str = ""
