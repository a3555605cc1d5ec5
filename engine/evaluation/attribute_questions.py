"""Questions generated from attribute-style reports (`key: value` lines).

For every quiz image and every attribute in its report there is one
question, "What is the {key}?". Its options are the right value plus other
values seen for that key anywhere in the dataset, up to a maximum, in an
order shuffled with a seed. Quiz images come from the run's held-out split,
so the model was never tuned on them.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.data.attributes import parse_attributes
from engine.data.sample import Sample
from engine.data.split import sample_key, split_samples
from engine.evaluation.questions import OPTION_LETTERS, Question, normalise_text


logger = logging.getLogger(__name__)

DEFAULT_QUESTION_TEMPLATE = "What is the {key}?"


@dataclass
class GenerationSettings:
    max_options: int = 5
    """Options per question, the right one included (2–26); fewer when the key has fewer values."""
    seed: int = 0
    """Seed of the distractor choice and the option order."""
    question_template: str = DEFAULT_QUESTION_TEMPLATE
    """Question text; `{key}` is replaced by the attribute name."""

    def __post_init__(self) -> None:
        if not 2 <= self.max_options <= len(OPTION_LETTERS):
            raise ValueError(f"max_options is {self.max_options}; it must be between 2 and {len(OPTION_LETTERS)}.")
        if "{key}" not in self.question_template:
            raise ValueError(f"question_template {self.question_template!r} must contain '{{key}}'.")


@dataclass
class QuizSelection:
    """The quiz images of a run and how they were found."""

    samples: list[Sample]
    overlapping: int = 0
    """Quiz images whose decoded pixels also occur among the tuning images."""
    missing_keys: int = 0
    """Quiz keys in `split.json` that match no image of the dataset now."""
    warnings: list[str] = field(default_factory=list)


def sample_attributes(sample: Sample) -> dict[str, str]:
    return sample.attributes or parse_attributes(sample.report)


def attribute_values(samples: Sequence[Sample]) -> dict[str, list[str]]:
    """Return, per attribute key, its distinct values in first-seen spelling, sorted.

    Values that differ only in case or spacing count as one value.
    """
    values: dict[str, dict[str, str]] = {}
    for sample in samples:
        for key, value in sample_attributes(sample).items():
            values.setdefault(key, {}).setdefault(normalise_text(value), value)
    return {key: sorted(spellings.values(), key=normalise_text) for key, spellings in values.items()}


def question_text(template: str, key: str) -> str:
    # "Cell type" reads as "the cell type"; keys in capitals (HER2 status) stay.
    readable = key[0].lower() + key[1:] if len(key) > 1 and not key[1].isupper() else key
    return template.format(key=readable)


def generate_attribute_questions(
    quiz: Sequence[Sample],
    dataset: Sequence[Sample],
    settings: GenerationSettings | None = None,
) -> list[Question]:
    """Build one question per quiz image and attribute.

    Options are drawn from the values of that key in `dataset` (which should
    contain the quiz images too). The choice and order of options depend only
    on the seed, the image's content key and the attribute, so the same data
    gives the same questions whatever the order of the samples. The list
    comes in an order shuffled with the seed. Attributes with a single
    distinct value are skipped, with a log message.
    """
    settings = settings or GenerationSettings()
    values = attribute_values(dataset)
    single = sorted(key for key, spellings in values.items() if len(spellings) < 2)
    if single:
        logger.info(
            "Skipping attribute(s) with a single value in the dataset, where no question is possible: %s",
            ", ".join(f"{key}={values[key][0]!r}" for key in single),
        )

    questions: list[Question] = []
    for sample in quiz:
        key_of_sample = sample_key(sample)
        for key, value in sample_attributes(sample).items():
            spellings = values.get(key, [])
            if len(spellings) < 2:
                continue
            rng = random.Random(f"{settings.seed}:{key_of_sample}:{key}")
            options = _options_for(value, spellings, settings.max_options, rng)
            right = next(i for i, option in enumerate(options) if normalise_text(option) == normalise_text(value))
            questions.append(
                Question(
                    question_id=f"{sample.sample_id}:{key}",
                    image_path=Path(sample.image_path),
                    question=question_text(settings.question_template, key),
                    options=tuple(options),
                    answer_index=right,
                    attribute=key,
                    source=f"{sample.source} ({key})",
                    image_name=sample.source,
                )
            )
    # A seeded order, so that the first N questions are a fair sample of images and attributes.
    questions.sort(key=lambda question: question.question_id)
    random.Random(settings.seed).shuffle(questions)
    logger.info("Generated %d questions on %d quiz images", len(questions), len(quiz))
    return questions


def _options_for(value: str, spellings: list[str], max_options: int, rng: random.Random) -> list[str]:
    right = next(spelling for spelling in spellings if normalise_text(spelling) == normalise_text(value))
    distractors = [spelling for spelling in spellings if spelling != right]
    chosen = rng.sample(distractors, min(max_options - 1, len(distractors)))
    options = [right, *chosen]
    rng.shuffle(options)
    return options


# --- quiz images of a run ----------------------------------------------------------


def select_quiz_samples(
    samples: Sequence[Sample], split_path: Path, quiz_fraction: float, split_seed: int
) -> QuizSelection:
    """Return the run's quiz images among `samples`, warning about any overlap with tuning images.

    The quiz content keys come from the run's `split.json`. Without that file
    the split is recomputed from the run's settings, which gives the same
    quiz part as long as the data has not changed.
    """
    keys = [sample_key(sample) for sample in samples]
    warnings: list[str] = []
    if split_path.is_file():
        split = json.loads(split_path.read_text(encoding="utf-8"))
        quiz_keys, tune_keys = set(split.get("quiz", [])), set(split.get("tune", []))
    else:
        message = f"{split_path} not found; recomputing the quiz split from data.quiz_fraction={quiz_fraction}."
        logger.warning(message)
        warnings.append(message)
        split = split_samples(list(samples), quiz_fraction, split_seed)
        quiz_keys = {sample_key(s) for s in split.quiz}
        tune_keys = {sample_key(s) for s in split.tune}

    if not quiz_keys:
        raise ValueError(
            "The run has no quiz images (it was tuned with data.quiz_fraction 0), so generated questions "
            "would ask about images the model was tuned on. Pass a question file about other images with --questions."
        )

    quiz = [sample for sample, key in zip(samples, keys, strict=True) if key in quiz_keys]
    if not quiz:
        raise ValueError(
            f"None of the run's {len(quiz_keys)} quiz images is in the dataset ({len(samples)} images): the data "
            "or its decoding changed since tuning. Point --data at the data the run was tuned on."
        )
    missing = len(quiz_keys - set(keys))
    if missing:
        message = (
            f"{missing} of {len(quiz_keys)} quiz images of the run are not in the dataset any more; "
            f"evaluating on the {len(quiz)} that are."
        )
        logger.warning(message)
        warnings.append(message)

    overlapping = sum(1 for sample, key in zip(samples, keys, strict=True) if key in quiz_keys and key in tune_keys)
    if overlapping:
        message = (
            f"{overlapping} of {len(quiz)} quiz images have the same decoded pixels as a tuning image; "
            "their scores overstate what tuning taught the model."
        )
        logger.warning(message)
        warnings.append(message)
    return QuizSelection(samples=quiz, overlapping=overlapping, missing_keys=missing, warnings=warnings)
