"""Stage 0: a tiny LLaVA trained from scratch to follow instructions about seen values.

The base model for the experiment has to follow instructions before any
domain tuning, or there is no instruction-following to preserve. It is
trained on two tasks over images with *seen* colours and patterns only:

- multiple-choice questions in the quiz's prompt and answer format
  (`proving_ground.quiz`), about every attribute, with 2 to 4 options;
- "Describe the image." answered by the attribute report.

The tokenizer is trained on texts that name every value, new ones included,
as a real model's vocabulary contains words it never saw with an image. The
input and output embeddings are tied, so tuning that teaches the model to
write a new word also moves the vector that word has when it appears as an
option.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForImageTextToText, GenerationConfig

from engine.models.loading import load_model
from engine.models.tiny import build_tiny_vlm
from engine.prompting import end_of_turn_text, render_prompt
from engine.training.collator import IGNORE_INDEX
from proving_ground import quiz
from proving_ground.world import (
    ATTRIBUTE_KEYS,
    COLOURS,
    PATTERNS,
    SEEN_COLOURS,
    SEEN_PATTERNS,
    VALUES,
    WorldObject,
    draw_image,
    sample_objects,
    write_pairs,
)


logger = logging.getLogger(__name__)

DESCRIBE_INSTRUCTION = "Describe the image."
SEEN_VALUES = {**VALUES, "colour": SEEN_COLOURS, "pattern": SEEN_PATTERNS}


@dataclass(frozen=True)
class Stage0Settings:
    """Size and training schedule of the stage-0 model."""

    text_hidden: int = 64
    num_layers: int = 2
    steps: int = 1500
    batch_size: int = 32
    learning_rate: float = 2e-3
    warmup_steps: int = 100
    describe_fraction: float = 0.25
    """Share of training examples that are "Describe the image." (the rest are questions)."""
    seed: int = 0


# --- training examples ---------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    image: object
    """A PIL image."""
    user_text: str
    response: str


def question_example(obj: WorldObject, attribute: str, rng: random.Random, values=SEEN_VALUES) -> Example:
    """Return a multiple-choice example about `attribute` with 2 to 4 options from `values`."""
    pool = values[attribute]
    num_options = rng.randint(2, min(4, len(pool)))
    question = quiz.make_question(obj, Path("unused"), attribute, pool, num_options, rng, "stage0")
    return Example(draw_image(obj), quiz.build_prompt(question), quiz.answer_text(question.answer_letter))


def describe_example(obj: WorldObject) -> Example:
    return Example(draw_image(obj), DESCRIBE_INSTRUCTION, obj.report())


def draw_examples(count: int, rng: random.Random, describe_fraction: float) -> list[Example]:
    """Draw fresh seen-value objects and turn each into one description or one question."""
    examples = []
    for obj in sample_objects(count, rng, SEEN_COLOURS, SEEN_PATTERNS):
        if rng.random() < describe_fraction:
            examples.append(describe_example(obj))
        else:
            examples.append(question_example(obj, rng.choice(ATTRIBUTE_KEYS), rng))
    return examples


def tokenizer_corpus() -> list[str]:
    """Return texts naming every prompt word and every value, new values included."""
    rng = random.Random(0)
    texts = [DESCRIBE_INSTRUCTION]
    for obj in sample_objects(400, rng, COLOURS, PATTERNS):
        texts.append(obj.report())
        attribute = rng.choice(ATTRIBUTE_KEYS)
        question = quiz.make_question(obj, Path("unused"), attribute, VALUES[attribute], 4, rng, "corpus")
        texts.append(quiz.build_prompt(question) + "\n" + quiz.answer_text(question.answer_letter))
    return texts


# --- batches -------------------------------------------------------------------------


class InstructionCollator:
    """Batch examples whose user texts differ, with labels on the response tokens only."""

    def __init__(self, processor, family) -> None:
        self.processor = processor
        self.family = family
        self.tokenizer = processor.tokenizer
        self.end_ids = self.tokenizer(end_of_turn_text(processor, family), add_special_tokens=False)["input_ids"]

    def __call__(self, examples: list[Example]) -> dict:
        prompts = [render_prompt(self.processor, self.family, e.user_text) for e in examples]
        encoded = self.processor(
            text=prompts, images=[[e.image] for e in examples], padding=True, padding_side="right", return_tensors="pt"
        )
        prompt_lengths = encoded["attention_mask"].sum(dim=1).tolist()
        responses = [self.tokenizer(e.response, add_special_tokens=False)["input_ids"] + self.end_ids for e in examples]
        total = max(p + len(r) for p, r in zip(prompt_lengths, responses))

        input_ids = torch.full((len(examples), total), self.tokenizer.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros_like(input_ids)
        labels = torch.full_like(input_ids, IGNORE_INDEX)
        for i, (length, response) in enumerate(zip(prompt_lengths, responses)):
            end = length + len(response)
            input_ids[i, :length] = encoded["input_ids"][i, :length]
            input_ids[i, length:end] = torch.tensor(response)
            attention_mask[i, :end] = 1
            labels[i, length:end] = input_ids[i, length:end]
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "labels": labels,
            "pixel_values": encoded["pixel_values"],
        }


# --- building and training -------------------------------------------------------------


def build_base(folder: Path, settings: Stage0Settings) -> Path:
    """Build a random tiny LLaVA with the world's tokenizer and tied word embeddings."""
    build_tiny_vlm(
        "llava",
        folder,
        seed=settings.seed,
        corpus=tokenizer_corpus(),
        text_hidden=settings.text_hidden,
        num_layers=settings.num_layers,
    )
    config = AutoConfig.from_pretrained(folder)
    config.tie_word_embeddings = True
    generation_config = GenerationConfig.from_pretrained(folder)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        model = AutoModelForImageTextToText.from_config(config)
    model.generation_config = generation_config
    model.save_pretrained(folder)
    return folder


