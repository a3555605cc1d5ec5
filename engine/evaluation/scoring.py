"""Score multiple-choice questions with a loaded model: batched generation and option likelihood.

Generation renders each prompt with the model's chat template, pads the
batch on the left (decoder-only models continue from the last position) and
decodes greedily. Likelihood scoring appends the answer prefix ("The correct
answer is ") to each prompt, as the training collator appends reports, and
reads the log-probability of every option's continuation from one forward
pass, computing logits only at the positions it needs (`logits_to_keep`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import torch
from PIL import Image
from transformers import GenerationConfig

from engine.evaluation.prompts import PromptSettings, format_question
from engine.evaluation.questions import OPTION_LETTERS, Question
from engine.models.families import Family
from engine.prompting import render_prompt
from engine.training.collator import PER_TOKEN_KEYS, fit_longest_side


logger = logging.getLogger(__name__)

Scoring = Literal["parse", "likelihood", "both"]
LikelihoodTarget = Literal["letter", "text"]
GREY = (128, 128, 128)

ProgressCallback = Callable[[int], None]
"""Called with the number of items finished since the previous call."""


@dataclass
class ScoringSettings:
    scoring: Scoring = "both"
    """`parse`: generate a reply and parse it; `likelihood`: compare option log-probabilities; `both`."""
    max_new_tokens: int = 24
    """Reply length limit of generation, in tokens."""
    batch_size: int = 8
    """Prompts per forward pass or `generate` call."""
    likelihood_target: LikelihoodTarget = "letter"
    """Continuation scored after the answer prefix: the option letter, or the option's text."""
    length_normalise: bool = False
    """With `likelihood_target: text`, rank options by mean log-probability per token instead of the sum."""
    image_size: int | None = None
    """Maximum image side in pixels given to the processor; None keeps the processor's default."""
    grounding_control: bool = True
    """Also score every item with a uniform grey image in place of the real one."""
    prompt: PromptSettings | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.scoring not in ("parse", "likelihood", "both"):
            problems.append(f"scoring is {self.scoring!r}; choose parse, likelihood or both.")
        if self.likelihood_target not in ("letter", "text"):
            problems.append(f"likelihood_target is {self.likelihood_target!r}; choose letter or text.")
        if self.max_new_tokens < 1:
            problems.append(f"max_new_tokens is {self.max_new_tokens}; it must be at least 1.")
        if self.batch_size < 1:
            problems.append(f"batch_size is {self.batch_size}; it must be at least 1.")
        if problems:
            raise ValueError("Invalid scoring settings:\n- " + "\n- ".join(problems))
        if self.prompt is None:
            self.prompt = PromptSettings()

    @property
    def uses_generation(self) -> bool:
        return self.scoring in ("parse", "both")

    @property
    def uses_likelihood(self) -> bool:
        return self.scoring in ("likelihood", "both")


@dataclass(frozen=True)
class OptionScores:
    """Log-probability of each option's continuation after the answer prefix, and the best option."""

    scores: tuple[float, ...]
    choice: int


def load_question_image(question: Question, size: int | None, grey: bool = False) -> Image.Image:
    """Open the question's image as RGB, scaled like in training; `grey` keeps only its size."""
    path = Path(question.image_path)
    try:
        with Image.open(path) as image:
            fitted = fit_longest_side(image.convert("RGB"), size)
    except OSError as error:
        raise OSError(f"Image {path} of question {question.question_id} could not be opened: {error}") from error
    if grey:
        # Same size as the real image, so that models with dynamic resolution
        # see as many image tokens and only the content differs.
        return Image.new("RGB", fitted.size, GREY)
    return fitted


class QuestionImages(Sequence):
    """The images of a list of questions, opened when indexed so that a long set never sits in memory."""

    def __init__(self, questions: Sequence[Question], size: int | None, grey: bool = False) -> None:
        self.questions = questions
        self.size = size
        self.grey = grey

    def __len__(self) -> int:
        return len(self.questions)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return load_question_image(self.questions[index], self.size, self.grey)


