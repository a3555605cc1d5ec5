"""The models offered on the Tune tab and whether each is on this machine; never contacts the hub."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path


logger = logging.getLogger(__name__)

DEMO_CHOICE = "demo"
LOCAL_FOLDER_CHOICE = "local-folder"
# Above this many parameters a CPU-only run is warned about before it starts.
CPU_WARNING_BILLION_PARAMETERS = 1.0


@dataclass(frozen=True)
class CatalogModel:
    repo_id: str
    title: str
    billion_parameters: float
    """Approximate size from the model card, for memory and speed warnings."""


CURATED_MODELS = (
    CatalogModel("meta-llama/Llama-3.2-11B-Vision-Instruct", "Llama 3.2 11B Vision Instruct", 10.7),
    CatalogModel("Qwen/Qwen2.5-VL-3B-Instruct", "Qwen2.5-VL 3B Instruct", 3.8),
    CatalogModel("Qwen/Qwen2.5-VL-7B-Instruct", "Qwen2.5-VL 7B Instruct", 8.3),
    CatalogModel("HuggingFaceTB/SmolVLM-Instruct", "SmolVLM Instruct (2B)", 2.2),
    CatalogModel("google/medgemma-4b-it", "MedGemma 4B it", 4.3),
)


def is_cached(repo_id: str) -> bool:
    """Return True if the model's config.json is in the local Hugging Face cache.

    NOTE: only config.json is checked, so a partly downloaded model counts as
    available; loading it then fails with the engine's "not available" message.
    """
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "config.json")
    except (OSError, ValueError) as error:
        logger.warning("Could not check the Hugging Face cache for %s: %s", repo_id, error)
        return False
    return isinstance(found, str)


def model_choices() -> list[tuple[str, str]]:
    """Return (label, value) pairs for the model picker, marking which models are available offline."""
    choices = [("Demo model: tiny and random, runs offline, answers are meaningless", DEMO_CHOICE)]
    for model in CURATED_MODELS:
        where = "available locally" if is_cached(model.repo_id) else "not downloaded (needs the hub)"
        choices.append((f"{model.title}: {where}", model.repo_id))
    choices.append(("A model folder on this machine…", LOCAL_FOLDER_CHOICE))
    return choices


def download_problem(model_name: str, allow_downloads: bool) -> str:
    """Return why a curated hub model cannot be loaded offline, or an empty string when it can.

    Only curated models are checked: the engine reports any other missing model when the run starts.
    """
    if allow_downloads or model_name not in {model.repo_id for model in CURATED_MODELS} or is_cached(model_name):
        return ""
    return (
        f"{model_name} is not downloaded, and this app does not download models. Download it first with "
        f"`hf download {model_name}` on a machine with internet access (then copy the Hugging Face cache here), "
        "or restart the app with --allow-downloads."
    )


def resolve_model_name(choice: str, local_folder: str) -> str:
    """Return the engine's model name for the picker value; raises ValueError for a bad local folder."""
    if choice != LOCAL_FOLDER_CHOICE:
        return choice
    folder = Path((local_folder or "").strip()).expanduser()
    if not str(local_folder or "").strip():
        raise ValueError("Missing model folder: type the path of a folder that contains config.json.")
    if not (folder / "config.json").is_file():
        raise ValueError(f"Model folder {folder} has no config.json. Give the folder of a saved Hugging Face model.")
    return str(folder)


def folder_billion_parameters(folder: Path) -> float | None:
    """Estimate parameters from the safetensors size, assuming 2 bytes per parameter (bf16/fp16 checkpoints)."""
    files = list(folder.glob("*.safetensors"))
    if not files:
        return None
    return sum(f.stat().st_size for f in files) / 2 / 1e9


def size_warning(model_name: str, has_gpu: bool) -> str:
    """Return a warning for a large model on CPU or for the demo model, else an empty string."""
    if model_name == DEMO_CHOICE:
        return (
            "The demo model is a tiny randomly initialised LLaVA. It shows that the pipeline works end to end, "
            "but its answers and accuracy are meaningless."
        )
    curated = {model.repo_id: model.billion_parameters for model in CURATED_MODELS}
    billions = curated.get(model_name)
    if billions is None and Path(model_name).is_dir():
        billions = folder_billion_parameters(Path(model_name))
    if has_gpu or billions is None or billions < CPU_WARNING_BILLION_PARAMETERS:
        return ""
    memory_gb = billions * 4 * 1.3
    return (
        f"No GPU found: this model has about {billions:.1f} billion parameters, so tuning on the CPU needs "
        f"roughly {memory_gb:.0f} GB of memory in fp32 and may take hours per epoch. "
        "Try the demo model first, or run the app on a machine with a GPU."
    )
