"""Methods × seeds through the engine, each tuned model scored on the same quiz.

Every method is one `RunConfig` passed to `engine.training.train`, with the
same data, the same main-stage length and the same learning rates. The proxy
methods also run their warm-up (the proxy alone, every model weight frozen)
before the main stage, as the method prescribes. The untuned stage-0 model
is scored once as `base`.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from engine.config import RunConfig
from engine.evaluation.variants import ModelVariants
from engine.models.loading import load_model
from engine.training import train
from proving_ground import quiz
from proving_ground.domain import DomainData


logger = logging.getLogger(__name__)

BASE = "base"

# Overrides of `RunConfig.method` per method; everything else is shared.
MAIN_METHODS: dict[str, dict] = {
    "no instruction": {"instruction": "none", "shuffling": "none"},
    "fixed instruction": {"instruction": "fixed", "shuffling": "none"},
    "InstFree": {"instruction": "proxy", "shuffling": "none"},
    "InstFree w/ RS": {"instruction": "proxy", "shuffling": "auto"},
    # `shadow`: the forward pass uses the average t̄ while gradients train t, so t̄
    # averages a trained proxy. The rows above use the engine's default `reload`,
    # which sets t to t̄ before every step.
    "InstFree (shadow momentum)": {"instruction": "proxy", "shuffling": "none", "momentum_update": "shadow"},
    "InstFree w/ RS (shadow momentum)": {"instruction": "proxy", "shuffling": "auto", "momentum_update": "shadow"},
}
# Each ablation changes one setting of InstFree w/ RS or of its shadow-momentum row,
# except the last, which changes one setting of fixed instruction.
ABLATIONS: dict[str, dict] = {
    **{f"InstFree w/ RS, m={m}": {"instruction": "proxy", "shuffling": "auto", "momentum": m} for m in (0.0, 0.9, 0.99)},
    **{
        f"InstFree w/ RS (shadow momentum), m={m}": {
            "instruction": "proxy",
            "shuffling": "auto",
            "momentum": m,
            "momentum_update": "shadow",
        }
        for m in (0.0, 0.9, 0.99)
    },
    **{f"InstFree w/ RS, K={k}": {"instruction": "proxy", "shuffling": "auto", "num_proxy_tokens": k} for k in (1, 4)},
    "InstFree w/ RS, no warm-up": {"instruction": "proxy", "shuffling": "auto", "warmup_epochs": 0.0},
    "InstFree w/ RS, vision+projector only": {
        "instruction": "proxy",
        "shuffling": "auto",
        "trainable": ["vision", "projector"],
    },
    "fixed instruction, vision+projector only": {
        "instruction": "fixed",
        "shuffling": "none",
        "trainable": ["vision", "projector"],
    },
}


@dataclass(frozen=True)
class TuningSettings:
    """The budget and optimiser settings every method shares."""

    epochs: float = 4.0
    batch_size: int = 8
    learning_rate: float = 1e-3
    proxy_learning_rate: float = 1e-3
    warmup_learning_rate: float = 1e-3
    warmup_epochs: float = 1.0
    momentum: float = 0.999
    num_proxy_tokens: int = 8
    mode: str = "lora"
    lora_rank: int = 8
    trainable: tuple[str, ...] = ("vision", "projector", "language")
    """The language model is trained too: with it frozen, no method learned to name a new colour
    (at most 18% of descriptions right after fixed-instruction tuning, in LoRA or full mode)."""


@dataclass
class CellResult:
    """The quiz outcome of one method at one seed; lists are per question, 1 when right."""

    method: str
    seed: int
    generation: list[int]
    likelihood: list[int]
    seconds: float
    run_dir: str = ""
    groups: list[str] = field(default_factory=list)
    """Per question, `new` or `retained` (see `proving_ground.domain`)."""
    replies: list[str] = field(default_factory=list)
    described: list[int] = field(default_factory=list)
    """Per question, 1 when the model's answer to "Describe the image." names the right value."""


