"""Typed run configuration, filled the same way by the CLI, YAML files and the app.

Defaults follow the instruction-free tuning recipe: K=8 proxy tokens
initialised from a text instruction, a one-epoch warm-up of the proxy alone,
then the vision encoder and projector tuned with LoRA while the proxy used in
every forward pass is its moving average with momentum m=0.999.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from engine.models.groups import MODULE_GROUPS


Instruction = Literal["proxy", "fixed", "none"]
ProxyInit = Literal["text", "random"]
Shuffling = Literal["none", "comma", "sentence", "auto"]
TuningMode = Literal["lora", "full"]
MomentumUpdate = Literal["reload", "shadow"]
Precision = Literal["auto", "fp32", "bf16"]


@dataclass
class ModelConfig:
    name: str = "demo"
    """Hub id, local folder, or `demo` for the offline tiny random model."""
    precision: Precision = "auto"
    """`auto`: bf16 on GPUs that support it, fp32 otherwise."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass to save memory."""
    allow_download: bool = False
    """Fetch a hub model that is not in the local Hugging Face cache; off, nothing is requested from the hub."""


@dataclass
class MethodConfig:
    instruction: Instruction = "proxy"
    """`proxy`: learnable soft tokens in the user turn (instruction-free tuning).
    `fixed`: the text in `fixed_instruction`. `none`: an empty user text."""
    num_proxy_tokens: int = 8
    """K, the number of soft tokens of the proxy instruction."""
    proxy_init: ProxyInit = "text"
    """Start the proxy from the embeddings of `proxy_init_text` or at random."""
    proxy_init_text: str = "Describe the image."
    fixed_instruction: str = "Describe the image."
    """User text for `instruction: fixed`."""
    momentum: float = 0.999
    """m in t̄ ← m·t̄ + (1−m)·t; 0 uses the trained proxy directly."""
    momentum_update: MomentumUpdate = "reload"
    """Momentum rule. `reload`: t is set to t̄ before every forward pass, so t̄ moves by
    (1−m) of each optimizer step. `shadow`: the forward pass uses t̄ while gradients
    train t, which keeps its own trajectory, and t̄ averages it."""
    shuffling: Shuffling = "auto"
    """Response shuffling: `comma` phrases, `sentence`s, `auto` picks per report."""
    warmup_epochs: float = 1.0
    """Length of the proxy-only warm-up stage in epochs; 0 skips it."""
    warmup_steps: int | None = None
    """Length of the warm-up in optimizer steps; overrides `warmup_epochs`."""
    warmup_learning_rate: float = 1e-3
    """Learning rate of the proxy during warm-up."""
    proxy_learning_rate: float = 1e-3
    """Learning rate of the proxy during the main stage."""
    trainable: list[str] = field(default_factory=lambda: ["vision", "projector"])
    """Module groups trained in the main stage: vision, projector, language."""
    mode: TuningMode = "lora"
    """`lora`: peft LoRA on the groups' linear layers; `full`: every weight of the groups."""
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0


@dataclass
class TrainingConfig:
    epochs: float = 3.0
    """Epochs of the main stage."""
    max_steps: int | None = None
    """Optimizer steps of the main stage; overrides `epochs`."""
    learning_rate: float = 1e-4
    """Learning rate of the trained model weights."""
    batch_size: int = 4
    gradient_accumulation_steps: int = 1
    weight_decay: float = 0.0
    lr_warmup_ratio: float = 0.0
    """Share of main-stage steps with a linear learning-rate ramp (unrelated to the proxy warm-up)."""
    max_length: int = 2048
    """Maximum tokens per sample; the report is truncated, never the prompt."""
    image_size: int | None = None
    """Maximum image side in pixels given to the processor; None keeps the processor's default."""
    seed: int = 0
    logging_steps: int = 1
    save_steps: int = 50
    """Save a checkpoint every this many steps (and always at the end or on stop)."""
    save_total_limit: int = 2
    num_workers: int = 0


