"""Summaries of the cells: mean ± standard deviation over seeds and paired McNemar tests."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from scipy.stats import binomtest

from proving_ground.experiment import CellResult


SCORINGS = ("generation", "likelihood")
# `described` is not a quiz scoring: it checks the model's own description
# ("Describe the image.") against the question's right value.
GROUPS = ("new", "retained")


def accuracy(result: CellResult, scoring: str, group: str) -> float:
    """Return the share of right answers among the questions of `group`."""
    outcomes = [o for o, g in zip(getattr(result, scoring), result.groups) if g == group]
    return sum(outcomes) / max(len(outcomes), 1)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Return the mean and the sample standard deviation (0 for a single value)."""
    if len(values) < 2:
        return (values[0] if values else float("nan")), 0.0
    return statistics.mean(values), statistics.stdev(values)


def mcnemar(first: Sequence[int], second: Sequence[int]) -> tuple[int, int, float]:
    """Return (right only in first, right only in second, exact two-sided p) for paired outcomes."""
    only_first = sum(1 for a, b in zip(first, second) if a and not b)
    only_second = sum(1 for a, b in zip(first, second) if b and not a)
    discordant = only_first + only_second
    p_value = 1.0 if discordant == 0 else binomtest(only_first, discordant, 0.5).pvalue
    return only_first, only_second, p_value


def _by_method(results: Sequence[CellResult]) -> dict[str, list[CellResult]]:
    grouped: dict[str, list[CellResult]] = {}
    for result in results:
        grouped.setdefault(result.method, []).append(result)
    for cells in grouped.values():
        cells.sort(key=lambda cell: cell.seed)
    return grouped


def accuracy_table(results: Sequence[CellResult]) -> str:
    """Return a Markdown table: one row per method, accuracy in % as mean ± std over seeds."""
    header = (
        "| method | seeds | new values, generation | new values, likelihood | new values, described "
        "| size (retained), generation | size (retained), likelihood |"
    )
    columns = [("new", "generation"), ("new", "likelihood"), ("new", "described"), ("retained", "generation"), ("retained", "likelihood")]
    lines = [header, "|---|---|---|---|---|---|---|"]
    for method, cells in _by_method(results).items():
        row = [method, str(len(cells))]
        for group, scoring in columns:
            mean, std = mean_std([100 * accuracy(cell, scoring, group) for cell in cells])
            row.append(f"{mean:.1f} ± {std:.1f}" if len(cells) > 1 else f"{mean:.1f}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def pooled_outcomes(cells: Sequence[CellResult], scoring: str, group: str) -> dict[tuple[int, int], int]:
    """Return {(seed, question index): outcome} for the questions of `group`."""
    pooled = {}
    for cell in cells:
        for index, (outcome, question_group) in enumerate(zip(getattr(cell, scoring), cell.groups)):
            if question_group == group:
                pooled[(cell.seed, index)] = outcome
    return pooled


def _spread_single_run(outcomes: dict, cells: Sequence[CellResult], other: dict) -> dict:
    """Pair a method run once (the base) with every seed of the other method."""
    if len(cells) != 1:
        return outcomes
    seed = cells[0].seed
    return {(other_seed, index): outcomes[(seed, index)] for other_seed, index in other if (seed, index) in outcomes}


def mcnemar_table(results: Sequence[CellResult], pairs: Sequence[tuple[str, str]], group: str = "new") -> str:
    """Return a Markdown table of McNemar tests on the `group` questions, pooled over shared seeds.

    Each (seed, question) is one pair of outcomes; the base has one seed and is
    paired with every seed of the other method.
    """
    by_method = _by_method(results)
    lines = [
        "| comparison | scoring | right only in first | right only in second | p (exact) |",
        "|---|---|---|---|---|",
    ]
    for first, second in pairs:
        if first not in by_method or second not in by_method:
            continue
        for scoring in SCORINGS:
            a = pooled_outcomes(by_method[first], scoring, group)
            b = pooled_outcomes(by_method[second], scoring, group)
            a = _spread_single_run(a, by_method[first], b)
            b = _spread_single_run(b, by_method[second], a)
            keys = sorted(set(a) & set(b))
            only_first, only_second, p_value = mcnemar([a[k] for k in keys], [b[k] for k in keys])
            lines.append(f"| {first} vs {second} | {scoring} | {only_first} | {only_second} | {p_value:.3g} |")
    return "\n".join(lines)
