"""The special tokens of every family, the built-in corpus and BPE tokenizer training."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast


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