def method_config(
    method: str, overrides: dict, base_dir: Path, data: DomainData, seed: int, settings: TuningSettings, cache: Path
) -> RunConfig:
    """Build the RunConfig of one method at one seed."""
    values = {
        "model": {"name": str(base_dir), "precision": "fp32"},
        "method": {
            "num_proxy_tokens": settings.num_proxy_tokens,
            "momentum": settings.momentum,
            "warmup_epochs": settings.warmup_epochs,
            "warmup_learning_rate": settings.warmup_learning_rate,
            "proxy_learning_rate": settings.proxy_learning_rate,
            "trainable": list(settings.trainable),
            "mode": settings.mode,
            "lora_rank": settings.lora_rank,
            "lora_alpha": 2 * settings.lora_rank,
            **overrides,
        },
        "training": {
            "epochs": settings.epochs,
            "batch_size": settings.batch_size,
            "learning_rate": settings.learning_rate,
            "seed": seed,
            "save_steps": 100_000,
            "save_total_limit": 1,
        },
        "data": {"path": str(data.tune_dir), "quiz_fraction": 0.0, "cache_dir": str(cache)},
    }
    config = RunConfig.from_dict(values)
    config.validate()
    return config


def score_run(run_dir: Path, data: DomainData) -> quiz.QuizScores:
    """Score the tuned model of a run, loaded by the engine's evaluation (the proxy is not used)."""
    variants = ModelVariants.load(run_dir, device=torch.device("cpu"), precision="fp32")
    loaded = variants.loaded
    with variants.use("tuned"):
        return quiz.score_quiz(loaded.model, loaded.processor, loaded.family, data.questions)


def run_cell(
    method: str, overrides: dict, seed: int, base_dir: Path, data: DomainData, settings: TuningSettings, out: Path
) -> CellResult:
    """Tune one method at one seed into `out/runs/` and score it on the quiz."""
    run_dir = out / "runs" / f"{_slug(method)}-seed{seed}"
    started = time.time()
    config = method_config(method, overrides, base_dir, data, seed, settings, out / "image-cache")
    if (run_dir / "artifacts" / "run_info.json").exists():
        logger.info("Reusing finished run %s", run_dir)
    else:
        status = train(config, run_dir).status
        if status != "completed":
            raise RuntimeError(f"Run {run_dir} ended with status {status!r}; see {run_dir / 'train.log'}.")
    scores = score_run(run_dir, data)
    return CellResult(
        method=method,
        seed=seed,
        generation=scores.generation,
        likelihood=scores.likelihood,
        seconds=round(time.time() - started, 1),
        run_dir=str(run_dir),
        groups=list(data.groups),
        replies=scores.replies,
        described=scores.described,
    )


def run_base(base_dir: Path, data: DomainData) -> CellResult:
    """Score the untuned stage-0 model on the quiz."""
    started = time.time()
    loaded = load_model(str(base_dir), device=torch.device("cpu"), precision="fp32")
    scores = quiz.score_quiz(loaded.model, loaded.processor, loaded.family, data.questions)
    return CellResult(
        method=BASE,
        seed=0,
        generation=scores.generation,
        likelihood=scores.likelihood,
        seconds=round(time.time() - started, 1),
        groups=list(data.groups),
        replies=scores.replies,
        described=scores.described,
    )


def run_methods(
    methods: dict[str, dict],
    seeds: list[int],
    base_dir: Path,
    data: DomainData,
    settings: TuningSettings,
    out: Path,
) -> list[CellResult]:
    """Run every method at every seed, appending each result to `out/cells.jsonl` as it finishes."""
    results = []
    with (out / "cells.jsonl").open("a", encoding="utf-8") as log:
        for method, overrides in methods.items():
            for seed in seeds:
                logger.info("Tuning %s, seed %d", method, seed)
                result = run_cell(method, overrides, seed, base_dir, data, settings, out)
                log.write(json.dumps(asdict(result)) + "\n")
                log.flush()
                results.append(result)
    return results


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-").replace("--", "-")
