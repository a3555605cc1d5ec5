"""The domain: image–report pairs with new colours and patterns, and a held-out quiz.

Tuning images and quiz images are drawn from the same distribution: every
colour is new, and the pattern is any of the four (two seen, two new). The tuning folder contains reports only, no questions. The quiz asks, per held-out
image:

- `new`: the colour (options: the four new colours), and the pattern when it
  is new (options: all four patterns);
- `retained`: the size (small or large), which the base already answers
  without error, so a drop measures lost instruction-following, not a
  missing value.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from engine.evaluation.questions import Question
from proving_ground import quiz
from proving_ground.world import NEW_COLOURS, NEW_PATTERNS, PATTERNS, SIZES, sample_objects, write_pairs


@dataclass(frozen=True)
class DomainData:
    tune_dir: Path
    """Flat folder of `X.png` images with `X.txt` reports, the input of `engine.training.train`."""
    quiz_dir: Path
    questions: list[Question]
    groups: list[str]
    """Per question, what it measures: `new` or `retained`."""


def quiz_questions(objects, paths, rng: random.Random) -> tuple[list[Question], list[str]]:
    """Ask the colour, the pattern when it is new, and the size of every quiz image."""
    questions, groups = [], []
    for index, (obj, path) in enumerate(zip(objects, paths)):
        asks = [("colour", NEW_COLOURS, "new")]
        if obj.pattern in NEW_PATTERNS:
            asks.append(("pattern", PATTERNS, "new"))
        asks.append(("size", SIZES, "retained"))
        for attribute, pool, group in asks:
            questions.append(quiz.make_question(obj, path, attribute, pool, 4, rng, f"quiz-{index}-{attribute}"))
            groups.append(group)
    return questions, groups


def write_domain(dest: Path, tune_images: int, quiz_images: int, seed: int) -> DomainData:
    """Write the tuning pairs and the quiz images under `dest` and return them with the questions."""
    rng = random.Random(seed)
    dest = Path(dest)
    tune_objects = sample_objects(tune_images, rng, NEW_COLOURS, PATTERNS)
    write_pairs(tune_objects, dest / "tune", prefix="domain")
    quiz_objects = sample_objects(quiz_images, rng, NEW_COLOURS, PATTERNS)
    quiz_paths = write_pairs(quiz_objects, dest / "quiz", prefix="quiz")
    questions, groups = quiz_questions(quiz_objects, quiz_paths, rng)
    return DomainData(tune_dir=dest / "tune", quiz_dir=dest / "quiz", questions=questions, groups=groups)