def _model_device_and_dtype(model: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    parameter = next(model.parameters())
    return parameter.device, parameter.dtype


def _batches(order: list[int], size: int) -> list[list[int]]:
    return [order[start : start + size] for start in range(0, len(order), size)]


def processor_inputs(processor, prompts: list[str], images: list[Image.Image], padding_side: str, model) -> dict:
    """Encode prompts with one image each (nested per sample, as every processor accepts) on the model's device."""
    device, dtype = _model_device_and_dtype(model)
    encoded = processor(
        text=prompts,
        images=[[image] for image in images],
        padding=True,
        padding_side=padding_side,
        return_tensors="pt",
    )
    # PaliGemma's processor returns training labels; scoring computes its own.
    encoded.pop("labels", None)
    # Floating tensors (pixel values) follow the model's dtype; ids stay integers.
    return encoded.to(device).to(dtype)


# --- generation -------------------------------------------------------------------------


def greedy_generation_config(model, tokenizer, max_new_tokens: int) -> GenerationConfig:
    """Return the model's generation config switched to greedy decoding with a length limit."""
    config = GenerationConfig.from_dict(model.generation_config.to_dict())
    config.do_sample = False
    config.num_beams = 1
    config.temperature = None
    config.top_p = None
    config.top_k = None
    config.max_new_tokens = max_new_tokens
    config.max_length = None
    if config.pad_token_id is None:
        config.pad_token_id = tokenizer.pad_token_id
    return config


@torch.inference_mode()
def generate_replies(
    model,
    processor,
    family: Family,
    user_texts: Sequence[str],
    images: Sequence[Image.Image],
    max_new_tokens: int = 24,
    batch_size: int = 8,
    progress: ProgressCallback | None = None,
) -> list[str]:
    """Generate one greedy reply per (user text, image), `batch_size` prompts per `generate` call.

    Prompts of similar length are batched together to waste less padding;
    the replies come back in the input order.
    """
    tokenizer = getattr(processor, "tokenizer", processor)
    prompts = [render_prompt(processor, family, text) for text in user_texts]
    config = greedy_generation_config(model, tokenizer, max_new_tokens)
    replies: list[str] = [""] * len(prompts)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    for batch in _batches(order, batch_size):
        inputs = processor_inputs(processor, [prompts[i] for i in batch], [images[i] for i in batch], "left", model)
        output = model.generate(**inputs, generation_config=config)
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        for i, text in zip(batch, tokenizer.batch_decode(new_tokens, skip_special_tokens=True), strict=True):
            replies[i] = text.strip()
        if progress is not None:
            progress(len(batch))
    return replies


# --- likelihood ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Continuations:
    """Token ids after the prompt: a part shared by all options, then one part per option."""

    shared: tuple[int, ...]
    options: tuple[tuple[int, ...], ...]
    tokenization: str
    """`natural`: the ids of `prefix + target` as the tokenizer splits them. `separate`: prefix and
    letter tokenized apart, used when the natural split does not give one token per letter."""

    @property
    def single_token(self) -> bool:
        return all(len(ids) == 1 for ids in self.options) and len({ids[0] for ids in self.options}) == len(self.options)


def _split_shared(sequences: list[list[int]]) -> tuple[tuple[int, ...], tuple[tuple[int, ...], ...]]:
    shared = 0
    shortest = min(len(ids) for ids in sequences)
    while shared < shortest - 1 and all(ids[shared] == sequences[0][shared] for ids in sequences):
        shared += 1
    return tuple(sequences[0][:shared]), tuple(tuple(ids[shared:]) for ids in sequences)


def continuations_for(tokenizer, answer_prefix: str, targets: Sequence[str], letters: bool) -> Continuations:
    """Tokenize `answer_prefix + target` for every option and split off the shared start.

    For letters, one token per option allows a single forward pass per
    question. When the natural split gives some letter two tokens (a
    tokenizer with "ĠA" but no "ĠB"), the prefix and the letters are
    tokenized apart instead, if that gives one token each.
    """
    natural = [tokenizer(answer_prefix + target, add_special_tokens=False)["input_ids"] for target in targets]
    shared, options = _split_shared(natural)
    result = Continuations(shared, options, "natural")
    if not letters or result.single_token:
        return result

    # NOTE: the separate split matches the model's own tokenization only for
    # letters that the tokenizer never merges with the space. It is a fallback
    # for small tokenizers, and the report records which split was used.
    prefix_ids = tuple(tokenizer(answer_prefix, add_special_tokens=False)["input_ids"])
    letter_ids = tuple(tuple(tokenizer(target, add_special_tokens=False)["input_ids"]) for target in targets)
    separate = Continuations(prefix_ids, letter_ids, "separate")
    return separate if separate.single_token else result


@lru_cache(maxsize=64)
def _cached_letter_continuations(tokenizer, answer_prefix: str, count: int) -> Continuations:
    return continuations_for(tokenizer, answer_prefix, list(OPTION_LETTERS[:count]), letters=True)


def option_continuations(tokenizer, question: Question, answer_prefix: str, target: LikelihoodTarget) -> Continuations:
    if target == "letter":
        return _cached_letter_continuations(tokenizer, answer_prefix, len(question.options))
    return continuations_for(tokenizer, answer_prefix, list(question.options), letters=False)


@dataclass
class _Row:
    item: int
    prompt: str
    tail: tuple[int, ...]
    scored: tuple[int, ...]
    """Token ids whose log-probabilities are summed: the last ones of `tail`, or none (read the next token)."""
    last_of_item: bool = True


def _assemble(encoded: dict, rows: Sequence[_Row], family: Family, pad_id: int) -> tuple[dict, torch.Tensor]:
    """Append each row's tail after its right-padded prompt; return the batch and the logit positions.

    Position j of row r is where the logits predict token j of the scored
    part, or, for rows that score nothing, the token after the tail.
    """
    prompt_lengths = encoded["attention_mask"].sum(dim=1).tolist()
    total = max(length + len(row.tail) for length, row in zip(prompt_lengths, rows, strict=True))
    batch_size = len(rows)
    input_ids = torch.full((batch_size, total), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((batch_size, total), dtype=torch.long)
    width = max(max(len(row.scored), 1) for row in rows)
    positions = torch.zeros((batch_size, width), dtype=torch.long)

    for r, (length, row) in enumerate(zip(prompt_lengths, rows, strict=True)):
        end = length + len(row.tail)
        input_ids[r, :length] = encoded["input_ids"][r, :length].cpu()
        input_ids[r, length:end] = torch.tensor(row.tail, dtype=torch.long)
        attention_mask[r, :end] = 1
        first = end - len(row.scored) - 1 if row.scored else end - 1
        count = max(len(row.scored), 1)
        positions[r] = torch.tensor([first + min(j, count - 1) for j in range(width)])

    device = encoded["input_ids"].device
    batch = {key: value for key, value in encoded.items() if key not in ("input_ids", "attention_mask")}
    batch["input_ids"] = input_ids.to(device)
    batch["attention_mask"] = attention_mask.to(device)
    if family.response_token_type is not None and "token_type_ids" not in batch:
        batch["token_type_ids"] = torch.zeros_like(encoded["input_ids"])
    for key in PER_TOKEN_KEYS:
        if key in batch:
            batch[key] = _extend_per_token(batch[key], prompt_lengths, rows, total, key, family)
    return batch, positions.to(device)


def _extend_per_token(values, prompt_lengths, rows, total, key, family) -> torch.Tensor:
    # Tail tokens take the value of the last prompt token (text, attending to
    # the image), except PaliGemma's token types, where the reply has its own.
    extended = values.new_zeros((values.shape[0], total, *values.shape[2:]))
    for r, (length, row) in enumerate(zip(prompt_lengths, rows, strict=True)):
        end = length + len(row.tail)
        extended[r, :length] = values[r, :length]
        if key == "token_type_ids" and family.response_token_type is not None:
            extended[r, length:end] = family.response_token_type
        else:
            extended[r, length:end] = values[r, length - 1]
    return extended


@torch.inference_mode()
def _score_rows(
    model, processor, family: Family, rows: list[_Row], images: Sequence[Image.Image], batch_size: int, on_batch=None
) -> list[torch.Tensor]:
    """Return, per row, the log-probabilities (float32) at its positions over the vocabulary."""
    tokenizer = getattr(processor, "tokenizer", processor)
    results: list[torch.Tensor] = [torch.empty(0)] * len(rows)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i].prompt))
    for batch in _batches(order, batch_size):
        batch_rows = [rows[i] for i in batch]
        prompts = [row.prompt for row in batch_rows]
        encoded = processor_inputs(processor, prompts, [images[row.item] for row in batch_rows], "right", model)
        inputs, positions = _assemble(encoded, batch_rows, family, tokenizer.pad_token_id)
        logits = model(**inputs, logits_to_keep=positions, use_cache=False).logits
        log_probs = torch.log_softmax(logits.float(), dim=-1).cpu()
        for position, i in enumerate(batch):
            results[i] = log_probs[position]
        if on_batch is not None:
            on_batch(batch_rows)
    return results


