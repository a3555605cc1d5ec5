from pathlib import Path

import pytest

from engine.data.sample import Sample
from engine.data.split import split_samples


def sample(index: int, group: str | None = None, pixels: str | None = None) -> Sample:
    return Sample(
        sample_id=f"s{index}",
        image_path=Path(f"/nonexistent/{index}.png"),
        report="Cell size: small",
        source=f"{index}.png",
        group=group,
        pixel_hash=pixels or f"hash{index}",
    )


def test_fraction_held_out_and_disjoint():
    samples = [sample(i) for i in range(20)]
    split = split_samples(samples, 0.2, seed=0)
    assert len(split.quiz) == 4
    assert len(split.tune) == 16
    assert not {s.sample_id for s in split.quiz} & {s.sample_id for s in split.tune}


def test_same_seed_same_split():
    samples = [sample(i) for i in range(20)]
    first = split_samples(samples, 0.3, seed=5)
    second = split_samples(list(reversed(samples)), 0.3, seed=5)
    assert {s.sample_id for s in first.quiz} == {s.sample_id for s in second.quiz}


def test_groups_never_straddle():
    samples = [sample(i, group=f"patient{i // 4}") for i in range(20)]
    split = split_samples(samples, 0.25, seed=1)
    quiz_groups = {s.group for s in split.quiz}
    tune_groups = {s.group for s in split.tune}
    assert quiz_groups
    assert not quiz_groups & tune_groups


def test_duplicate_pixels_stay_on_one_side():
    samples = [sample(i) for i in range(10)] + [sample(100 + i, pixels=f"hash{i}") for i in range(10)]
    for seed in range(5):
        split = split_samples(samples, 0.3, seed=seed)
        quiz_pixels = {s.pixel_hash for s in split.quiz}
        assert not quiz_pixels & {s.pixel_hash for s in split.tune}
        assert split.overlapping == 0


def test_zero_fraction_keeps_everything_for_tuning():
    samples = [sample(i) for i in range(5)]
    split = split_samples(samples, 0.0)
    assert split.quiz == []
    assert len(split.tune) == 5


def test_invalid_fraction_rejected():
    with pytest.raises(ValueError, match="quiz_fraction is 1.0"):
        split_samples([sample(0), sample(1)], 1.0)
