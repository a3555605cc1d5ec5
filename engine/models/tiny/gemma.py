"""Gemma 3 and PaliGemma, which share a SigLIP vision tower and Gemma text settings."""

from __future__ import annotations

import torch
from torch import nn
from transformers import (
    Gemma3Config,
    Gemma3ImageProcessorPil,
    Gemma3Processor,
    Gemma3TextConfig,
    GemmaConfig,
    PaliGemmaConfig,
    PaliGemmaProcessor,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    ProcessorMixin,
    SiglipImageProcessorPil,
    SiglipVisionConfig,
)

from engine.models.tiny.recipe import (
    TEXT_HEADS,
    VISION_HEADS,
    VISION_HIDDEN,
    VISION_LAYERS,
    _chat_template,
    _FamilyRecipe,
    _special_ids,
    _square,
    _TinySize,
)


# --- SigLIP vision tower and Gemma text settings, shared by Gemma 3 and PaliGemma


def _siglip_vision(image_size: int, patch_size: int) -> SiglipVisionConfig:
    # Gemma 3 and PaliGemma never use SigLIP's attention-pooling head.
    return SiglipVisionConfig(
        hidden_size=VISION_HIDDEN,
        intermediate_size=2 * VISION_HIDDEN,
        num_hidden_layers=VISION_LAYERS,
        num_attention_heads=VISION_HEADS,
        image_size=image_size,
        patch_size=patch_size,
        vision_use_head=False,
    )


def _gemma_text_kwargs(size: _TinySize) -> dict[str, int]:
    head_dim = size.text_hidden // TEXT_HEADS
    return {**size.text_kwargs, "head_dim": head_dim}


# --- Gemma 3: SigLIP vision tower, pooled soft tokens, Gemma 3 text model ---

_GEMMA3_PATCH = 8
# Soft tokens per image after average pooling. Gemma 3 requires a square
# number: the pooling turns the (size / patch)^2 patch grid into a 2 x 2 grid.
_GEMMA3_TOKENS_PER_IMAGE = 4


def _gemma3_processor(tokenizer: PreTrainedTokenizerFast, size: _TinySize) -> ProcessorMixin:
    image_processor = Gemma3ImageProcessorPil(size=_square(size.image_size))
    return Gemma3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        chat_template=tokenizer.chat_template,
        image_seq_length=_GEMMA3_TOKENS_PER_IMAGE,
    )


def _gemma3_config(tokenizer: PreTrainedTokenizerFast, size: _TinySize) -> PretrainedConfig:
    head_dim = size.text_hidden // TEXT_HEADS
    text = Gemma3TextConfig(
        vocab_size=len(tokenizer),
        **_gemma_text_kwargs(size),
        query_pre_attn_scalar=head_dim,
        sliding_window=64,
        **_special_ids(tokenizer),
    )
    return Gemma3Config(
        text_config=text,
        vision_config=_siglip_vision(size.image_size, _GEMMA3_PATCH),
        mm_tokens_per_image=_GEMMA3_TOKENS_PER_IMAGE,
        boi_token_index=tokenizer.boi_token_id,
        eoi_token_index=tokenizer.eoi_token_id,
        image_token_index=tokenizer.image_token_id,
    )


def _gemma3_after_init(model: PreTrainedModel) -> None:
    # The projector matrix is initialised to zeros, so image features would
    # have no effect on the logits and the vision tower no gradient.
    weight = model.model.multi_modal_projector.mm_input_projection_weight
    with torch.no_grad():
        nn.init.normal_(weight, std=model.config.initializer_range)


_GEMMA_TURNS = {
    "user": ("<start_of_turn>user\n", "<end_of_turn>"),
    "assistant": ("<start_of_turn>model\n", "<end_of_turn>"),
}

_GEMMA3 = _FamilyRecipe(
    tokens={
        "bos_token": "<bos>",
        "eos_token": "<eos>",
        "pad_token": "<pad>",
        "boi_token": "<start_of_image>",
        "eoi_token": "<end_of_image>",
        "image_token": "<image_soft_token>",
    },
    # The processor expands each <start_of_image> into the soft-token block.
    chat_template=_chat_template(
        _GEMMA_TURNS,
        separator="\n",
        image="<start_of_image>",
        generation_prompt="<start_of_turn>model\n",
        bos="<bos>",
    ),
    make_processor=_gemma3_processor,
    make_config=_gemma3_config,
    end_of_turn_tokens=("<end_of_turn>",),
    after_init=_gemma3_after_init,
)


# --- PaliGemma: SigLIP vision tower, linear projector, Gemma text model -----

_PALIGEMMA_PATCH = 8


def _paligemma_processor(tokenizer: PreTrainedTokenizerFast, size: _TinySize) -> ProcessorMixin:
    image_processor = SiglipImageProcessorPil(size=_square(size.image_size))
    # PaliGemmaProcessor reads the number of <image> tokens per image from here.
    image_processor.image_seq_length = (size.image_size // _PALIGEMMA_PATCH) ** 2
    return PaliGemmaProcessor(image_processor=image_processor, tokenizer=tokenizer)


def _paligemma_config(tokenizer: PreTrainedTokenizerFast, size: _TinySize) -> PretrainedConfig:
    text = GemmaConfig(vocab_size=len(tokenizer), **_gemma_text_kwargs(size), **_special_ids(tokenizer))
    return PaliGemmaConfig(
        text_config=text,
        vision_config=_siglip_vision(size.image_size, _PALIGEMMA_PATCH),
        image_token_index=tokenizer.image_token_id,
        vocab_size=len(tokenizer),
        projection_dim=size.text_hidden,
        hidden_size=size.text_hidden,
    )


_PALIGEMMA = _FamilyRecipe(
    tokens={"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "image_token": "<image>"},
    # PaliGemma has no chat template: the processor writes "<image>...<bos>prompt\n"
    # and appends the target given as `suffix=` followed by eos.
    chat_template=None,
    make_processor=_paligemma_processor,
    make_config=_paligemma_config,
)
