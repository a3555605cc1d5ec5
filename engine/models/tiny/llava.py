"""LLaVA: CLIP vision tower, Llama text model."""

from __future__ import annotations

from transformers import (
    CLIPImageProcessorPil,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaProcessor,
    PretrainedConfig,
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


_LLAVA_PATCH = 8


def _llava_processor(tokenizer: PreTrainedTokenizerFast, size: _TinySize) -> ProcessorMixin:
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": size.image_size}, crop_size=_square(size.image_size))
    # The CLIP tower prepends a CLS embedding, which the "default" feature
    # selection strategy drops again, so each image takes (size / patch)^2 tokens.
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=_LLAVA_PATCH,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=tokenizer.chat_template,
    )


def _llava_config(tokenizer: PreTrainedTokenizerFast, size: _TinySize) -> PretrainedConfig:
    vision = CLIPVisionConfig(
        hidden_size=VISION_HIDDEN,
        intermediate_size=2 * VISION_HIDDEN,
        num_hidden_layers=VISION_LAYERS,
        num_attention_heads=VISION_HEADS,
        image_size=size.image_size,
        patch_size=_LLAVA_PATCH,
        projection_dim=VISION_HIDDEN,
    )
    text = LlamaConfig(vocab_size=len(tokenizer), **size.text_kwargs, **_special_ids(tokenizer))
    # LLaVA-1.5 reads the penultimate vision layer (-2). With only two layers
    # the last one would then get no gradient, so the tiny model reads the last.
    return LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        image_seq_length=(size.image_size // _LLAVA_PATCH) ** 2,
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )


_LLAVA = _FamilyRecipe(
    tokens={"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "image_token": "<image>"},
    # LLaVA-1.5 style: "USER: <image>\n... ASSISTANT: ...</s>".
    # NOTE: the reply starts one space after the generation prompt
    # "ASSISTANT:", so a collator that appends report tokens right after the
    # prompt trains "ASSISTANT:The" rather than "ASSISTANT: The".
    chat_template=_chat_template(
        {"system": ("", ""), "user": ("USER: ", ""), "assistant": ("ASSISTANT: ", "</s>")},
        separator=" ",
        image="<image>\n",
        generation_prompt="ASSISTANT:",
        bos="<s>",
    ),
    make_processor=_llava_processor,
    make_config=_llava_config,
)
