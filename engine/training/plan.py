"""Run planning: the dataset wrapper, steps per stage and the Trainer arguments."""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset
from transformers import TrainingArguments

from engine.config import RunConfig
from engine.data.sample import Sample


class SampleDataset(Dataset):
    def __init__(self, samples: list[Sample]) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]


@dataclass
class StagePlan:
    """Optimizer steps per stage, computed once so metrics can report an ETA."""

    warmup_steps: int
    main_steps: int

    @property
    def total_steps(self) -> int:
        return self.warmup_steps + self.main_steps


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def plan_stages(config: RunConfig, num_samples: int) -> StagePlan:
    training, method = config.training, config.method
    per_rank = math.ceil(num_samples / world_size())
    steps_per_epoch = max(math.ceil(per_rank / training.batch_size) // training.gradient_accumulation_steps, 1)
    if method.instruction != "proxy":
        warmup = 0
    elif method.warmup_steps is not None:
        warmup = method.warmup_steps
    else:
        warmup = math.ceil(method.warmup_epochs * steps_per_epoch)
    if training.max_steps is not None:
        main = training.max_steps
    else:
        main = math.ceil(training.epochs * steps_per_epoch)
    return StagePlan(warmup_steps=warmup, main_steps=main)


def training_arguments(
    config: RunConfig, output_dir: Path, max_steps: int, learning_rate: float, dtype
) -> TrainingArguments:
    training = config.training
    on_cpu = not torch.cuda.is_available()
    return TrainingArguments(
        output_dir=str(output_dir),
        max_steps=max_steps,
        per_device_train_batch_size=training.batch_size,
        gradient_accumulation_steps=training.gradient_accumulation_steps,
        learning_rate=learning_rate,
        weight_decay=training.weight_decay,
        warmup_steps=training.lr_warmup_ratio,
        logging_steps=training.logging_steps,
        save_strategy="steps",
        save_steps=training.save_steps,
        save_total_limit=training.save_total_limit,
        seed=training.seed,
        report_to=[],
        remove_unused_columns=False,
        dataloader_num_workers=training.num_workers,
        use_cpu=on_cpu,
        bf16=dtype == torch.bfloat16,
        activation_checkpointing=config.model.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if config.model.gradient_checkpointing else None,
        ddp_backend="gloo" if on_cpu and world_size() > 1 else None,
        disable_tqdm=not sys.stderr.isatty(),
    )
