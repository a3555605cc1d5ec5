"""Tiny randomly initialised vision-language models for tests and offline demos.

No model hub is reachable, so every supported family is built here from
config objects. By default the text model has hidden size 64, 2 layers and 4
heads, the vision encoder hidden size 32 and 2 layers, and images are 32 px.
The tokenizer is a byte-level BPE trained locally on a small corpus. Each
model and its processor are saved with `save_pretrained`, so
`AutoModelForImageTextToText` and `AutoProcessor` load them like any hub
checkpoint.

The chat templates imitate the real ones of each family closely enough for
training code. The image placeholder sits where the family's processor
expects it. Rendering the user turn with `add_generation_prompt=True` gives
an exact prefix of rendering the user and assistant turns. The assistant turn
ends with a token that generation stops on.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from torch import nn
from transformers import (
    AutoModelForImageTextToText,
    CLIPImageProcessorPil,
    CLIPVisionConfig,
    Gemma3Config,
    Gemma3ImageProcessorPil,
    Gemma3Processor,
    Gemma3TextConfig,
    GemmaConfig,
    GenerationConfig,
    Idefics3Config,
    Idefics3ImageProcessorPil,
    Idefics3Processor,
    Idefics3VisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaProcessor,
    MllamaConfig,
    MllamaImageProcessorPil,
    MllamaProcessor,
    MllamaTextConfig,
    MllamaVisionConfig,
    PaliGemmaConfig,
    PaliGemmaProcessor,
    PretrainedConfig,
    PreTrainedModel,
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
    SiglipImageProcessorPil,
    SiglipVisionConfig,
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

TEXT_HEADS = 4
VISION_HIDDEN = 32
VISION_LAYERS = 2
VISION_HEADS = 4
DEFAULT_IMAGE_SIZE = 32
# Every family's patch grid must split evenly into 2 x 2 blocks (Qwen's patch
# merger, Idefics3's pixel shuffle, Gemma 3's pooling) of 8 px patches.
IMAGE_SIZE_MULTIPLE = 16

# Every special token that any family's tokenizer, processor or chat template
# uses. One shared vocabulary keeps `train_tokenizer` independent of the
# family, and each family then names the tokens it uses (bos, eos, image token).
SPECIAL_TOKENS: tuple[str, ...] = (
    # LLaVA (Llama 2 style) and the shared padding token
    "<pad>",
    "<s>",
    "</s>",
    "<unk>",
    "<image>",
    # Qwen2-VL, Qwen2.5-VL, Qwen3-VL
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
    # Gemma 3 and PaliGemma
    "<bos>",
    "<eos>",
    "<start_of_turn>",
    "<end_of_turn>",
    "<start_of_image>",
    "<end_of_image>",
    "<image_soft_token>",
    # Mllama (Llama 3 style). Idefics3 also uses <|begin_of_text|> as bos.
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|finetune_right_pad_id|>",
    "<|python_tag|>",
    "<|image|>",
    # Idefics3
    "<end_of_utterance>",
    "<fake_token_around_image>",
    "<global-img>",
    *(f"<row_{row}_col_{col}>" for row in range(1, 7) for col in range(1, 7)),
)

_FINDINGS = (
    "The lungs are clear.",
    "There is no pleural effusion or pneumothorax.",
    "The cardiomediastinal silhouette is within normal limits.",
    "Heart size is mildly enlarged.",
    "There is a small left pleural effusion.",
    "Patchy opacity in the right lower lobe may represent pneumonia.",
    "No focal consolidation is seen.",
    "Degenerative changes of the thoracic spine are noted.",
    "A nodule measuring 8 mm is seen in the left upper lobe.",
    "The endotracheal tube terminates 4 cm above the carina.",
    "There is mild pulmonary vascular congestion.",
    "No acute fracture or dislocation is identified.",
    "The liver is normal in size and echotexture.",
    "There is a 2 cm hypodense lesion in the right kidney, likely a simple cyst.",
    "The gallbladder contains several small stones without wall thickening.",
    "No free fluid is seen in the abdomen.",
    "There is an acute infarct in the left middle cerebral artery territory.",
    "The ventricles and sulci are normal for age.",
    "No intracranial hemorrhage or mass effect is present.",
    "Mild atelectasis is present at both lung bases.",
)
_IMPRESSIONS = (
    "Impression: no acute cardiopulmonary process.",
    "Impression: findings compatible with right lower lobe pneumonia.",
    "Impression: small left pleural effusion, otherwise stable.",
    "Impression: cardiomegaly with mild interstitial edema.",
    "Impression: stable examination compared with the prior study.",
    "Impression: follow-up CT is recommended in 3 months.",
)
_QUESTIONS = (
    "Describe the findings in this image.",
    "Write the radiology report for this study.",
    "Is there a pleural effusion?",
    "What is the most likely diagnosis?",
    "Which organ is shown?",
    "Is the heart enlarged?",
    "Summarize the impression in one sentence.",
    "What imaging modality was used?",
)
_ANSWERS = (
    "Yes.",
    "No.",
    "A chest radiograph, frontal view.",
    "An axial CT slice of the abdomen.",
    "An MRI of the brain, diffusion-weighted.",
    "The most likely diagnosis is pneumonia.",
    "The heart size is normal.",
    "There is no acute abnormality.",
)


def default_corpus() -> list[str]:
    """Return the built-in tokenizer corpus of report-like and question/answer lines.

    The lines are combinations of a few dozen fixed sentences, so the list is
    the same on every call (several hundred lines).
    """
    reports = [
        f"Findings: {first} {second} {impression}"
        for (first, second), impression in zip(itertools.permutations(_FINDINGS, 2), itertools.cycle(_IMPRESSIONS))
    ]
    dialogues = [
        f"Question: {question} Answer: {answer}" for question, answer in itertools.product(_QUESTIONS, _ANSWERS)
    ]
    return reports + dialogues + list(_FINDINGS) + list(_IMPRESSIONS)


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1024) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer that contains every family's special tokens.

    The returned tokenizer is generic: `<pad>` is its pad token, padding is on
    the right and it adds no special tokens when encoding. `build_tiny_vlm`
    derives each family's tokenizer from it by naming bos, eos and the image
    tokens. `vocab_size` counts the special tokens and the 256 byte symbols,
    and the corpus may be too small to reach it.
    """
    minimum = len(SPECIAL_TOKENS) + 256
    if vocab_size < minimum:
        raise ValueError(
            f"vocab_size={vocab_size} is too small: the byte alphabet and the special tokens "
            f"alone need {minimum}. Pass vocab_size >= {minimum}."
        )
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(dict.fromkeys(SPECIAL_TOKENS)),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>", padding_side="right")


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


# --- LLaVA: CLIP vision tower, Llama text model -----------------------------

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


# --- Idefics3: SigLIP-like vision model, pixel-shuffle connector, Llama -----

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


# --- Qwen2-VL, Qwen2.5-VL, Qwen3-VL: native-resolution ViT, patch merger ----

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


# --- Mllama: tiled ViT with a gated global encoder, cross-attention layers --

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

# --- Building and saving -----------------------------------------------------

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


def _special_ids(tokenizer: PreTrainedTokenizerFast) -> dict[str, int]:
    return {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
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
