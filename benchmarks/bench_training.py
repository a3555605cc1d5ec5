"""Step time and peak memory of instruction-free tuning against a plain Trainer fine-tune.

Both variants train the same model (a small random LLaVA, bigger than the
test models so that compute dominates), on the same images, with the same
batch size and the same LoRA on vision encoder and projector:

- baseline: `transformers.Trainer` with a fixed text instruction,
- instfree: the engine's main stage (proxy instruction through the embedding
  hook, moving average loaded before every step and updated after it).

Each repetition runs each variant in a fresh process, alternating, and
records the median step time (first steps skipped) and the process's peak
resident memory. Usage: `python -m benchmarks.bench_training [--repeats 3] [--steps 30]`.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from transformers import Trainer, TrainerCallback, TrainingArguments


REPO_ROOT = Path(__file__).resolve().parent.parent
SKIPPED_STEPS = 5


class StepTimer(TrainerCallback):
    def __init__(self) -> None:
        self.durations: list[float] = []
        self._start = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.durations.append(time.perf_counter() - self._start)


def build_model(folder: Path) -> None:
    from engine.models.tiny import build_tiny_vlm

    build_tiny_vlm("llava", folder, seed=0, text_hidden=256, num_layers=4, image_size=64)


def make_config(model_dir: Path, data_dir: Path, steps: int, instruction: str):
    from engine.config import RunConfig

    config = RunConfig()
    config.model.name = str(model_dir)
    config.data.path = str(data_dir)
    config.data.quiz_fraction = 0.0
    config.training.batch_size = 4
    config.training.max_steps = steps
    config.training.save_steps = 10_000
    config.method.instruction = instruction
    config.method.warmup_steps = 0
    return config


def run_instfree(model_dir: Path, data_dir: Path, steps: int, work: Path) -> list[float]:
    from engine.training import train

    timer = StepTimer()
    train(make_config(model_dir, data_dir, steps, "proxy"), work / "run", callbacks=(timer,))
    return timer.durations


def run_baseline(model_dir: Path, data_dir: Path, steps: int, work: Path) -> list[float]:
    from engine.data.loading import load_samples
    from engine.models.loading import load_model
    from engine.training.collator import ReportCollator
    from engine.training.parts import apply_trainable_parts
    from engine.training.run import SampleDataset

    config = make_config(model_dir, data_dir, steps, "fixed")
    samples, _ = load_samples(data_dir, work / "cache")
    loaded = load_model(str(model_dir), precision="fp32")
    model = apply_trainable_parts(loaded.model, loaded.family, config.method)
    collator = ReportCollator(loaded.processor, loaded.family, config.method.fixed_instruction, shuffling="none")
    args = TrainingArguments(
        output_dir=str(work / "baseline"),
        max_steps=steps,
        per_device_train_batch_size=config.training.batch_size,
        learning_rate=config.training.learning_rate,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        remove_unused_columns=False,
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    timer = StepTimer()
    Trainer(
        model=model, args=args, train_dataset=SampleDataset(samples), data_collator=collator, callbacks=[timer]
    ).train()
    return timer.durations


def child(variant: str, model_dir: Path, data_dir: Path, steps: int, threads: int) -> None:
    import torch

    # A fixed thread count keeps timings comparable on a machine shared with other work.
    torch.set_num_threads(threads)
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as work:
        runner = run_instfree if variant == "instfree" else run_baseline
        durations = runner(model_dir, data_dir, steps, Path(work))
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    median = statistics.median(durations[SKIPPED_STEPS:])
    print(json.dumps({"variant": variant, "median_step_s": median, "peak_rss_mib": peak_kib / 1024}))


def measure(variant: str, model_dir: Path, data_dir: Path, steps: int, threads: int) -> dict:
    command = [
        sys.executable,
        "-m",
        "benchmarks.bench_training",
        "--child",
        variant,
        str(model_dir),
        str(data_dir),
        str(steps),
        str(threads),
    ]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="Fresh-process runs per variant (default: 3).")
    parser.add_argument("--steps", type=int, default=30, help="Optimizer steps per run (default: 30).")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (default: 1).")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        variant, model_dir, data_dir, steps, threads = args.child
        child(variant, Path(model_dir), Path(data_dir), int(steps), int(threads))
        return

    with tempfile.TemporaryDirectory() as work:
        model_dir = Path(work) / "model"
        build_model(model_dir)
        data_dir = REPO_ROOT / "sample_data"
        results: dict[str, list[dict]] = {"baseline": [], "instfree": []}
        for repeat in range(args.repeats):
            for variant in ("baseline", "instfree"):
                results[variant].append(measure(variant, model_dir, data_dir, args.steps, args.threads))
                print(f"repeat {repeat + 1} {variant}: {results[variant][-1]}", flush=True)
        shutil.rmtree(model_dir, ignore_errors=True)

    step = {v: statistics.median(r["median_step_s"] for r in rs) for v, rs in results.items()}
    memory = {v: statistics.median(r["peak_rss_mib"] for r in rs) for v, rs in results.items()}
    print(
        f"median step time: baseline {step['baseline'] * 1000:.1f} ms, instfree {step['instfree'] * 1000:.1f} ms, "
        f"ratio {step['instfree'] / step['baseline']:.3f} (goal <= 1.05)"
    )
    print(
        f"peak RSS: baseline {memory['baseline']:.0f} MiB, instfree {memory['instfree']:.0f} MiB, "
        f"ratio {memory['instfree'] / memory['baseline']:.3f} (goal <= 1.05)"
    )


if __name__ == "__main__":
    main()
