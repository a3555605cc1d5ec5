"""The two stages of a run: proxy warm-up, then the main stage; and the artifacts."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from safetensors.torch import save_file
from transformers import set_seed

from engine.config import RunConfig
from engine.models.families import parameters_by_group
from engine.models.loading import LoadedModel
from engine.proxy import ProxyInstruction
from engine.runs.folder import RunFolder
from engine.training.callbacks import (
    PROXY_CHECKPOINT_NAME,
    MetricsCallback,
    ProxyCheckpointCallback,
    ProxyMomentumCallback,
    StopCallback,
    load_proxy,
    save_proxy,
)
from engine.training.collator import EpochCallback, ReportCollator
from engine.training.parts import apply_trainable_parts, freeze
from engine.training.plan import SampleDataset, StagePlan, is_main_process, training_arguments
from engine.training.trainer import InstructionFreeTrainer


logger = logging.getLogger(__name__)


@dataclass
class RunContext:
    config: RunConfig
    folder: RunFolder
    loaded: LoadedModel
    dataset: SampleDataset
    collator: ReportCollator
    plan: StagePlan
    started: float
    stop: StopCallback
    extra_callbacks: tuple = ()


def _make_trainer(context: RunContext, model, stage: str, proxy, max_steps: int, learning_rate: float, offset: int):
    config = context.config
    args = training_arguments(config, context.folder.checkpoints_dir(stage), max_steps, learning_rate, model.dtype)
    callbacks = [
        *context.extra_callbacks,
        MetricsCallback(context.folder.metrics_path, stage, offset, context.plan.total_steps, context.started),
        EpochCallback(context.collator, stage),
        context.stop,
    ]
    if proxy is not None:
        callbacks.append(ProxyCheckpointCallback(proxy))
        if stage == "main":
            callbacks.append(ProxyMomentumCallback(proxy, config.method.momentum))
    return InstructionFreeTrainer(
        model=model,
        args=args,
        train_dataset=context.dataset,
        data_collator=context.collator,
        callbacks=callbacks,
        proxy=proxy,
        proxy_learning_rate=learning_rate if stage == "warmup" else config.method.proxy_learning_rate,
        use_average=stage == "main" and config.method.momentum_update == "reload",
    )


def run_warmup(context: RunContext, proxy: ProxyInstruction, resume: bool) -> bool:
    """Train the proxy alone with every model weight frozen; return False if stopped."""
    folder = context.folder
    if folder.warmup_proxy_path.exists():
        load_proxy(proxy, folder.warmup_proxy_path)
        logger.info("Warm-up already finished; reusing %s", folder.warmup_proxy_path)
        return True
    if context.plan.warmup_steps == 0:
        proxy.reset_average()
        return True

    model = context.loaded.model
    freeze(model)
    proxy.tokens.requires_grad_(True)
    checkpoint = folder.last_checkpoint("warmup") if resume else None
    if checkpoint is not None:
        load_proxy(proxy, checkpoint / PROXY_CHECKPOINT_NAME)
    trainer = _make_trainer(
        context, model, "warmup", proxy, context.plan.warmup_steps, context.config.method.warmup_learning_rate, 0
    )
    logger.info("Warm-up: training the proxy alone for %d steps", context.plan.warmup_steps)
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    if context.stop.requested:
        return False

    # t̄ starts as a copy of the warmed-up proxy.
    proxy.reset_average()
    if is_main_process():
        save_proxy(proxy, folder.warmup_proxy_path)
    return True


def run_main(context: RunContext, proxy: ProxyInstruction | None, resume: bool):
    """Train the chosen module groups (and the proxy, through its average); return the trainer."""
    config = context.config
    # LoRA initialisation draws random numbers: seed it so that it does not
    # depend on how much the warm-up consumed.
    set_seed(config.training.seed)
    model = apply_trainable_parts(context.loaded.model, context.loaded.family, config.method)
    if proxy is not None:
        proxy.tokens.requires_grad_(True)
        proxy.forward_uses_average = config.method.momentum_update == "shadow"
    checkpoint = context.folder.last_checkpoint("main") if resume else None
    if checkpoint is not None and proxy is not None:
        load_proxy(proxy, checkpoint / PROXY_CHECKPOINT_NAME)
    trainer = _make_trainer(
        context,
        model,
        "main",
        proxy,
        context.plan.main_steps,
        config.training.learning_rate,
        context.plan.warmup_steps,
    )
    logger.info(
        "Main stage: training %s (%s) for %d steps",
        "+".join(config.method.trainable) or "the proxy only",
        config.method.mode,
        context.plan.main_steps,
    )
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    return trainer


def save_artifacts(context: RunContext, model, proxy: ProxyInstruction | None) -> None:
    """Write the adapter or trained weights, the proxy and a description of both."""
    folder, config = context.folder, context.config
    folder.artifacts_dir.mkdir(parents=True, exist_ok=True)
    if config.method.mode == "lora" and config.method.trainable:
        model.save_pretrained(str(folder.adapter_dir))
    elif config.method.trainable:
        base = model
        groups = parameters_by_group(base, context.loaded.family)
        names = {name for group in config.method.trainable for name in groups[group]}
        tensors = {n: p.detach().cpu().contiguous() for n, p in base.named_parameters() if n in names}
        save_file(tensors, str(folder.trained_modules_path))
    if proxy is not None:
        save_proxy(proxy, folder.proxy_path)
    info = {
        "base_model": config.model.name,
        "base_model_source": context.loaded.source,
        "family": context.loaded.family.name,
        "mode": config.method.mode,
        "trainable": list(config.method.trainable),
        "instruction": config.method.instruction,
        "adapter": folder.adapter_dir.name if folder.adapter_dir.exists() else None,
        "trained_modules": folder.trained_modules_path.name if folder.trained_modules_path.exists() else None,
        "proxy": folder.proxy_path.name if proxy is not None else None,
    }
    (folder.artifacts_dir / "run_info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
