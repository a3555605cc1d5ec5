"""Building and saving: the family registry and `build_tiny_vlm`."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer
from transformers import AutoModelForImageTextToText, GenerationConfig, PreTrainedTokenizerFast

from engine.models.tiny.corpus import default_corpus, train_tokenizer
from engine.models.tiny.gemma import _GEMMA3, _PALIGEMMA
from engine.models.tiny.idefics3 import _IDEFICS3
from engine.models.tiny.llava import _LLAVA
from engine.models.tiny.mllama import _MLLAMA
from engine.models.tiny.qwen import _QWEN2_5_VL, _QWEN2_VL, _QWEN3_VL
from engine.models.tiny.recipe import (
    DEFAULT_IMAGE_SIZE,
    IMAGE_SIZE_MULTIPLE,
    TEXT_HEADS,
    _FamilyRecipe,
    _TinySize,
)


logger = logging.getLogger(__name__)

TINY_FAMILIES: tuple[str, ...] = (
    "mllama",
    "qwen2_vl",
    "qwen2_5_vl",
    "qwen3_vl",
    "idefics3",
    "llava",
    "gemma3",
    "paligemma",
)

_RECIPES: dict[str, _FamilyRecipe] = {
    "mllama": _MLLAMA,
    "llava": _LLAVA,
    "gemma3": _GEMMA3,
    "paligemma": _PALIGEMMA,
    "idefics3": _IDEFICS3,
    "qwen2_vl": _QWEN2_VL,
    "qwen2_5_vl": _QWEN2_5_VL,
    "qwen3_vl": _QWEN3_VL,
}


def _family_tokenizer(base: PreTrainedTokenizerFast, recipe: _FamilyRecipe) -> PreTrainedTokenizerFast:
    """Copy the trained tokenizer and name the family's special tokens on it."""
    backend = Tokenizer.from_str(base.backend_tokenizer.to_str())
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        padding_side="right",
        chat_template=recipe.chat_template,
        **recipe.tokens,
    )


def _generation_config(tokenizer: PreTrainedTokenizerFast, recipe: _FamilyRecipe) -> GenerationConfig:
    stop_ids = [tokenizer.eos_token_id, *tokenizer.convert_tokens_to_ids(list(recipe.end_of_turn_tokens))]
    return GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=stop_ids if len(stop_ids) > 1 else stop_ids[0],
        pad_token_id=tokenizer.pad_token_id,
    )


def build_tiny_vlm(
    family: str,
    out_dir: Path,
    *,
    seed: int = 0,
    corpus: Iterable[str] | None = None,
    text_hidden: int = 64,
    num_layers: int = 2,
    image_size: int | None = None,
) -> Path:
    """Build a randomly initialised VLM of `family` and save it with its processor.

    `out_dir` then loads with `AutoModelForImageTextToText.from_pretrained` and
    `AutoProcessor.from_pretrained`. The tokenizer is trained on `corpus`
    (default: `default_corpus()`); weights depend only on `seed` and the
    sizes. `text_hidden` must be divisible by 4 (the number of attention
    heads) and `image_size` (default 32 px) by 16. Mllama gets one extra
    cross-attention decoder layer on top of `num_layers`. Returns `out_dir`.
    """
    if family not in _RECIPES:
        raise ValueError(f"Unknown tiny model family {family!r}. Choose one of: {', '.join(TINY_FAMILIES)}.")
    if text_hidden % TEXT_HEADS != 0:
        raise ValueError(f"text_hidden={text_hidden} must be divisible by the {TEXT_HEADS} attention heads.")
    image_size = DEFAULT_IMAGE_SIZE if image_size is None else image_size
    if image_size <= 0 or image_size % IMAGE_SIZE_MULTIPLE != 0:
        raise ValueError(f"image_size={image_size} must be a positive multiple of {IMAGE_SIZE_MULTIPLE} pixels.")
    if num_layers < 1:
        raise ValueError(f"num_layers={num_layers} must be at least 1.")
    recipe = _RECIPES[family]
    size = _TinySize(text_hidden, num_layers, image_size)

    base = train_tokenizer(default_corpus() if corpus is None else corpus)
    tokenizer = _family_tokenizer(base, recipe)
    processor = recipe.make_processor(tokenizer, size)
    config = recipe.make_config(processor.tokenizer, size)

    # Fork the global generator so that building a model leaves the caller's
    # random state untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForImageTextToText.from_config(config)
        if recipe.after_init is not None:
            recipe.after_init(model)
    model.generation_config = _generation_config(processor.tokenizer, recipe)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    logger.info(
        "Saved tiny %s model (%d parameters) to %s",
        family,
        sum(p.numel() for p in model.parameters()),
        out_dir,
    )
    return out_dir