def _learning_rate(step: int, settings: Stage0Settings) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    if step < settings.warmup_steps:
        return settings.learning_rate * (step + 1) / settings.warmup_steps
    progress = (step - settings.warmup_steps) / max(settings.steps - settings.warmup_steps, 1)
    return settings.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def exact_reply_rate(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Return the share of sequences whose every response token is the greedy prediction."""
    predicted = logits[:, :-1].argmax(dim=-1)  # (B, T-1): position t predicts token t+1
    targets = labels[:, 1:]
    wrong = (predicted != targets) & (targets != IGNORE_INDEX)
    return float((~wrong.any(dim=1)).float().mean())


def train_stage0(folder: Path, settings: Stage0Settings) -> Path:
    """Build and train the stage-0 model into `folder`; return `folder`."""
    build_base(folder, settings)
    loaded = load_model(str(folder), device=torch.device("cpu"), precision="fp32")
    model, processor = loaded.model, loaded.processor
    collator = InstructionCollator(processor, loaded.family)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=0.01)
    rng = random.Random(settings.seed + 1)

    model.train()
    for step in range(settings.steps):
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(step, settings)
        batch = collator(draw_examples(settings.batch_size, rng, settings.describe_fraction))
        output = model(**batch)
        loss = output.loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step % 100 == 0 or step == settings.steps - 1:
            logger.info(
                "Stage 0 step %d/%d: loss %.4f, replies exactly right in this batch %.2f",
                step + 1,
                settings.steps,
                loss.item(),
                exact_reply_rate(output.logits, batch["labels"]),
            )

    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


# --- checking and caching ----------------------------------------------------------------


def seen_value_questions(folder: Path, count: int, seed: int) -> list:
    """Write `count` held-out seen-value images to `folder` and ask one 4-option-max question each."""
    rng = random.Random(seed)
    objects = sample_objects(count, rng, SEEN_COLOURS, SEEN_PATTERNS)
    paths = write_pairs(objects, folder, prefix="seen")
    questions = []
    for index, (obj, path) in enumerate(zip(objects, paths)):
        attribute = ATTRIBUTE_KEYS[index % len(ATTRIBUTE_KEYS)]
        pool = SEEN_VALUES[attribute]
        questions.append(quiz.make_question(obj, path, attribute, pool, min(4, len(pool)), rng, f"seen-{index}"))
    return questions


def evaluate_seen_values(model_dir: Path, count: int = 200, seed: int = 12345) -> quiz.QuizScores:
    """Score the model on questions about seen values of fresh images (both scorings)."""
    loaded = load_model(str(model_dir), device=torch.device("cpu"), precision="fp32")
    loaded.model.eval()
    with tempfile.TemporaryDirectory() as scratch:
        questions = seen_value_questions(Path(scratch), count, seed)
        return quiz.score_quiz(loaded.model, loaded.processor, loaded.family, questions)


def cache_key(settings: Stage0Settings) -> str:
    """Return a key that changes when the settings, the prompt format or the world's values change."""
    example = quiz.make_question(
        WorldObject("circle", "red", "small", "solid"), Path("x"), "colour", SEEN_COLOURS, 4, random.Random(0), "key"
    )
    material = {
        "settings": asdict(settings),
        "prompt": quiz.build_prompt(example),
        "answer": quiz.answer_text("A"),
        "describe": DESCRIBE_INSTRUCTION,
        "values": {key: list(values) for key, values in VALUES.items()},
        "seen": {key: list(values) for key, values in SEEN_VALUES.items()},
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:12]


def ensure_stage0(cache_dir: Path, settings: Stage0Settings = Stage0Settings()) -> Path:
    """Return the folder of the stage-0 model for `settings`, training it first if it is missing.

    The model is trained in a temporary sibling folder and renamed into
    place, so an interrupted run never leaves a half-trained model behind.
    """
    target = Path(cache_dir) / f"stage0-{cache_key(settings)}"
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".stage0-", dir=target.parent))
    try:
        train_stage0(staging, settings)
        scores = evaluate_seen_values(staging)
        (staging / "stage0_check.json").write_text(
            json.dumps(
                {
                    "settings": asdict(settings),
                    "seen_value_generation_accuracy": scores.generation_accuracy,
                    "seen_value_likelihood_accuracy": scores.likelihood_accuracy,
                },
                indent=2,
            ),
            encoding="utf-8",
        )
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target
