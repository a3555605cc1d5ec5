"""Qwen2-VL, Qwen2.5-VL, Qwen3-VL: native-resolution ViT, patch merger."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from transformers import (
    PretrainedConfig,
    PreTrainedTokenizerFast,
    ProcessorMixin,
    Qwen2_5_VLConfig,
    Qwen2_5_VLProcessor,
    Qwen2_5_VLTextConfig,
    Qwen2_5_VLVisionConfig,
    Qwen2VLConfig,
    Qwen2VLImageProcessorPil,
    Qwen2VLProcessor,
    Qwen2VLTextConfig,
    Qwen2VLVideoProcessor,
    Qwen2VLVisionConfig,
    Qwen3VLConfig,
    Qwen3VLProcessor,
    Qwen3VLTextConfig,
    Qwen3VLVideoProcessor,
    Qwen3VLVisionConfig,
)

from engine.models.tiny.recipe import (
    TEXT_HEADS,
    VISION_HEADS,
    VISION_HIDDEN,
    VISION_LAYERS,
    _chat_template,
    _FamilyRecipe,
    _special_ids,
    _TinySize,
)


_QWEN_PATCH = 8
_QWEN_MERGE = 2
_QWEN_TEMPORAL_PATCH = 2


def _qwen_rope(size: _TinySize, **extra: object) -> dict[str, object]:
    # M-RoPE splits each head's rotary frequencies into temporal, height and
    # width sections, which must add up to head_dim / 2.
    # The split follows Qwen2-VL's [16, 24, 24] for half = 64.
    half = size.text_hidden // TEXT_HEADS // 2
    spatial = 3 * half // 8
    sections = [half - 2 * spatial, spatial, spatial]
    return {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": sections, **extra}


def _qwen_processor(
    processor_class: type[ProcessorMixin],
    video_processor_class: type,
    tokenizer: PreTrainedTokenizerFast,
    size: _TinySize,
) -> ProcessorMixin:
    # Images keep their aspect ratio: each side is rounded to a multiple of
    # patch * merge pixels with an area between image_size^2 / 4 and
    # image_size^2, so the number of image tokens varies per image.
    resize = {
        "patch_size": _QWEN_PATCH,
        "merge_size": _QWEN_MERGE,
        "temporal_patch_size": _QWEN_TEMPORAL_PATCH,
        "size": {"shortest_edge": (size.image_size // 2) ** 2, "longest_edge": size.image_size**2},
    }
    return processor_class(
        image_processor=Qwen2VLImageProcessorPil(**resize),
        video_processor=video_processor_class(**resize),
        tokenizer=tokenizer,
        chat_template=tokenizer.chat_template,
    )


def _qwen_token_ids(tokenizer: PreTrainedTokenizerFast) -> dict[str, int]:
    return {
        "image_token_id": tokenizer.image_token_id,
        "video_token_id": tokenizer.video_token_id,
        "vision_start_token_id": tokenizer.vision_start_token_id,
        "vision_end_token_id": tokenizer.vision_end_token_id,
    }


def _qwen2_vl_config(tokenizer: PreTrainedTokenizerFast, size: _TinySize) -> PretrainedConfig:
    vision = Qwen2VLVisionConfig(
        depth=VISION_LAYERS,
        embed_dim=VISION_HIDDEN,
        hidden_size=size.text_hidden,
        mlp_ratio=2,
        num_heads=VISION_HEADS,
        patch_size=_QWEN_PATCH,
        spatial_merge_size=_QWEN_MERGE,
        temporal_patch_size=_QWEN_TEMPORAL_PATCH,
    )
    text = Qwen2VLTextConfig(
        vocab_size=len(tokenizer), **size.text_kwargs, rope_parameters=_qwen_rope(size), **_special_ids(tokenizer)
    )
    return Qwen2VLConfig(vision_config=vision, text_config=text, **_qwen_token_ids(tokenizer))


def _qwen2_5_vl_config(tokenizer: PreTrainedTokenizerFast, size: _TinySize) -> PretrainedConfig:
    # Window attention covers window_size pixels per side; the last block
    # attends to the full image as in the released models.
    vision = Qwen2_5_VLVisionConfig(
        depth=VISION_LAYERS,
        hidden_size=VISION_HIDDEN,
        intermediate_size=2 * VISION_HIDDEN,
        num_heads=VISION_HEADS,
        patch_size=_QWEN_PATCH,
        spatial_merge_size=_QWEN_MERGE,
        temporal_patch_size=_QWEN_TEMPORAL_PATCH,
        window_size=2 * _QWEN_PATCH * _QWEN_MERGE,
        out_hidden_size=size.text_hidden,
        fullatt_block_indexes=[VISION_LAYERS - 1],
    )
    text = Qwen2_5_VLTextConfig(
        vocab_size=len(tokenizer), **size.text_kwargs, rope_parameters=_qwen_rope(size), **_special_ids(tokenizer)
    )
    return Qwen2_5_VLConfig(vision_config=vision, text_config=text, **_qwen_token_ids(tokenizer))


def _qwen3_vl_config(tokenizer: PreTrainedTokenizerFast, size: _TinySize) -> PretrainedConfig:
    # Learned position embeddings form a square grid that is interpolated to
    # each image's patch grid. DeepStack feeds the first vision layer's
    # features into the first text layer.
    vision = Qwen3VLVisionConfig(
        depth=VISION_LAYERS,
        hidden_size=VISION_HIDDEN,
        intermediate_size=2 * VISION_HIDDEN,
        num_heads=VISION_HEADS,
        patch_size=_QWEN_PATCH,
        spatial_merge_size=_QWEN_MERGE,
        temporal_patch_size=_QWEN_TEMPORAL_PATCH,
        out_hidden_size=size.text_hidden,
        num_position_embeddings=(size.image_size // _QWEN_PATCH) ** 2,
        deepstack_visual_indexes=[0],
    )
    text = Qwen3VLTextConfig(
        vocab_size=len(tokenizer),
        **size.text_kwargs,
        head_dim=size.text_hidden // TEXT_HEADS,
        rope_parameters=_qwen_rope(size, mrope_interleaved=True),
        **_special_ids(tokenizer),
    )
    return Qwen3VLConfig(vision_config=vision, text_config=text, **_qwen_token_ids(tokenizer))


_QWEN_TOKENS = {
    "eos_token": "<|im_end|>",
    "pad_token": "<|endoftext|>",
    "image_token": "<|image_pad|>",
    "video_token": "<|video_pad|>",
    "vision_start_token": "<|vision_start|>",
    "vision_end_token": "<|vision_end|>",
}
_QWEN_TURNS = {
    "system": ("<|im_start|>system\n", "<|im_end|>"),
    "user": ("<|im_start|>user\n", "<|im_end|>"),
    "assistant": ("<|im_start|>assistant\n", "<|im_end|>"),
}
# The processor expands each <|image_pad|> into one token per merged patch.
_QWEN_IMAGE = "<|vision_start|><|image_pad|><|vision_end|>"


def _qwen_recipe(
    processor_class: type[ProcessorMixin],
    video_processor_class: type,
    make_config: Callable[[PreTrainedTokenizerFast, _TinySize], PretrainedConfig],
    default_system: str | None,
) -> _FamilyRecipe:
    return _FamilyRecipe(
        tokens=_QWEN_TOKENS,
        chat_template=_chat_template(
            _QWEN_TURNS,
            separator="\n",
            image=_QWEN_IMAGE,
            generation_prompt="<|im_start|>assistant\n",
            default_system=default_system,
        ),
        make_processor=partial(_qwen_processor, processor_class, video_processor_class),
        make_config=make_config,
        end_of_turn_tokens=("<|endoftext|>",),
    )


# Qwen2-VL and Qwen2.5-VL add this system turn when the chat has none.
_QWEN2_SYSTEM = "You are a helpful assistant."
_QWEN2_VL = _qwen_recipe(Qwen2VLProcessor, Qwen2VLVideoProcessor, _qwen2_vl_config, _QWEN2_SYSTEM)
_QWEN2_5_VL = _qwen_recipe(Qwen2_5_VLProcessor, Qwen2VLVideoProcessor, _qwen2_5_vl_config, _QWEN2_SYSTEM)
_QWEN3_VL = _qwen_recipe(Qwen3VLProcessor, Qwen3VLVideoProcessor, _qwen3_vl_config, None)
