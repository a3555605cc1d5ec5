"""Free-form replies about an image, streamed token by token."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

from engine.evaluation.scoring import greedy_generation_config, processor_inputs
from engine.models.families import Family
from engine.prompting import render_prompt
from engine.training.collator import fit_longest_side


logger = logging.getLogger(__name__)

ImageInput = Image.Image | np.ndarray | str | Path


def as_rgb_image(image: ImageInput, size: int | None = None) -> Image.Image:
    """Return `image` (PIL image, HxWxC uint8 array or file path) as RGB, scaled like in training."""
    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"Image {path} not found.")
        with Image.open(path) as opened:
            result = opened.convert("RGB")
    elif isinstance(image, np.ndarray):
        result = Image.fromarray(image).convert("RGB")
    elif isinstance(image, Image.Image):
        result = image.convert("RGB")
    else:
        raise TypeError(f"Expected a PIL image, an array or a path, got {type(image).__name__}.")
    return fit_longest_side(result, size)


class _StopOnEvent(StoppingCriteria):
    """Stops generation once `event` is set (the reader went away)."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids, scores, **kwargs) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


def stream_reply(
    model,
    processor,
    family: Family,
    image: ImageInput,
    instruction: str,
    max_new_tokens: int = 256,
    image_size: int | None = None,
) -> Iterator[str]:
    """Yield the reply to `instruction` about `image` as it grows (each value is the whole text so far).

    Decoding is greedy, in a background thread that feeds a
    `TextIteratorStreamer`. Closing the iterator early stops the generation
    at the next token and waits for the thread, so the model is free when
    this generator finishes. An error in generation is re-raised here.
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens is {max_new_tokens}; it must be at least 1.")
    tokenizer = getattr(processor, "tokenizer", processor)
    prompt = render_prompt(processor, family, instruction.strip())
    inputs = processor_inputs(processor, [prompt], [as_rgb_image(image, image_size)], "left", model)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    stop = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with torch.inference_mode():
                model.generate(
                    **inputs,
                    generation_config=greedy_generation_config(model, tokenizer, max_new_tokens),
                    streamer=streamer,
                    stopping_criteria=StoppingCriteriaList([_StopOnEvent(stop)]),
                )
        except BaseException as error:  # re-raised in the reading thread below
            logger.error("Chat generation failed: %s: %s", type(error).__name__, error)
            failure.append(error)
            streamer.end()

    thread = threading.Thread(target=run, name="chat-generate", daemon=True)
    thread.start()
    text = ""
    try:
        for piece in streamer:
            if not piece:
                continue
            text += piece
            yield text
    finally:
        stop.set()
        thread.join()
    if failure:
        raise RuntimeError(f"Generation failed: {failure[0]}") from failure[0]