@dataclass
class DataConfig:
    path: str = "sample_data"
    """Folder or zip of images with reports."""
    cache_dir: str | None = None
    """Folder of the decoded-image cache; default: `$IFT_CACHE_DIR/images`, i.e. `~/.cache/instruction-free-tuning/images`."""
    quiz_fraction: float = 0.2
    """Share of images held out as the quiz set (never tuned on); 0 tunes on all."""
    split_seed: int = 0
    """Seed of the tuning/quiz split."""


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def validate(self) -> None:
        """Raise ValueError listing every inconsistent setting at once."""
        problems = list(_problems(self))
        if problems:
            raise ValueError("Invalid configuration:\n- " + "\n- ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: Path) -> None:
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunConfig:
        """Build a config from nested mappings, rejecting unknown keys by name."""
        return _from_dict(cls, values or {}, prefix="")

    @classmethod
    def load(cls, path: Path) -> RunConfig:
        try:
            values = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            raise ValueError(f"Config file {path} is not valid YAML: {error}") from error
        if values is not None and not isinstance(values, dict):
            raise ValueError(f"Config file {path} must contain a mapping, found {type(values).__name__}.")
        return cls.from_dict(values or {})


def _from_dict(cls: type, values: dict[str, Any], prefix: str) -> Any:
    hints = get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(
            f"Unknown config key(s) {', '.join(prefix + k for k in unknown)}; "
            f"valid keys here: {', '.join(sorted(prefix + k for k in known))}."
        )
    kwargs = {}
    for key, value in values.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise ValueError(f"Config key {prefix}{key} must be a mapping, got {value!r}.")
            kwargs[key] = _from_dict(hint, value, prefix=f"{prefix}{key}.")
        else:
            kwargs[key] = value
    return cls(**kwargs)


def _type_problems(owner: object, prefix: str):
    """Yield a message for each field whose value does not have the declared type."""
    hints = get_type_hints(type(owner))
    for item in dataclasses.fields(owner):
        value, hint = getattr(owner, item.name), hints[item.name]
        if dataclasses.is_dataclass(hint):
            yield from _type_problems(value, f"{prefix}{item.name}.")
        elif not _matches(value, hint):
            yield f"{prefix}{item.name} is {value!r}; expected {_describe(hint)}."


def _matches(value: Any, hint: Any) -> bool:
    origin, arguments = get_origin(hint), get_args(hint)
    if origin is Literal:
        return value in arguments
    if origin in (Union, UnionType):
        return any(_matches(value, argument) for argument in arguments)
    if origin is list:
        return isinstance(value, list) and all(_matches(v, arguments[0]) for v in value)
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    origin, arguments = get_origin(hint), get_args(hint)
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in arguments)
    if origin in (Union, UnionType):
        return " or ".join(_describe(a) for a in arguments)
    if origin is list:
        return f"a list of {_describe(arguments[0])}"
    if hint is type(None):
        return "empty (null)"
    return {bool: "true or false", int: "a whole number", float: "a number", str: "text"}.get(hint, str(hint))


def _problems(config: RunConfig):
    type_problems = list(_type_problems(config, ""))
    if type_problems:
        # Range checks below would fail on values of the wrong type.
        yield from type_problems
        return
    method, training = config.method, config.training
    if method.num_proxy_tokens < 1:
        yield f"method.num_proxy_tokens is {method.num_proxy_tokens}; it must be at least 1."
    if not 0.0 <= method.momentum < 1.0:
        yield f"method.momentum is {method.momentum}; it must be in [0, 1)."
    unknown_groups = [g for g in method.trainable if g not in MODULE_GROUPS]
    if unknown_groups:
        yield f"method.trainable names unknown group(s) {unknown_groups}; choose from {', '.join(MODULE_GROUPS)}."
    if not method.trainable and method.instruction != "proxy":
        yield "method.trainable is empty, so a run without a proxy instruction would train nothing."
    if method.warmup_epochs < 0 or (method.warmup_steps is not None and method.warmup_steps < 0):
        yield "method.warmup_epochs and method.warmup_steps must not be negative."
    if training.batch_size < 1:
        yield f"training.batch_size is {training.batch_size}; it must be at least 1."
    if training.gradient_accumulation_steps < 1:
        yield f"training.gradient_accumulation_steps is {training.gradient_accumulation_steps}; it must be at least 1."
    if training.max_steps is None and training.epochs <= 0:
        yield f"training.epochs is {training.epochs}; it must be positive (or set training.max_steps)."
    if training.max_steps is not None and training.max_steps < 0:
        yield f"training.max_steps is {training.max_steps}; it must not be negative."
    for name in ("learning_rate",):
        if getattr(training, name) <= 0:
            yield f"training.{name} is {getattr(training, name)}; it must be positive."
    for name in ("warmup_learning_rate", "proxy_learning_rate"):
        if getattr(method, name) <= 0:
            yield f"method.{name} is {getattr(method, name)}; it must be positive."
    if not 0.0 <= training.lr_warmup_ratio < 1.0:
        yield f"training.lr_warmup_ratio is {training.lr_warmup_ratio}; it must be in [0, 1)."
    if not 0.0 <= config.data.quiz_fraction < 1.0:
        yield f"data.quiz_fraction is {config.data.quiz_fraction}; it must be in [0, 1)."
    if training.max_length < 16:
        yield f"training.max_length is {training.max_length}; it must be at least 16 tokens."
