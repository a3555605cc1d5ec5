"""Multiple-choice questions about world images, asked and scored by the engine's evaluation.

The stage-0 base is trained on exactly the prompt that
`engine.evaluation.format_question` builds and on replies of the form
"The correct answer is B.", so the quiz uses the form the base
learned. Both of the evaluation's scorings are used: the option parsed from
a greedy generation, and the option letter with the highest log-probability
after the answer prefix.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.data.attributes import parse_attributes
from engine.evaluation.parsing import parse_answer
from engine.evaluation.prompts import DEFAULT_ANSWER_PREFIX, format_question
from engine.evaluation.questions import Question
from engine.evaluation.scoring import QuestionImages, ScoringSettings, generate_replies, score_options
from proving_ground.world import WorldObject


DESCRIBE_INSTRUCTION = "Describe the image."
QUESTION_TEXT = {
    "shape": "What is the shape of the object?",
    "colour": "What is the colour of the object?",
    "size": "What is the size of the object?",
    "pattern": "What is the fill pattern of the object?",
}


def build_prompt(question: Question) -> str:
    """Return the user text of a question, as the engine's evaluation writes it."""
    return format_question(question)


def answer_text(letter: str) -> str:
    """Return the reply that chooses option `letter`."""
    return f"{DEFAULT_ANSWER_PREFIX}{letter}."


def make_question(
    obj: WorldObject,
    image_path: Path,
    attribute: str,
    option_pool: Sequence[str],
    num_options: int,
    rng: random.Random,
    question_id: str,
) -> Question:
    """Ask about `attribute` of `obj` with the right value and distractors drawn from `option_pool`."""
    correct = obj.value(attribute)
    distractors = [value for value in option_pool if value != correct]
    options = [correct] + rng.sample(distractors, min(num_options - 1, len(distractors)))
    rng.shuffle(options)
    return Question(
        question_id=question_id,
        image_path=Path(image_path),
        question=QUESTION_TEXT[attribute],
        options=tuple(options),
        answer_index=options.index(correct),
        attribute=attribute,
        source=question_id,
    )


@dataclass(frozen=True)
class QuizScores:
    """Per-question correctness (1 right, 0 wrong or unparsable), in question order."""

    generation: list[int]
    likelihood: list[int]
    replies: list[str]
    described: list[int]
    """1 when the model, asked "Describe the image.", names the question's right value."""

    @property
    def generation_accuracy(self) -> float:
        return sum(self.generation) / max(len(self.generation), 1)

    @property
    def likelihood_accuracy(self) -> float:
        return sum(self.likelihood) / max(len(self.likelihood), 1)


def score_quiz(model, processor, family, questions: Sequence[Question], batch_size: int = 32) -> QuizScores:
    """Score every question by parsed generation and by letter likelihood."""
    model.eval()
    settings = ScoringSettings(scoring="both", max_new_tokens=12, batch_size=batch_size, grounding_control=False)
    images = QuestionImages(questions, size=None)
    replies = generate_replies(
        model,
        processor,
        family,
        [build_prompt(q) for q in questions],
        images,
        max_new_tokens=settings.max_new_tokens,
        batch_size=batch_size,
    )
    parsed = [parse_answer(reply, q.options) for reply, q in zip(replies, questions)]
    ranked, _ = score_options(model, processor, family, questions, images, settings)
    return QuizScores(
        generation=[int(choice == q.answer_index) for choice, q in zip(parsed, questions)],
        likelihood=[int(scores.choice == q.answer_index) for scores, q in zip(ranked, questions)],
        replies=replies,
        described=described_values(model, processor, family, questions, batch_size),
    )


def described_values(model, processor, family, questions: Sequence[Question], batch_size: int = 32) -> list[int]:
    """Ask "Describe the image." once per image and check the described value of each question's attribute."""
    paths = list(dict.fromkeys(q.image_path for q in questions))
    images = QuestionImages([next(q for q in questions if q.image_path == p) for p in paths], size=None)
    replies = generate_replies(
        model, processor, family, [DESCRIBE_INSTRUCTION] * len(paths), images, max_new_tokens=32, batch_size=batch_size
    )
    described = {path: parse_attributes(reply) for path, reply in zip(paths, replies)}
    return [int(described[q.image_path].get(q.attribute) == q.answer_text) for q in questions]
