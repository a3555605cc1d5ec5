"""Accuracy with Wilson intervals, and the exact McNemar test for paired outcomes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy.stats import binomtest, norm


@dataclass(frozen=True)
class Accuracy:
    """`correct` of `total` items, with a Wilson score interval [low, high] at `confidence`.

    `value`, `low` and `high` are None when `total` is 0.
    """

    correct: int
    total: int
    value: float | None
    low: float | None
    high: float | None
    confidence: float = 0.95


@dataclass(frozen=True)
class PairedOutcome:
    """A 2×2 table of two models on the same items, and the exact McNemar p-value.

    `first_only` counts items that only the first model got right (b in the
    usual notation), `second_only` those only the second got right (c).
    """

    both: int
    first_only: int
    second_only: int
    neither: int
    p_value: float

    @property
    def total(self) -> int:
        return self.both + self.first_only + self.second_only + self.neither


def wilson_interval(correct: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """Return the Wilson score interval for `correct` successes in `total` trials.

    Unlike the normal approximation it stays inside [0, 1] and is sensible
    at 0 or `total` successes and for small samples (Wilson, 1927).
    """
    if total <= 0:
        raise ValueError(f"total is {total}; a confidence interval needs at least one item.")
    if not 0 <= correct <= total:
        raise ValueError(f"correct is {correct}; it must be between 0 and total={total}.")
    z = float(norm.ppf(0.5 + confidence / 2))
    p = correct / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half_width = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half_width), min(1.0, centre + half_width)


def accuracy(outcomes: Sequence[bool], confidence: float = 0.95) -> Accuracy:
    """Return the share of True in `outcomes` with its Wilson interval."""
    total = len(outcomes)
    correct = sum(1 for outcome in outcomes if outcome)
    if total == 0:
        return Accuracy(0, 0, None, None, None, confidence)
    low, high = wilson_interval(correct, total, confidence)
    return Accuracy(correct, total, correct / total, low, high, confidence)


def mcnemar_exact(first_only: int, second_only: int) -> float:
    """Return the two-sided exact McNemar p-value for b=`first_only`, c=`second_only` discordant pairs.

    Under the null hypothesis each discordant pair favours either model with
    probability 1/2, so the p-value is a two-sided binomial test of b in b+c
    trials. Without discordant pairs the p-value is 1.0.
    """
    if first_only < 0 or second_only < 0:
        raise ValueError(f"Counts must not be negative, got b={first_only}, c={second_only}.")
    trials = first_only + second_only
    if trials == 0:
        return 1.0
    return float(binomtest(first_only, trials, 0.5, alternative="two-sided").pvalue)


def paired_outcome(first: Sequence[bool], second: Sequence[bool]) -> PairedOutcome:
    """Cross-tabulate two models' correctness on the same items and test the difference."""
    if len(first) != len(second):
        raise ValueError(f"Paired outcomes need equal lengths, got {len(first)} and {len(second)}.")
    both = sum(1 for a, b in zip(first, second, strict=True) if a and b)
    first_only = sum(1 for a, b in zip(first, second, strict=True) if a and not b)
    second_only = sum(1 for a, b in zip(first, second, strict=True) if b and not a)
    neither = len(first) - both - first_only - second_only
    return PairedOutcome(both, first_only, second_only, neither, mcnemar_exact(first_only, second_only))
