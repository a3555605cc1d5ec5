"""Benchmark evaluation: batched scoring against one question at a time, and comparison memory.

    python benchmarks/bench_evaluation.py [--model demo] [--items 48] [--batch-size 8]

Every protocol runs in its own child process on the same model and the same
questions, so that each peak resident memory (ru_maxrss) is its own:

- `single`: one `generate` call per question (greedy, 24 new tokens), then
  the reply parser. This is the reference protocol.
- `batched`: `generate_replies` with left-padded batches.
- `likelihood`: `score_options`, one forward pass per batch.
- `plain-model` / `comparator-lora` / `comparator-full`: load one model, or a
  Comparator of a LoRA or a full run, and evaluate a few items, for memory.

Goals: likelihood ≥ 5× and batched generation ≥ 2× the questions per second
of `single`, and a comparator's memory ≤ 1.15× one loaded model. Results are
recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
SAMPLE_DATA = REPO_ROOT / "sample_data"
MAX_NEW_TOKENS = 24


def peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def benchmark_questions(count: int):
    from engine.data.loading import load_samples
    from engine.evaluation.attribute_questions import GenerationSettings, generate_attribute_questions

    cache = Path(os.environ.get("IFT_CACHE_DIR", tempfile.gettempdir())) / "bench-images"
    samples, _ = load_samples(SAMPLE_DATA, cache)
    questions = generate_attribute_questions(samples, samples, GenerationSettings(max_options=5, seed=0))
    return questions[:count]


def run_phase(phase: str, args: argparse.Namespace) -> dict:
    import torch

    from engine.evaluation.parsing import parse_answer
    from engine.evaluation.prompts import format_question
    from engine.evaluation.scoring import (
        QuestionImages,
        ScoringSettings,
        generate_replies,
        greedy_generation_config,
        processor_inputs,
        score_options,
    )
    from engine.models.loading import load_model
    from engine.prompting import render_prompt

    torch.manual_seed(0)
    questions = benchmark_questions(args.items)
    images = QuestionImages(questions, None)

    if phase.startswith("comparator"):
        from engine.evaluation.comparison import Comparator

        comparator = Comparator.load(Path(args.run))
        loaded_rss = peak_rss_mb()
        comparator.evaluate(questions[:4], settings=ScoringSettings(batch_size=args.batch_size), save=False)
        model_bytes = sum(p.numel() * p.element_size() for p in comparator.model.parameters())
        copied = comparator.variants.swap.copied_bytes if comparator.variants.swap is not None else 0
        return {"phase": phase, "rss_after_load_mb": loaded_rss, "peak_rss_mb": peak_rss_mb(),
                "tensor_bytes": model_bytes + copied}

    loaded = load_model(args.model)
    model, processor, family = loaded.model, loaded.processor, loaded.family
    model.eval()
    texts = [format_question(question) for question in questions]

    if phase == "plain-model":
        loaded_rss = peak_rss_mb()
        score_options(model, processor, family, questions[:4], images, ScoringSettings(batch_size=args.batch_size))
        generate_replies(model, processor, family, texts[:4], images, MAX_NEW_TOKENS, args.batch_size)
        return {"phase": phase, "rss_after_load_mb": loaded_rss, "peak_rss_mb": peak_rss_mb(),
                "tensor_bytes": sum(p.numel() * p.element_size() for p in model.parameters())}

    # Warm-up outside the timing: the first call pays for lazy initialisation.
    generate_replies(model, processor, family, texts[:1], images, 2, 1)
    started = time.perf_counter()
    if phase == "single":
        tokenizer = loaded.tokenizer
        config = greedy_generation_config(model, tokenizer, MAX_NEW_TOKENS)
        with torch.inference_mode():
            for index, question in enumerate(questions):
                prompt = render_prompt(processor, family, texts[index])
                inputs = processor_inputs(processor, [prompt], [images[index]], "left", model)
                output = model.generate(**inputs, generation_config=config)
                reply = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
                parse_answer(reply, question.options)
    elif phase == "batched":
        replies = generate_replies(model, processor, family, texts, images, MAX_NEW_TOKENS, args.batch_size)
        for reply, question in zip(replies, questions, strict=True):
            parse_answer(reply, question.options)
    elif phase == "likelihood":
        score_options(model, processor, family, questions, images, ScoringSettings(batch_size=args.batch_size))
    else:
        raise ValueError(f"Unknown phase {phase!r}.")
    elapsed = time.perf_counter() - started
    return {"phase": phase, "items": len(questions), "seconds": elapsed, "questions_per_s": len(questions) / elapsed,
            "peak_rss_mb": peak_rss_mb()}


def child(phase: str, args: argparse.Namespace, run: Path | None = None) -> dict:
    command = [sys.executable, __file__, "--phase", phase, "--model", args.model, "--items", str(args.items),
               "--batch-size", str(args.batch_size)]
    if run is not None:
        command += ["--run", str(run)]
    output = subprocess.run(command, check=True, capture_output=True, text=True, env=os.environ.copy())
    return json.loads(output.stdout.strip().splitlines()[-1])


def train_run(folder: Path, mode: str, groups: list[str]) -> Path:
    from engine.config import RunConfig
    from engine.training import train

    config = RunConfig()
    config.model.name = "demo"
    config.data.path = str(SAMPLE_DATA)
    config.method.instruction = "none"
    config.method.mode = mode
    config.method.trainable = groups
    config.training.max_steps = 2
    config.training.batch_size = 2
    train(config, folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="demo", help="Model name or folder (default: demo).")
    parser.add_argument("--items", type=int, default=48, help="Questions per protocol (default: 48).")
    parser.add_argument("--batch-size", type=int, default=8, help="Prompts per forward pass (default: 8).")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase:
        import logging

        logging.disable(logging.WARNING)
        print(json.dumps(run_phase(args.phase, args)))
        return

    results = {phase: child(phase, args) for phase in ("single", "batched", "likelihood", "plain-model")}
    with tempfile.TemporaryDirectory() as folder:
        runs = {
            "comparator-lora": train_run(Path(folder) / "lora", "lora", ["vision", "projector"]),
            "comparator-full": train_run(Path(folder) / "full", "full", ["vision", "projector"]),
            "comparator-full-language": train_run(Path(folder) / "full-language", "full", ["language"]),
        }
        for name, run in runs.items():
            results[name] = child(name, args, run)

    single = results["single"]["questions_per_s"]
    plain = results["plain-model"]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, {platform.platform()}")
    print(f"model: {args.model}, items: {args.items}, batch size: {args.batch_size}, max new tokens: {MAX_NEW_TOKENS}")
    for phase in ("single", "batched", "likelihood"):
        row = results[phase]
        print(f"{phase:>11}: {row['questions_per_s']:7.2f} questions/s  ({row['seconds']:.2f} s), "
              f"peak RSS {row['peak_rss_mb']:.0f} MB, speed-up {row['questions_per_s'] / single:.2f}x")
    print(f"plain model: peak RSS {plain['peak_rss_mb']:.0f} MB, tensors {plain['tensor_bytes'] / 1e6:.2f} MB")
    for name in runs:
        row = results[name]
        print(f"{name}: peak RSS {row['peak_rss_mb']:.0f} MB ({row['peak_rss_mb'] / plain['peak_rss_mb']:.3f}x), "
              f"tensors {row['tensor_bytes'] / 1e6:.2f} MB ({row['tensor_bytes'] / plain['tensor_bytes']:.3f}x)")


if __name__ == "__main__":
    main()
