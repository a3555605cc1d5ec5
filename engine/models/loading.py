"""Load a supported VLM and its processor from the hub, a local folder, or the demo."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor, PreTrainedModel

from engine.models.families import Family, family_for_config


logger = logging.getLogger(__name__)

DEMO_MODEL_NAME = "demo"


class ModelNotAvailableError(RuntimeError):
    """Raised when a model name is neither a local folder nor reachable on the hub."""


@dataclass
class LoadedModel:
    model: PreTrainedModel
    processor: object
    family: Family
    source: str
    """The folder or hub id the weights came from."""
    is_demo: bool = False

    @property
    def tokenizer(self):
        return getattr(self.processor, "tokenizer", self.processor)


def select_device() -> torch.device:
    """Return CUDA when present, else the CPU."""
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def select_dtype(precision: str, device: torch.device) -> torch.dtype:
    """Resolve `auto` to bf16 on capable GPUs and fp32 elsewhere (CPU included)."""
    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def resolve_model_source(name: str) -> tuple[str, bool]:
    """Return (folder or hub id, is_demo); builds the demo model on first use."""
    if name == DEMO_MODEL_NAME:
        from engine.models.demo import ensure_demo_model

        return str(ensure_demo_model()), True
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser()), False
    if Path(name).expanduser().exists():
        raise ModelNotAvailableError(f"Model path {name} is a file; pass the folder that contains config.json.")
    return name, False


def load_config(name: str, allow_download: bool = False):
    """Load only the model config (fast), with an actionable error when unavailable."""
    source, _ = resolve_model_source(name)
    try:
        return AutoConfig.from_pretrained(source, local_files_only=not allow_download)
    except (OSError, ValueError) as error:
        raise _not_available(name, error, allow_download) from error


def load_model(
    name: str, device: torch.device | None = None, precision: str = "auto", allow_download: bool = False
) -> LoadedModel:
    """Load model and processor with the Auto classes, placing the model on `device`.

    The architecture is checked against the supported families from the
    config before any weight is read. Unless `allow_download` is set, only
    local folders and the local Hugging Face cache are read, so nothing is
    requested from the hub.
    """
    source, is_demo = resolve_model_source(name)
    device = device or select_device()
    dtype = select_dtype(precision, device)
    local_only = not allow_download
    try:
        config = AutoConfig.from_pretrained(source, local_files_only=local_only)
        family = family_for_config(config)
        processor = AutoProcessor.from_pretrained(source, local_files_only=local_only)
        model = AutoModelForImageTextToText.from_pretrained(source, dtype=dtype, local_files_only=local_only)
    except (OSError, ValueError) as error:
        if isinstance(error, ValueError) and "not supported" in str(error):
            raise
        raise _not_available(name, error, allow_download) from error

    tokenizer = getattr(processor, "tokenizer", processor)
    # The padding side is saved into tokenizer.json; never inherit it.
    tokenizer.padding_side = "right"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token

    model.to(device)
    if is_demo:
        logger.warning(
            "Using the demo model: a tiny randomly initialised %s whose answers are meaningless. "
            "It exists so the whole pipeline runs without downloads.",
            family.name,
        )
    logger.info("Loaded %s (%s) on %s in %s", source, family.name, device, dtype)
    return LoadedModel(model=model, processor=processor, family=family, source=source, is_demo=is_demo)


def _not_available(name: str, error: Exception, allow_download: bool) -> ModelNotAvailableError:
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
    if not allow_download:
        reason = "downloads are off (allow them with --allow-download)"
    elif offline:
        reason = "HF_HUB_OFFLINE is set"
    else:
        reason = "the hub could not be reached or the id is wrong"
    return ModelNotAvailableError(
        f"Could not load model {name!r}: it is not a local folder and not in the local Hugging Face cache, "
        f"and {reason}. Pass a local folder that contains config.json, download the model once on a connected "
        f"machine (`hf download {name}`) and copy the cache, or use the demo model. "
        f"Cause: {type(error).__name__}: {error}"
    )
