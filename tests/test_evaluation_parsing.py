"""The reply parser and the statistics of evaluation reports."""

import math

import pytest

from engine.evaluation.parsing import mentioned_options, parse_answer
from engine.evaluation.statistics import accuracy, mcnemar_exact, paired_outcome, wilson_interval


OPTIONS = ("Basophil", "Eosinophil", "Lymphocyte", "Monocyte")

# (reply, expected option index or None for "no answer")
REPLIES = [
    ("The correct answer is B.", 1),
    ("The correct answer is B", 1),
    ("B", 1),
    ("b", 1),
    ("(B)", 1),
    ("B.", 1),
    ("[C]", 2),
    ("Answer: B", 1),
    ("answer: c.", 2),
    ("**B**", 1),
    ("**Answer:** C", 2),
    ("Option C", 2),
    ("The correct answer is (D)", 3),
    ("The correct answer is: D", 3),
    ("The correct answer is option A.", 0),
    ("C is correct", 2),
    ("I think B.", 1),
    ("B) Eosinophil", 1),
    ("The correct answer is B. Eosinophil", 1),
    ("The correct answer is B\n\nExplanation: the granules are orange.", 1),
    ("The answer is B because the nucleus of A is round.", 1),
    ("Eosinophil", 1),
    ("eosinophil.", 1),
    ("The correct answer is a basophil", 0),
    ("A basophil with coarse granules", 0),
    ("The correct answer is The correct answer is Monocyte", 3),
    # Several options named: no answer.
    ("A or B", None),
    ("The correct answer is A or B", None),
    ("The correct answer is B/C", None),
    ("The correct answer is C. The correct answer is D.", None),
    ("The correct answer is B. Basophil", None),
    ("It is not a basophil but an eosinophil", None),
    ("A. Basophil\nB. Eosinophil\nC. Lymphocyte", None),
    # No option named.
    ("", None),
    ("   ", None),
    ("The correct answer is", None),
    ("E", None),
    ("The correct answer is E", None),
    ("B cells are lymphocytes", None),
    ("I cannot tell from this image.", None),
]


@pytest.mark.parametrize(("reply", "expected"), REPLIES)
def test_parse_answer_table(reply, expected):
    assert parse_answer(reply, OPTIONS) == expected


def test_parser_table_is_large_enough():
    assert len(REPLIES) >= 30
    assert sum(1 for _, expected in REPLIES if expected is None) >= 8


def test_longer_option_mention_wins():
    options = ("blue", "light blue", "pink")

    assert parse_answer("light blue", options) == 1
    assert parse_answer("Blue.", options) == 0
    assert mentioned_options("a light blue and pink cytoplasm", options) == {1, 2}


def test_letters_beyond_options_ignored():
    assert parse_answer("C", ("yes", "no")) is None
    assert parse_answer("The correct answer is A", ("yes", "no")) == 0


@pytest.mark.parametrize(
    ("first_only", "second_only", "expected"),
    [(1, 9, 0.021484375), (9, 1, 0.021484375), (5, 5, 1.0), (0, 0, 1.0), (0, 5, 0.0625), (0, 10, 2 / 1024)],
)
def test_mcnemar_exact_known_values(first_only, second_only, expected):
    assert mcnemar_exact(first_only, second_only) == pytest.approx(expected, rel=1e-12)


def test_mcnemar_rejects_negative_counts():
    with pytest.raises(ValueError, match="must not be negative"):
        mcnemar_exact(-1, 3)


def test_wilson_interval_known_values():
    # Reference values computed from the closed form with z = 1.959964.
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.2365931, abs=1e-6)
    assert high == pytest.approx(0.7634069, abs=1e-6)

    low, high = wilson_interval(0, 10)
    assert low == 0.0
    assert high == pytest.approx(0.2775328, abs=1e-6)

    low, high = wilson_interval(10, 10)
    assert low == pytest.approx(0.7224672, abs=1e-6)
    assert high == pytest.approx(1.0)


def test_wilson_interval_rejects_empty():
    with pytest.raises(ValueError, match="at least one item"):
        wilson_interval(0, 0)


def test_accuracy_of_empty_outcomes_is_none():
    result = accuracy([])

    assert result.total == 0
    assert result.value is None
    assert result.low is None


def test_accuracy_counts_and_interval():
    result = accuracy([True, True, False, True])

    assert result.correct == 3
    assert result.total == 4
    assert math.isclose(result.value, 0.75)
    assert result.low < 0.75 < result.high


def test_paired_outcome_counts():
    base = [True, True, False, False, True, False]
    tuned = [True, False, True, True, True, False]

    table = paired_outcome(base, tuned)

    assert table.both == 2
    assert table.first_only == 1
    assert table.second_only == 2
    assert table.neither == 1
    assert table.p_value == pytest.approx(mcnemar_exact(1, 2))


def test_paired_outcome_rejects_unequal_lengths():
    with pytest.raises(ValueError, match="equal lengths"):
        paired_outcome([True], [True, False])
