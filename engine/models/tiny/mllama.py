"""Mllama: tiled ViT with a gated global encoder, cross-attention layers."""

from __future__ import annotations

import re

import torch
from transformers import (
    MllamaConfig,
    MllamaImageProcessorPil,
    MllamaProcessor,
    MllamaTextConfig,
    MllamaVisionConfig,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    ProcessorMixin,
)

from engine.models.tiny.recipe import (
    VISION_HEADS,
    VISION_HIDDEN,
    VISION_LAYERS,
    _chat_template,
    _FamilyRecipe,
    _special_ids,
    _square,
    _TinySize,
)


_MLLAMA_PATCH = 8
_MLLAMA_INTERMEDIATE_LAYERS = [VISION_LAYERS - 1]
# One tile per image; the model's max_num_tiles must equal the processor's
# max_image_tiles, and one tile supports only the 1:1 aspect ratio.
_MLLAMA_TILES = 1
_MLLAMA_GATE = re.compile(r"(^|\.)(cross_attn_attn_gate|cross_attn_mlp_gate|gate_attn|gate_ffn|gate)$")


def _mllama_processor(tokenizer: PreTrainedTokenizerFast, size: _TinySize) -> ProcessorMixin:
    image_processor = MllamaImageProcessorPil(size=_square(size.image_size), max_image_tiles=_MLLAMA_TILES)
    return MllamaProcessor(image_processor=image_processor, tokenizer=tokenizer, chat_template=tokenizer.chat_template)


def _mllama_config(tokenizer: PreTrainedTokenizerFast, size: _TinySize) -> PretrainedConfig:
    vision = MllamaVisionConfig(
        hidden_size=VISION_HIDDEN,
        intermediate_size=2 * VISION_HIDDEN,
        num_hidden_layers=VISION_LAYERS,
        num_global_layers=1,
        attention_heads=VISION_HEADS,
        image_size=size.image_size,
        patch_size=_MLLAMA_PATCH,
        max_num_tiles=_MLLAMA_TILES,
        supported_aspect_ratios=[[1, 1]],
        intermediate_layers_indices=_MLLAMA_INTERMEDIATE_LAYERS,
        # The projector input concatenates the final and the intermediate hidden states.
        vision_output_dim=VISION_HIDDEN * (1 + len(_MLLAMA_INTERMEDIATE_LAYERS)),
    )
    # A cross-attention layer is inserted after the first self-attention
    # layer, so the text model has num_layers + 1 decoder layers.
    text_kwargs = {**size.text_kwargs, "num_hidden_layers": size.num_layers + 1}
    text = MllamaTextConfig(
        vocab_size=len(tokenizer), **text_kwargs, cross_attention_layers=[1], **_special_ids(tokenizer)
    )
    return MllamaConfig(vision_config=vision, text_config=text, image_token_index=tokenizer.image_token_id)


def _mllama_after_init(model: PreTrainedModel) -> None:
    # Mllama initialises its tanh gates to zero: the cross-attention gates
    # would hide the image from the text model (and give the vision tower no
    # gradient), and the vision gates would bypass the global encoder layers.
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if _MLLAMA_GATE.search(name):
                parameter.fill_(0.5)


_MLLAMA = _FamilyRecipe(
    tokens={
        "bos_token": "<|begin_of_text|>",
        "eos_token": "<|eot_id|>",
        "pad_token": "<|finetune_right_pad_id|>",
        "image_token": "<|image|>",
    },
    chat_template=_chat_template(
        {
            "system": ("<|start_header_id|>system<|end_header_id|>\n\n", "<|eot_id|>"),
            "user": ("<|start_header_id|>user<|end_header_id|>\n\n", "<|eot_id|>"),
            "assistant": ("<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>"),
        },
        separator="",
        image="<|image|>",
        generation_prompt="<|start_header_id|>assistant<|end_header_id|>\n\n",
        bos="<|begin_of_text|>",
    ),
    make_processor=_mllama_processor,
    make_config=_mllama_config,
    end_of_turn_tokens=("<|end_of_text|>",),
    after_init=_mllama_after_init,
)
