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

from engine.models.tiny.build import TINY_FAMILIES, build_tiny_vlm
from engine.models.tiny.corpus import SPECIAL_TOKENS, default_corpus, train_tokenizer


__all__ = ["SPECIAL_TOKENS", "TINY_FAMILIES", "build_tiny_vlm", "default_corpus", "train_tokenizer"]
