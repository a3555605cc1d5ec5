"""Stage 0: a tiny LLaVA trained from scratch to follow instructions about seen values.

The base model for the experiment has to follow instructions before any
domain tuning, or there is no instruction-following to preserve. It is
trained on three kinds of examples:

- images with *seen* colours and patterns, asked multiple-choice questions
  in exactly the format of the engine's evaluation, about every attribute,
  with 2 to 4 options;
- the same kind of images with "Describe the image." and the attribute
  report, its lines in random order, as the reply;
- text-only examples over a blank image: a caption that names the object
  ("The object is a large purple dotted circle.") followed by a question or
  by "Write this as a report.", over *all* values.

The text-only examples stand in for a real language model's knowledge of
words it never saw with an image: after stage 0 the model can read, write
and match "purple" in text, but has never seen a purple object. Domain
tuning then only has to ground the new words visually, which is the setting
instruction-free tuning is meant for. The input and output embeddings are
tied, as in many small language models.
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
from PIL import Image
from transformers import AutoConfig, AutoModelForImageTextToText, GenerationConfig

from engine.models.loading import load_model
from engine.models.tiny import build_tiny_vlm
from engine.prompting import end_of_turn_text, render_prompt
from engine.training.collator import IGNORE_INDEX
from proving_ground import quiz
from proving_ground.world import (
    ATTRIBUTE_KEYS,
    BACKGROUND,
    COLOURS,
    IMAGE_SIZE,
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

DESCRIBE_INSTRUCTION = quiz.DESCRIBE_INSTRUCTION
REWRITE_INSTRUCTION = "Write this as a report."
# The stage-0 model trained with the default `Stage0Settings`, shipped so that
# the experiment and the tests do not retrain it (under 1 MB).
SHIPPED_STAGE0 = Path(__file__).resolve().parent.parent / "assets" / "proving_ground" / "stage0"
CHECK_FILE = "stage0_check.json"
SEEN_VALUES = {**VALUES, "colour": SEEN_COLOURS, "pattern": SEEN_PATTERNS}


@dataclass(frozen=True)
class Stage0Settings:
    """Size and training schedule of the stage-0 model."""

    text_hidden: int = 64
    num_layers: int = 3
    steps: int = 8000
    batch_size: int = 32
    learning_rate: float = 1e-3
    warmup_steps: int = 100
    text_fraction: float = 0.3
    """Share of training examples that name the object in words over a blank image (all values)."""
    describe_fraction: float = 0.15
    """Share of the image examples that are "Describe the image." (the rest are questions)."""
    describe_only_steps: int = 300
    """First steps trained on descriptions alone, so the model can tell the attributes apart before it must match them to options."""
    letter_weight: float = 5.0
    """Loss weight of the answer-letter token relative to every other response token."""
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


def shuffled_report(obj: WorldObject, rng: random.Random) -> str:
    """Return the report with its lines in a random order.

    A pretrained language model reads and writes attributes in any order. A
    base that only ever saw one order would find every shuffled report
    surprising, and response shuffling would then mostly teach the frozen
    language model a new order instead of the image content.
    """
    lines = obj.report().splitlines()
    rng.shuffle(lines)
    return "\n".join(lines)


def describe_example(obj: WorldObject, rng: random.Random) -> Example:
    return Example(draw_image(obj), DESCRIBE_INSTRUCTION, shuffled_report(obj, rng))


def caption(obj: WorldObject) -> str:
    return f"The object is a {obj.size} {obj.colour} {obj.pattern} {obj.shape}."


def text_example(obj: WorldObject, rng: random.Random) -> Example:
    """Return a text-only example: the object is named in words and the image is blank.

    Half rewrite the caption as a report, half answer a question about it,
    with every value (new ones included) in the options.
    """
    blank = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), BACKGROUND)
    if rng.random() < 0.5:
        return Example(blank, f"{caption(obj)}\n{REWRITE_INSTRUCTION}", shuffled_report(obj, rng))
    attribute = rng.choice(ATTRIBUTE_KEYS)
    pool = VALUES[attribute]
    question = quiz.make_question(obj, Path("unused"), attribute, pool, rng.randint(2, min(4, len(pool))), rng, "text")
    user_text = f"{caption(obj)}\n{quiz.build_prompt(question)}"
    return Example(blank, user_text, quiz.answer_text(question.answer_letter))


def draw_examples(count: int, rng: random.Random, describe_fraction: float, text_fraction: float) -> list[Example]:
    """Draw fresh objects and turn each into a text-only example, a description or a question.

    Text-only examples draw from every value; image examples from seen values only.
    """
    examples = []
    for _ in range(count):
        if rng.random() < text_fraction:
            examples.append(text_example(sample_objects(1, rng, COLOURS, PATTERNS)[0], rng))
            continue
        obj = sample_objects(1, rng, SEEN_COLOURS, SEEN_PATTERNS)[0]
        if rng.random() < describe_fraction:
            examples.append(describe_example(obj, rng))
        else:
            examples.append(question_example(obj, rng.choice(ATTRIBUTE_KEYS), rng))
    return examples


def tokenizer_corpus() -> list[str]:
    """Return texts naming every prompt word and every value, new values included."""
    rng = random.Random(0)
    texts = [DESCRIBE_INSTRUCTION, REWRITE_INSTRUCTION]
    for obj in sample_objects(400, rng, COLOURS, PATTERNS):
        texts.append(caption(obj))
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


def letter_token_ids(tokenizer) -> list[int]:
    """Return the ids of the option letters as they follow the answer prefix (" A", " B", …)."""
    ids = []
    for letter in "ABCD":
        pieces = tokenizer(quiz.answer_text(letter), add_special_tokens=False)["input_ids"]
        prefix = tokenizer(quiz.answer_text(letter)[:-2].rstrip(), add_special_tokens=False)["input_ids"]
        ids.append(pieces[len(prefix)])
    return ids


def weighted_loss(logits: torch.Tensor, labels: torch.Tensor, letter_ids: torch.Tensor, letter_weight: float):
    """Return the token-mean cross-entropy with answer-letter tokens weighted `letter_weight`, and the letter accuracy.

    A question's reply has one informative token (the letter) among about
    seven, so without the weight the gradient of the matching task is small
    next to the descriptions and the fixed answer prefix.
    """
    logits = logits[:, :-1]  # (B, T-1, V): position t predicts token t+1
    targets = labels[:, 1:]
    mask = targets != IGNORE_INDEX
    per_token = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.clamp(min=0).reshape(-1), reduction="none"
    ).view_as(targets)
    is_letter = torch.isin(targets, letter_ids) & mask
    weights = mask.float() + (letter_weight - 1.0) * is_letter.float()
    loss = (per_token * weights).sum() / weights.sum()
    predicted = logits.argmax(dim=-1)
    letter_accuracy = float((predicted == targets)[is_letter].float().mean()) if is_letter.any() else float("nan")
    return loss, letter_accuracy


def train_stage0(folder: Path, settings: Stage0Settings) -> Path:
    """Build and train the stage-0 model into `folder`, logging to `stage0_log.jsonl`; return `folder`."""
    folder = Path(folder)
    build_base(folder, settings)
    loaded = load_model(str(folder), device=torch.device("cpu"), precision="fp32")
    model, processor = loaded.model, loaded.processor
    collator = InstructionCollator(processor, loaded.family)
    letter_ids = torch.tensor(letter_token_ids(processor.tokenizer))
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=0.01)
    rng = random.Random(settings.seed + 1)
    log_path = folder / "stage0_log.jsonl"

    model.train()
    for step in range(settings.steps):
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(step, settings)
        describe_fraction = 1.0 if step < settings.describe_only_steps else settings.describe_fraction
        text_fraction = 0.0 if step < settings.describe_only_steps else settings.text_fraction
        batch = collator(draw_examples(settings.batch_size, rng, describe_fraction, text_fraction))
        labels = batch.pop("labels")
        logits = model(**batch).logits
        loss, letter_accuracy = weighted_loss(logits, labels, letter_ids, settings.letter_weight)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step % 50 == 0 or step == settings.steps - 1:
            record = {"step": step + 1, "loss": round(loss.item(), 4), "letter_accuracy": round(letter_accuracy, 3)}
            with log_path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
            logger.info("Stage 0 step %d/%d: loss %.4f, letter accuracy in batch %.2f", step + 1, settings.steps, loss.item(), letter_accuracy)

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
        "rewrite": REWRITE_INSTRUCTION,
        "report_order": "shuffled",
        "values": {key: list(values) for key, values in VALUES.items()},
        "seen": {key: list(values) for key, values in SEEN_VALUES.items()},
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:12]


def _matches(folder: Path, key: str) -> bool:
    check = folder / CHECK_FILE
    return (folder / "config.json").exists() and check.exists() and json.loads(check.read_text())["key"] == key


def ensure_stage0(cache_dir: Path, settings: Stage0Settings = Stage0Settings()) -> Path:
    """Return the folder of the stage-0 model for `settings`, training it first if it is missing.

    The shipped model is used when it was trained with the same settings,
    prompt format and world values (its `stage0_check.json` stores the key).
    Otherwise the model is trained in a temporary sibling folder under
    `cache_dir` and renamed into place, so an interrupted run never leaves a
    half-trained model behind.
    """
    key = cache_key(settings)
    if _matches(SHIPPED_STAGE0, key):
        return SHIPPED_STAGE0
    target = Path(cache_dir) / f"stage0-{key}"
    if _matches(target, key):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".stage0-", dir=target.parent))
    try:
        train_stage0(staging, settings)
        write_check(staging, settings)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def write_check(folder: Path, settings: Stage0Settings) -> dict:
    """Score the model on seen-value questions and record the result with the cache key."""
    scores = evaluate_seen_values(folder)
    check = {
        "key": cache_key(settings),
        "settings": asdict(settings),
        "seen_value_generation_accuracy": scores.generation_accuracy,
        "seen_value_likelihood_accuracy": scores.likelihood_accuracy,
    }
    (folder / CHECK_FILE).write_text(json.dumps(check, indent=2) + "\n", encoding="utf-8")
    return check
