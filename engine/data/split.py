"""Split samples into a tuning part and a quiz part, keeping groups together."""

from __future__ import annotations

import hashlib
import logging
import random
from dataclasses import dataclass
from pathlib import Path

from engine.data.sample import Sample


logger = logging.getLogger(__name__)


def sample_key(sample: Sample) -> str:
    """Return a content key for a sample: its pixel hash, else a hash of the image file."""
    if sample.pixel_hash:
        return sample.pixel_hash
    return hashlib.sha256(Path(sample.image_path).read_bytes()).hexdigest()


@dataclass(frozen=True)
class Split:
    tune: list[Sample]
    quiz: list[Sample]
    overlapping: int
    """Quiz samples whose decoded pixels also occur in the tuning part."""


def split_samples(samples: list[Sample], quiz_fraction: float, seed: int = 0) -> Split:
    """Hold out about `quiz_fraction` of the samples as the quiz part.

    Whole groups (patient or study, when ingestion found one) go to one side,
    so one patient's images never straddle tuning and quiz. Samples without a
    group are their own group. The choice depends only on the content keys
    and `seed`, so the same data gives the same split on every call.
    """
    if not 0.0 <= quiz_fraction < 1.0:
        raise ValueError(f"quiz_fraction is {quiz_fraction}; it must be in [0, 1).")
    if quiz_fraction == 0.0 or len(samples) < 2:
        return Split(tune=list(samples), quiz=[], overlapping=0)

    keys = {id(sample): sample_key(sample) for sample in samples}
    group_of = _linked_groups(samples, keys)
    groups: dict[str, list[Sample]] = {}
    for sample in samples:
        groups.setdefault(group_of[id(sample)], []).append(sample)

    order = sorted(groups)
    random.Random(seed).shuffle(order)
    target = max(1, round(quiz_fraction * len(samples)))
    quiz_groups: set[str] = set()
    count = 0
    for name in order:
        if count >= target or len(quiz_groups) == len(groups) - 1:
            break
        quiz_groups.add(name)
        count += len(groups[name])

    tune = [s for s in samples if group_of[id(s)] not in quiz_groups]
    quiz = [s for s in samples if group_of[id(s)] in quiz_groups]
    tune_keys = {keys[id(s)] for s in tune}
    overlapping = sum(1 for s in quiz if keys[id(s)] in tune_keys)
    if overlapping:
        logger.warning(
            "%d of %d quiz images have the same decoded pixels as a tuning image; "
            "their quiz scores overstate what the model learned.",
            overlapping,
            len(quiz),
        )
    return Split(tune=tune, quiz=quiz, overlapping=overlapping)


def _linked_groups(samples: list[Sample], keys: dict[int, str]) -> dict[int, str]:
    """Return a group name per sample, merging groups that share an image.

    Two samples are linked when they share a patient/study group or the same
    decoded pixels, so a duplicate image never lands on both sides.
    """
    parent: dict[str, str] = {}

    def find(name: str) -> str:
        while parent.setdefault(name, name) != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    for sample in samples:
        pixel_node = "pixels:" + keys[id(sample)]
        if sample.group:
            parent[find("group:" + sample.group)] = find(pixel_node)
        find(pixel_node)
    return {id(sample): find("pixels:" + keys[id(sample)]) for sample in samples}