def score_options(
    model,
    processor,
    family: Family,
    questions: Sequence[Question],
    images: Sequence[Image.Image],
    settings: ScoringSettings,
    progress: ProgressCallback | None = None,
) -> tuple[list[OptionScores], str]:
    """Rank each question's options by the log-probability of their continuation.

    Returns the scores per question and the tokenization used for letters.
    Letters that are one token each need one row per question: the scores
    are the log-probabilities of the letter tokens after the prefix. Other
    continuations need one row per option, scored by the sum (or, with
    `length_normalise`, the mean) of their tokens' log-probabilities.
    """
    tokenizer = getattr(processor, "tokenizer", processor)
    prompt_settings = settings.prompt or PromptSettings()
    rows: list[_Row] = []
    plans: list[Continuations] = []
    for item, question in enumerate(questions):
        prompt = render_prompt(processor, family, format_question(question, prompt_settings))
        plan = option_continuations(tokenizer, question, prompt_settings.answer_prefix, settings.likelihood_target)
        plans.append(plan)
        if plan.single_token:
            rows.append(_Row(item, prompt, plan.shared, ()))
        else:
            for index, option in enumerate(plan.options):
                last = index == len(plan.options) - 1
                rows.append(_Row(item, prompt, plan.shared + option, option, last_of_item=last))

    def on_batch(batch_rows: list[_Row]) -> None:
        if progress is not None:
            progress(sum(1 for row in batch_rows if row.last_of_item))

    log_probs = _score_rows(model, processor, family, rows, images, settings.batch_size, on_batch)

    results: list[OptionScores] = []
    cursor = 0
    for plan in plans:
        if plan.single_token:
            distribution = log_probs[cursor][0]
            scores = [float(distribution[ids[0]]) for ids in plan.options]
            cursor += 1
        else:
            scores = []
            for option in plan.options:
                token_log_probs = log_probs[cursor][: len(option)].gather(1, torch.tensor(option)[:, None]).squeeze(1)
                total = float(token_log_probs.sum())
                scores.append(total / len(option) if settings.length_normalise else total)
                cursor += 1
        choice = max(range(len(scores)), key=lambda i: (scores[i], -i))
        results.append(OptionScores(tuple(scores), choice))
    tokenizations = sorted({plan.tokenization for plan in plans})
    return results, "+".join(tokenizations)
