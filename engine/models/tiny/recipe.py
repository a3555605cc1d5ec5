"""Sizes, the family recipe type, chat template rendering and helpers shared by the families."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerFast, ProcessorMixin


TEXT_HEADS = 4
VISION_HIDDEN = 32
VISION_LAYERS = 2
VISION_HEADS = 4
DEFAULT_IMAGE_SIZE = 32
# Every family's patch grid must split evenly into 2 x 2 blocks (Qwen's patch
# merger, Idefics3's pixel shuffle, Gemma 3's pooling) of 8 px patches.
IMAGE_SIZE_MULTIPLE = 16


def _chat_template(
    turns: dict[str, tuple[str, str]],
    *,
    separator: str,
    image: str,
    generation_prompt: str,
    bos: str = "",
    default_system: str | None = None,
) -> str:
    """Build a Jinja chat template for messages whose content is a list of typed items.

    `turns` maps each role to the header before and the end-of-turn text after
    its content. Messages are joined by `separator`, an image item renders as
    `image`, and `add_generation_prompt` appends `separator +
    generation_prompt`. Because `generation_prompt` is a prefix of the
    assistant header, rendering [user] with the generation prompt is an exact
    prefix of rendering [user, assistant]. Fixed strings are written as JSON
    string literals because the processor compiles templates with
    `trim_blocks`, which would drop a newline written right after a tag.
    The text starts with `bos`, and with a system turn holding
    `default_system` when that is set and the first message is not a system
    message (as Qwen2-VL's template does).
    """
    assistant_header = turns["assistant"][0]
    if not assistant_header.startswith(generation_prompt):
        raise ValueError(
            f"Generation prompt {generation_prompt!r} must be a prefix of the assistant header {assistant_header!r}."
        )

    def emit(text: str) -> str:
        return "{{ " + json.dumps(text) + " }}" if text else ""

    def content() -> str:
        return (
            "{% if message['content'] is string %}{{ message['content'] }}"
            "{% else %}{% for item in message['content'] %}"
            "{% if item['type'] == 'image' %}" + emit(image) + ""
            "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
            "{% endfor %}{% endif %}"
        )

    branches = []
    for index, (role, (header, end_of_turn)) in enumerate(turns.items()):
        keyword = "if" if index == 0 else "elif"
        branches.append(
            f"{{% {keyword} message['role'] == {json.dumps(role)} %}}" + emit(header) + content() + emit(end_of_turn)
        )

    parts = [emit(bos)]
    if default_system is not None:
        header, end_of_turn = turns["system"]
        parts += [
            "{% if not messages or messages[0]['role'] != 'system' %}",
            emit(header + default_system + end_of_turn + separator),
            "{% endif %}",
        ]
    parts += [
        "{% for message in messages %}",
        "{% if not loop.first %}" + emit(separator) + "{% endif %}",
        *branches,
        "{% else %}{{ raise_exception('Unsupported role: ' + message['role']) }}{% endif %}",
        "{% endfor %}",
        "{% if add_generation_prompt %}" + emit(separator + generation_prompt) + "{% endif %}",
    ]
    return "".join(parts)


@dataclass(frozen=True)
class _TinySize:
    """Sizes that the caller of `build_tiny_vlm` chooses."""

    text_hidden: int
    num_layers: int
    image_size: int

    @property
    def text_kwargs(self) -> dict[str, int]:
        """Keyword arguments shared by the decoder-only text configs."""
        return {
            "hidden_size": self.text_hidden,
            "intermediate_size": 2 * self.text_hidden,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": TEXT_HEADS,
            "num_key_value_heads": TEXT_HEADS,
            "max_position_embeddings": 1024,
        }


@dataclass(frozen=True)
class _FamilyRecipe:
    """How to build one family: its tokens, chat template, processor and config.

    `tokens` maps the tokenizer's special-token attributes (`bos_token`,
    `eos_token`, `pad_token` and family names such as `image_token`) to tokens.
    `make_processor(tokenizer, size)` returns the processor and
    `make_config(tokenizer, size)` the model config, with the vocabulary size
    taken from the tokenizer after the processor has added its tokens.
    `end_of_turn_tokens` are extra tokens that stop generation besides eos.
    `after_init` adjusts a freshly initialised model in place.
    """

    tokens: dict[str, str]
    chat_template: str | None
    make_processor: Callable[[PreTrainedTokenizerFast, _TinySize], ProcessorMixin]
    make_config: Callable[[PreTrainedTokenizerFast, _TinySize], PretrainedConfig]
    end_of_turn_tokens: tuple[str, ...] = ()
    after_init: Callable[[PreTrainedModel], None] | None = None


def _square(size: int) -> dict[str, int]:
    return {"height": size, "width": size}


def _special_ids(tokenizer: PreTrainedTokenizerFast) -> dict[str, int]:
    return {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
