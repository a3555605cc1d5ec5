import random
from collections import Counter

import pytest

from engine.data.shuffling import resolve_shuffling, shuffle_report, split_phrases


ATTRIBUTE_REPORT = (
    "Cell type: Basophil\nCell size: small\nCell shape: round\nNucleus shape: segmented-bilobed\nGranularity: yes"
)
COMMA_REPORT = "small cell, round shape, coarse granules, purple granules, light blue cytoplasm"
PROSE_REPORT = "The heart is normal in size. No effusion is seen. The lungs are clear! Is there a mass? None."


@pytest.mark.parametrize(
    ("report", "expected"),
    [(ATTRIBUTE_REPORT, "comma"), (COMMA_REPORT, "comma"), (PROSE_REPORT, "sentence")],
)
def test_auto_mode_per_report_style(report, expected):
    assert resolve_shuffling("auto", report) == expected


@pytest.mark.parametrize("report", [ATTRIBUTE_REPORT, COMMA_REPORT, PROSE_REPORT])
def test_shuffle_keeps_phrase_multiset(report):
    mode = resolve_shuffling("auto", report)
    original, _ = split_phrases(report, mode)
    for seed in range(20):
        shuffled = shuffle_report(report, "auto", random.Random(seed))
        phrases, _ = split_phrases(shuffled, mode)
        assert Counter(phrases) == Counter(original)


def test_attribute_lines_are_whole_phrases():
    phrases, separator = split_phrases(ATTRIBUTE_REPORT, "comma")
    assert separator == "\n"
    assert phrases[0] == "Cell type: Basophil"
    assert len(phrases) == 5


def test_draws_give_different_orders():
    rng = random.Random(0)
    orders = {shuffle_report(ATTRIBUTE_REPORT, "auto", rng) for _ in range(30)}
    assert len(orders) > 10


def test_same_seed_same_orders():
    first = [shuffle_report(PROSE_REPORT, "sentence", random.Random(7)) for _ in range(5)]
    second = [shuffle_report(PROSE_REPORT, "sentence", random.Random(7)) for _ in range(5)]
    assert first == second


def test_none_mode_returns_report_unchanged():
    assert shuffle_report(PROSE_REPORT, "none", random.Random(0)) == PROSE_REPORT


def test_unknown_mode_rejected():
    with pytest.raises(ValueError, match="Unknown shuffling mode 'words'"):
        split_phrases(PROSE_REPORT, "words")
