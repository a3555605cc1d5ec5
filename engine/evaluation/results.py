"""Per-item outcomes of an evaluation and their summary: accuracy, per attribute, paired, grounding."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from engine.evaluation.questions import Question
from engine.evaluation.scoring import OptionScores
from engine.evaluation.statistics import Accuracy, PairedOutcome, accuracy, paired_outcome
from engine.evaluation.variants import VARIANTS, Variant


Method = Literal["parse", "likelihood"]
ImageCondition = Literal["image", "grey"]


@dataclass
class Outcome:
    """The reply and choices of one model variant on one item under one image condition."""

    reply: str | None = None
    """Raw generated reply; None when generation was not run."""
    parsed: int | None = None
    """Option index read from the reply; None when it names no option or several."""
    likelihood: OptionScores | None = None

    def choice(self, method: Method) -> int | None:
        if method == "parse":
            return self.parsed
        return self.likelihood.choice if self.likelihood is not None else None


@dataclass
class ItemResult:
    """One question and the outcomes of every (variant, image condition) it was scored under."""

    question: Question
    outcomes: dict[tuple[Variant, ImageCondition], Outcome] = field(default_factory=dict)

    def outcome(self, variant: Variant, condition: ImageCondition = "image") -> Outcome | None:
        return self.outcomes.get((variant, condition))

    def correct(self, variant: Variant, method: Method, condition: ImageCondition = "image") -> bool:
        """Return whether the variant chose the right option; no answer counts as wrong."""
        outcome = self.outcome(variant, condition)
        return outcome is not None and outcome.choice(method) == self.question.answer_index


@dataclass(frozen=True)
class AttributeAccuracy:
    """Accuracy of both variants on the items about one attribute (one axis of a radar chart)."""

    attribute: str
    base: Accuracy
    tuned: Accuracy


@dataclass(frozen=True)
class GroundingCheck:
    """One variant with the real images and with a uniform grey image in their place.

    `image_not_used` is True when the grey image scores at least as well, because
    the choices then come from the text alone, not from the image.
    """

    variant: Variant
    with_image: Accuracy
    grey_image: Accuracy
    paired: PairedOutcome
    """First: with the image, second: grey image."""
    image_not_used: bool


@dataclass(frozen=True)
class MethodSummary:
    """Results of one scoring method (`parse` or `likelihood`) for base and tuned."""

    method: Method
    base: Accuracy
    tuned: Accuracy
    paired: PairedOutcome
    """First: base, second: tuned."""
    per_attribute: list[AttributeAccuracy]
    unanswered: dict[str, int] = field(default_factory=dict)
    """Per variant, replies that name no option or several (parse only)."""
    unanswered_share: dict[str, float | None] = field(default_factory=dict)
    grounding: list[GroundingCheck] = field(default_factory=list)


def summarise_method(items: Sequence[ItemResult], method: Method, grounding: bool) -> MethodSummary:
    """Compute accuracy, the paired test, per-attribute accuracy and the grounding check for one method."""
    outcomes = {variant: [item.correct(variant, method) for item in items] for variant in VARIANTS}

    attributes = sorted({item.question.attribute for item in items if item.question.attribute})
    per_attribute = []
    for attribute in attributes:
        about = [item for item in items if item.question.attribute == attribute]
        per_attribute.append(
            AttributeAccuracy(
                attribute=attribute,
                base=accuracy([item.correct("base", method) for item in about]),
                tuned=accuracy([item.correct("tuned", method) for item in about]),
            )
        )

    unanswered: dict[str, int] = {}
    unanswered_share: dict[str, float | None] = {}
    if method == "parse":
        for variant in VARIANTS:
            count = sum(1 for item in items if (o := item.outcome(variant)) is not None and o.parsed is None)
            unanswered[variant] = count
            unanswered_share[variant] = count / len(items) if items else None

    checks = []
    if grounding:
        for variant in VARIANTS:
            real = outcomes[variant]
            grey = [item.correct(variant, method, "grey") for item in items]
            with_image, grey_image = accuracy(real), accuracy(grey)
            not_used = with_image.value is not None and grey_image.value >= with_image.value
            checks.append(GroundingCheck(variant, with_image, grey_image, paired_outcome(real, grey), not_used))

    return MethodSummary(
        method=method,
        base=accuracy(outcomes["base"]),
        tuned=accuracy(outcomes["tuned"]),
        paired=paired_outcome(outcomes["base"], outcomes["tuned"]),
        per_attribute=per_attribute,
        unanswered=unanswered,
        unanswered_share=unanswered_share,
        grounding=checks,
    )


@dataclass
class EvaluationReport:
    """Everything one evaluation of a run on a question set produced."""

    run_dir: str
    question_set: str
    items: list[ItemResult]
    methods: dict[str, MethodSummary]
    settings: dict
    model: dict
    """Base model, family, how the tuned variant differs (lora, full, none) and the trained groups."""
    letter_tokenization: str | None = None
    warnings: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    created: str = ""
