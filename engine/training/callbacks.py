"""Trainer callbacks: proxy momentum, proxy checkpoints, metrics lines, graceful stop."""

from __future__ import annotations

import json
import logging
import math
import signal
import time
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from transformers import TrainerCallback

from engine.proxy import ProxyInstruction


logger = logging.getLogger(__name__)

PROXY_CHECKPOINT_NAME = "proxy.safetensors"


def save_proxy(proxy: ProxyInstruction, path: Path) -> None:
    """Write the proxy t and its moving average t̄ (fp32) to a safetensors file."""
    tensors = {"tokens": proxy.tokens.detach().cpu().contiguous(), "average": proxy.average.detach().cpu().contiguous()}
    save_file(tensors, str(path))


def load_proxy(proxy: ProxyInstruction, path: Path) -> None:
    """Restore t and t̄ exactly from a file written by `save_proxy`."""
    tensors = load_file(str(path))
    proxy.tokens.data.copy_(tensors["tokens"].to(proxy.tokens.device))
    proxy.average.copy_(tensors["average"].to(proxy.average.device))


class ProxyMomentumCallback(TrainerCallback):
    """Update t̄ ← m·t̄ + (1−m)·t after every optimizer step of the main stage.

    `m` is the momentum of the proxy instruction. The trainer loads t̄ into t
    before each forward pass, so the proxy seen by the model is the average.
    All ranks hold the same t (gradients are all-reduced before the step), so
    they compute the same t̄ without communication.
    """

    def __init__(self, proxy: ProxyInstruction, momentum: float) -> None:
        self.proxy = proxy
        self.momentum = momentum

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.proxy.update_average(self.momentum)


class ProxyCheckpointCallback(TrainerCallback):
    """Save the proxy beside every Trainer checkpoint (main process only)."""

    def __init__(self, proxy: ProxyInstruction) -> None:
        self.proxy = proxy

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            folder.mkdir(parents=True, exist_ok=True)
            save_proxy(self.proxy, folder / PROXY_CHECKPOINT_NAME)


class MetricsCallback(TrainerCallback):
    """Append one JSON object per log event to `metrics.jsonl`, flushed at once.

    `step` counts optimizer steps over both stages (warm-up first), so one
    loss curve can show them in sequence; `stage_step` restarts per stage.
    `eta_s` extrapolates the mean step time over the steps still planned.
    """

    def __init__(self, path: Path, stage: str, step_offset: int, total_steps: int, started: float) -> None:
        self.path = path
        self.stage = stage
        self.step_offset = step_offset
        self.total_steps = total_steps
        self.started = started
        self.stage_started = time.time()
        self.first_step: int | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.stage_started = time.time()
        self.first_step = state.global_step

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        step = self.step_offset + state.global_step
        done_here = state.global_step - (self.first_step or 0)
        elapsed_here = time.time() - self.stage_started
        seconds_per_step = elapsed_here / done_here if done_here > 0 else math.nan
        eta = seconds_per_step * max(self.total_steps - step, 0)
        record = {
            "step": step,
            "stage_step": state.global_step,
            "epoch": logs.get("epoch", state.epoch),
            "stage": self.stage,
            "loss": logs.get("loss"),
            "learning_rate": logs.get("learning_rate"),
            "grad_norm": logs.get("grad_norm"),
            "elapsed_s": round(time.time() - self.started, 3),
            "eta_s": None if math.isnan(eta) else round(eta, 1),
            "total_steps": self.total_steps,
        }
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()


class StopCallback(TrainerCallback):
    """End training at the next step on SIGTERM/SIGINT or when a stop file appears.

    The step that is running finishes, a checkpoint is saved, and the trainer
    returns normally, so the caller can mark the run `stopped`.
    """

    def __init__(self, stop_file: Path) -> None:
        self.stop_file = stop_file
        self.requested = False
        self._previous: dict[int, object] = {}

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def restore_signal_handlers(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _on_signal(self, signum, frame) -> None:
        logger.warning("Received signal %s; stopping after the current step", signum)
        self.requested = True

    def on_step_end(self, args, state, control, **kwargs):
        if not self.requested and self.stop_file.exists():
            logger.warning("Stop file %s found; stopping after this step", self.stop_file)
            self.requested = True
        if dist.is_available() and dist.is_initialized():
            # Every rank must stop at the same step, or the next collective hangs.
            flag = torch.tensor([int(self.requested)])
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            self.requested = bool(flag.item())
        if self.requested:
            control.should_training_stop = True
            control.should_save = True
        return control
