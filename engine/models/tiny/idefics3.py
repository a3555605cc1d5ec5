"""Idefics3: SigLIP-like vision model, pixel-shuffle connector, Llama."""

from __future__ import annotations

from transformers import (
    Idefics3Config,
    Idefics3ImageProcessorPil,
    Idefics3Processor,
    Idefics3VisionConfig,
    LlamaConfig,
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
    _TinySize,
)


_IDEFICS3_PATCH = 8
_IDEFICS3_SCALE_FACTOR = 2


def _idefics3_image_seq_len(size: _TinySize) -> int:
    # The connector's pixel shuffle folds scale_factor^2 patches into one token.
    return (size.image_size // _IDEFICS3_PATCH) ** 2 // _IDEFICS3_SCALE_FACTOR**2


def _idefics3_processor(tokenizer: PreTrainedTokenizerFast, size: _TinySize) -> ProcessorMixin:
    # Without image splitting every image is resized to one square tile, so
    # the processor needs none of the <row_i_col_j> tile tokens.
    image_processor = Idefics3ImageProcessorPil(
        size={"longest_edge": size.image_size},
        max_image_size={"longest_edge": size.image_size},
        do_image_splitting=False,
    )
    return Idefics3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        image_seq_len=_idefics3_image_seq_len(size),
        chat_template=tokenizer.chat_template,
    )


def _idefics3_config(tokenizer: PreTrainedTokenizerFast, size: _TinySize) -> PretrainedConfig:
    vision = Idefics3VisionConfig(
        hidden_size=VISION_HIDDEN,
        intermediate_size=2 * VISION_HIDDEN,
        num_hidden_layers=VISION_LAYERS,
        num_attention_heads=VISION_HEADS,
        image_size=size.image_size,
        patch_size=_IDEFICS3_PATCH,
    )
    text = LlamaConfig(vocab_size=len(tokenizer), **size.text_kwargs, **_special_ids(tokenizer))
    return Idefics3Config(
        vision_config=vision,
        text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        scale_factor=_IDEFICS3_SCALE_FACTOR,
        **_special_ids(tokenizer),
    )


_IDEFICS3 = _FamilyRecipe(
    tokens={
        "bos_token": "<|begin_of_text|>",
        "eos_token": "<end_of_utterance>",
        "pad_token": "<pad>",
        "image_token": "<image>",
    },
    # The processor expands each <image> into
    # <fake_token_around_image><global-img><image>...<fake_token_around_image>.
    # As with LLaVA, the reply starts one space after the generation prompt.
    chat_template=_chat_template(
        {
            "system": ("System: ", "<end_of_utterance>"),
            "user": ("User:", "<end_of_utterance>"),
            "assistant": ("Assistant: ", "<end_of_utterance>"),
        },
        separator="\n",
        image="<image>",
        generation_prompt="Assistant:",
        bos="<|begin_of_text|>",
    ),
    make_processor=_idefics3_processor,
    make_config=_idefics3_config,
)
