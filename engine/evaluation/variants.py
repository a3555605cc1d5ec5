"""The base and the tuned model of a run, with one copy of the weights in memory.

A LoRA run loads the base model once, wraps it with the saved adapter, and
runs the base model inside `PeftModel.disable_adapter()`. A `full` run keeps
one model and swaps the saved weights of the trained module groups in and
out: only the replaced tensors are copied to CPU memory, to swap back. The
proxy instruction is a training-time device only and is never loaded here.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from safetensors import safe_open

from engine.config import RunConfig
from engine.models.loading import LoadedModel, load_model
from engine.runs.folder import RunFolder


logger = logging.getLogger(__name__)

Variant = Literal["base", "tuned"]
VARIANTS: tuple[Variant, ...] = ("base", "tuned")


@dataclass(frozen=True)
class RunInfo:
    """The trained module groups and base model of a run, read from `artifacts/run_info.json`."""

    base_model: str
    base_model_source: str
    family: str
    mode: str
    trainable: list[str] = field(default_factory=list)
    instruction: str = "proxy"
    adapter: str | None = None
    trained_modules: str | None = None

    @classmethod
    def read(cls, folder: RunFolder) -> RunInfo:
        path = folder.artifacts_dir / "run_info.json"
        if not path.is_file():
            status = folder.read_status().get("status", "unknown")
            raise FileNotFoundError(
                f"{path} not found: run {folder.root} has status {status!r} and no saved artifacts. "
                "Evaluate a completed run, or resume this one until it completes."
            )
        values = json.loads(path.read_text(encoding="utf-8"))
        known = {name: values.get(name) for name in cls.__dataclass_fields__ if name in values}
        return cls(**known)

    def base_model_name(self) -> str:
        """Return the folder the base weights came from if it still exists, else the model name."""
        if self.base_model_source and Path(self.base_model_source).is_dir():
            return self.base_model_source
        return self.base_model


class WeightSwap:
    """Swap a model's parameters between their base values and the values saved in a safetensors file.

    The tuned tensors are read from the (memory-mapped) file on every swap
    in. The base values are read back the same way from the base model's own
    safetensors files when every replaced tensor is found there with the same
    shape and equal values (see `_locate_base_tensors`). Otherwise a CPU copy
    of the replaced tensors is kept.
    """

    def __init__(self, model: torch.nn.Module, path: Path, base_dir: Path | None = None) -> None:
        self.path = Path(path)
        parameters = dict(model.named_parameters())
        with safe_open(str(self.path), framework="pt", device="cpu") as handle:
            self.names = list(handle.keys())
            unknown = [name for name in self.names if name not in parameters]
            if unknown:
                raise ValueError(
                    f"{self.path} contains {len(unknown)} tensor(s) that the base model lacks, e.g. {unknown[:3]}; "
                    "the run was trained on a different base model. Check base_model in artifacts/run_info.json."
                )
            for name in self.names:
                shape = tuple(handle.get_slice(name).get_shape())
                if shape != tuple(parameters[name].shape):
                    raise ValueError(
                        f"{self.path}: tensor {name} has shape {shape}, the base model's has "
                        f"{tuple(parameters[name].shape)}; the run was trained on a different base model."
                    )
        self.parameters = {name: parameters[name] for name in self.names}
        self.base_files = _locate_base_tensors(base_dir, self.parameters) if base_dir else None
        if self.base_files is None:
            self.originals = {name: parameters[name].detach().to("cpu", copy=True) for name in self.names}
        else:
            self.originals = {}
        self.active: Variant = "base"

    @property
    def copied_bytes(self) -> int:
        """Bytes held by the CPU copy of the replaced tensors."""
        return sum(tensor.numel() * tensor.element_size() for tensor in self.originals.values())

    @torch.no_grad()
    def activate(self, variant: Variant) -> None:
        if variant == self.active:
            return
        if variant == "tuned":
            with safe_open(str(self.path), framework="pt", device="cpu") as handle:
                for name in self.names:
                    self.parameters[name].copy_(handle.get_tensor(name))
        elif self.base_files is not None:
            for file, pairs in self.base_files.items():
                with safe_open(str(file), framework="pt", device="cpu") as handle:
                    for key, name in pairs:
                        self.parameters[name].copy_(handle.get_tensor(key))
        else:
            for name, original in self.originals.items():
                self.parameters[name].copy_(original)
        self.active = variant


def _locate_base_tensors(
    base_dir: Path, parameters: dict[str, torch.nn.Parameter]
) -> dict[Path, list[tuple[str, str]]] | None:
    """Find each replaced parameter's base value in the base model's safetensors files.

    Returns {file: [(key in file, parameter name)]}, or None when any
    parameter has no tensor of equal value. Checkpoint keys often differ from
    module names (transformers renames them on load and save), so candidates
    of the same shape are tried in order of the longest shared name suffix
    and the first one whose values equal the loaded parameter is taken. Equal
    values are all a swap back needs, so ties (layer norms that are all ones)
    are harmless.
    """
    files = sorted(Path(base_dir).glob("*.safetensors"))
    shapes: dict[tuple[int, ...], list[tuple[Path, str]]] = {}
    for file in files:
        with safe_open(str(file), framework="pt", device="cpu") as handle:
            for key in handle.keys():
                shapes.setdefault(tuple(handle.get_slice(key).get_shape()), []).append((file, key))

    found: dict[Path, list[tuple[str, str]]] = {}
    for name, parameter in parameters.items():
        candidates = sorted(shapes.get(tuple(parameter.shape), []), key=lambda c: -_shared_suffix(c[1], name))
        current = parameter.detach().cpu()
        for file, key in candidates:
            with safe_open(str(file), framework="pt", device="cpu") as handle:
                if torch.equal(handle.get_tensor(key).to(current.dtype), current):
                    found.setdefault(file, []).append((key, name))
                    break
        else:
            return None
    return found


def _shared_suffix(first: str, second: str) -> int:
    count = 0
    for a, b in zip(reversed(first.split(".")), reversed(second.split("."))):
        if a != b:
            break
        count += 1
    return count


class ModelVariants:
    """One loaded model that acts as the run's base or tuned model on request.

    Use `with variants.use("base"):` around any forward pass or `generate`.
    Not thread-safe: callers serialise access (the `Comparator` holds a lock).
    """

    def __init__(self, loaded: LoadedModel, info: RunInfo, kind: str, swap: WeightSwap | None = None) -> None:
        self.loaded = loaded
        self.info = info
        self.kind = kind
        """`lora`, `full`, or `none` when the run trained no model weight (tuned equals base)."""
        self.swap = swap

    @property
    def model(self):
        return self.loaded.model

    @classmethod
    def load(cls, run_dir: Path, device: torch.device | None = None, precision: str | None = None) -> ModelVariants:
        """Load the base model of the run in `run_dir` once, with its adapter or swappable trained weights."""
        folder = RunFolder(Path(run_dir))
        info = RunInfo.read(folder)
        if precision is None:
            precision = RunConfig.load(folder.config_path).model.precision if folder.config_path.is_file() else "auto"
        loaded = load_model(info.base_model_name(), device=device, precision=precision)
        if loaded.family.name != info.family:
            raise ValueError(
                f"Base model {info.base_model_name()} is a {loaded.family.name} model, but run {folder.root} "
                f"was trained on a {info.family} model; restore the original base model."
            )

        if info.adapter and folder.adapter_dir.is_dir():
            from peft import PeftModel

            loaded.model = PeftModel.from_pretrained(loaded.model, str(folder.adapter_dir), is_trainable=False)
            kind, swap = "lora", None
        elif info.trained_modules and folder.trained_modules_path.is_file():
            base_dir = Path(loaded.source) if Path(loaded.source).is_dir() else None
            swap = WeightSwap(loaded.model, folder.trained_modules_path, base_dir=base_dir)
            kind = "full"
        elif info.trainable:
            raise FileNotFoundError(
                f"Run {folder.root} trained {'+'.join(info.trainable)} ({info.mode}) but neither "
                f"{folder.adapter_dir} nor {folder.trained_modules_path} exists; the artifacts are incomplete."
            )
        else:
            logger.warning(
                "Run %s trained only the proxy instruction, which is not used at inference: "
                "the tuned model is the base model.",
                folder.root,
            )
            kind, swap = "none", None
        loaded.model.eval()
        logger.info("Loaded run %s: base %s, tuned by %s", folder.root, info.base_model_name(), kind)
        return cls(loaded, info, kind, swap)

    @contextlib.contextmanager
    def use(self, variant: Variant) -> Iterator[None]:
        """Make the model act as `variant` inside the block."""
        if variant not in VARIANTS:
            raise ValueError(f"Model variant {variant!r} is unknown; choose base or tuned.")
        if self.kind == "lora" and variant == "base":
            with self.model.disable_adapter():
                yield
        else:
            if self.swap is not None:
                self.swap.activate(variant)
            yield
