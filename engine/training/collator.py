"""Batches of image–report pairs with labels on the report tokens only.

The processor encodes the prompt (template, image tokens, instruction or
proxy placeholders) for the whole batch with right padding, then each
sample's report tokens are appended after its prompt. Building the sequence
this way keeps the label boundary exact and lets the report be truncated
while the prompt never is.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image
from transformers import TrainerCallback

from engine.data.sample import Sample
from engine.data.shuffling import shuffle_report
from engine.models.families import Family
from engine.prompting import end_of_turn_text, render_prompt, reply_prefix_text


logger = logging.getLogger(__name__)

IGNORE_INDEX = -100

# Processor outputs with one entry per token, which must grow with the report.
# Report tokens take the value of the last prompt token (text type, attends to
# the image) unless the family sets a response token type.
PER_TOKEN_KEYS = ("token_type_ids", "mm_token_type_ids", "cross_attention_mask")


def fitted_size(size: tuple[int, int], limit: int | None) -> tuple[int, int]:
    """Return (width, height) scaled so the longest side is at most `limit`; never larger."""
    width, height = size
    if limit is None or max(width, height) <= limit:
        return width, height
    scale = limit / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def fit_longest_side(image: Image.Image, limit: int | None) -> Image.Image:
    """Downscale so the longest side is at most `limit` pixels; never upscale."""
    new_size = fitted_size(image.size, limit)
    if new_size == image.size:
        return image
    return image.resize(new_size, Image.Resampling.BICUBIC)


def load_image(sample: Sample, size: int | None) -> Image.Image:
    with Image.open(sample.image_path) as image:
        return fit_longest_side(image.convert("RGB"), size)


@dataclass
class ReportCollator:
    """Turn a list of samples into model inputs with `labels`.

    `user_text` is the text of the user turn: K proxy placeholders, a
    fixed instruction, or "". Each shuffling permutation is drawn from a
    generator seeded with (seed, stage, epoch, sample id): every draw of a
    sample in a new epoch gets a fresh order, and a resumed run draws exactly
    the orders of an uninterrupted one. `EpochCallback` keeps `epoch` and
    `stage` current.
    """

    processor: object
    family: Family
    user_text: str
    shuffling: str = "none"
    max_length: int = 2048
    image_size: int | None = None
    seed: int = 0
    stage: str = "main"
    epoch: int = 0

    def __post_init__(self) -> None:
        self.tokenizer = getattr(self.processor, "tokenizer", self.processor)
        self.prompt = render_prompt(self.processor, self.family, self.user_text)
        self.reply_prefix = reply_prefix_text(self.processor, self.family)
        self.end_ids = self.tokenizer(end_of_turn_text(self.processor, self.family), add_special_tokens=False)[
            "input_ids"
        ]
        if self.tokenizer.pad_token_id is None:
            raise ValueError("The tokenizer has no pad token; set `tokenizer.pad_token` before training.")

    def encode_prompts(self, samples: Sequence[Sample]) -> dict:
        images = [[load_image(sample, self.image_size)] for sample in samples]
        return self.processor(
            text=[self.prompt] * len(samples),
            images=images,
            padding=True,
            padding_side="right",
            return_tensors="pt",
        )

    def report_ids(self, sample: Sample) -> list[int]:
        rng = random.Random(f"{self.seed}:{self.stage}:{self.epoch}:{sample.sample_id}")
        report = self.reply_prefix + shuffle_report(sample.report, self.shuffling, rng)
        return self.tokenizer(report, add_special_tokens=False)["input_ids"] + self.end_ids

    def __call__(self, samples: Sequence[Sample]) -> dict:
        encoded = self.encode_prompts(samples)
        prompt_lengths = encoded["attention_mask"].sum(dim=1).tolist()
        responses = []
        for sample, prompt_length in zip(samples, prompt_lengths):
            budget = self.max_length - prompt_length
            if budget <= 0:
                raise ValueError(
                    f"The prompt of {sample.source} alone has {prompt_length} tokens, over max_length "
                    f"{self.max_length}; raise training.max_length or lower training.image_size."
                )
            responses.append(self.report_ids(sample)[:budget])
        return self._assemble(encoded, prompt_lengths, responses)

    def _assemble(self, encoded: dict, prompt_lengths: list[int], responses: list[list[int]]) -> dict:
        batch_size = len(responses)
        total = max(p + len(r) for p, r in zip(prompt_lengths, responses))
        input_ids = torch.full((batch_size, total), self.tokenizer.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((batch_size, total), dtype=torch.long)
        labels = torch.full((batch_size, total), IGNORE_INDEX, dtype=torch.long)
        prompt_ids = encoded["input_ids"]

        for i, (prompt_length, response) in enumerate(zip(prompt_lengths, responses)):
            end = prompt_length + len(response)
            response_tensor = torch.tensor(response, dtype=torch.long)
            input_ids[i, :prompt_length] = prompt_ids[i, :prompt_length]
            input_ids[i, prompt_length:end] = response_tensor
            attention_mask[i, :end] = 1
            labels[i, prompt_length:end] = response_tensor

        batch = {key: value for key, value in encoded.items() if key not in ("input_ids", "attention_mask")}
        batch.update(input_ids=input_ids, attention_mask=attention_mask, labels=labels)

        if self.family.response_token_type is not None and "token_type_ids" not in batch:
            batch["token_type_ids"] = torch.zeros_like(prompt_ids)
        for key in PER_TOKEN_KEYS:
            if key in batch:
                batch[key] = self._extend_per_token(key, batch[key], prompt_lengths, responses, total)
        return batch

    def _extend_per_token(self, key, values, prompt_lengths, responses, total) -> torch.Tensor:
        extended = values.new_zeros((values.shape[0], total, *values.shape[2:]))
        for i, (prompt_length, response) in enumerate(zip(prompt_lengths, responses)):
            end = prompt_length + len(response)
            extended[i, :prompt_length] = values[i, :prompt_length]
            if key == "token_type_ids" and self.family.response_token_type is not None:
                extended[i, prompt_length:end] = self.family.response_token_type
            else:
                extended[i, prompt_length:end] = values[i, prompt_length - 1]
        return extended


class EpochCallback(TrainerCallback):
    """Tell the collator which stage and epoch it is drawing samples for."""

    def __init__(self, collator: ReportCollator, stage: str) -> None:
        self.collator = collator
        self.stage = stage

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.collator.stage = self.stage
        # On resume the state has a fractional epoch, and its floor is the epoch in progress.
        self.collator.epoch = math.floor(state.epoch + 1e-6)
