"""Regenerate the proving-ground table: `python -m proving_ground [--ablations] [--seeds N] [--out DIR]`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path

import torch

from proving_ground.domain import write_domain
from proving_ground.experiment import ABLATIONS, BASE, MAIN_METHODS, TuningSettings, run_base, run_methods
from proving_ground.stage0 import Stage0Settings, ensure_stage0, evaluate_seen_values
from proving_ground.table import accuracy_table, mcnemar_table


TUNE_IMAGES = 400
QUIZ_IMAGES = 150
DATA_SEED = 7
COMPARISONS = (
    ("InstFree w/ RS", "InstFree"),
    ("InstFree w/ RS", "fixed instruction"),
    ("InstFree w/ RS", "no instruction"),
    ("InstFree", "fixed instruction"),
    ("InstFree", "no instruction"),
    ("fixed instruction", "no instruction"),
    ("fixed instruction", BASE),
    ("InstFree (shadow momentum)", "InstFree"),
    ("InstFree w/ RS (shadow momentum)", "InstFree w/ RS"),
    ("InstFree (shadow momentum)", "fixed instruction"),
    ("InstFree w/ RS (shadow momentum)", "fixed instruction"),
    ("InstFree w/ RS (shadow momentum)", "InstFree (shadow momentum)"),
    *((f"InstFree w/ RS (shadow momentum), m={m}", f"InstFree w/ RS, m={m}") for m in (0.0, 0.9, 0.99)),
    ("InstFree w/ RS (shadow momentum)", "InstFree w/ RS (shadow momentum), m=0.0"),
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m proving_ground", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("proving_ground_out"), help="Output folder (default: %(default)s).")
    parser.add_argument("--seeds", type=int, default=3, help="Training seeds per method (default: %(default)s).")
    parser.add_argument("--ablations", action="store_true", help="Also run the momentum, K, warm-up and trained-parts ablations.")
    parser.add_argument(
        "--stage0-dir",
        type=Path,
        default=None,
        help="Folder that caches stage-0 models (default: $IFT_CACHE_DIR/proving_ground, else OUT/stage0).",
    )
    parser.add_argument(
        "--base-model",
        type=Path,
        default=None,
        help="Use this stage-0 model folder instead of the shipped or cached one (skips stage 0).",
    )
    parser.add_argument("--threads", type=int, default=None, help="Torch CPU threads (default: torch's own choice).")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("transformers", "peft", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.time()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)

    cache = args.stage0_dir
    if cache is None:
        cache = Path(os.environ["IFT_CACHE_DIR"]) / "proving_ground" if "IFT_CACHE_DIR" in os.environ else out / "stage0"
    base_dir = args.base_model or ensure_stage0(cache, Stage0Settings())
    seen = evaluate_seen_values(base_dir)
    print(f"Stage-0 base {base_dir}: seen-value accuracy {100 * seen.generation_accuracy:.1f}% (generation), "
          f"{100 * seen.likelihood_accuracy:.1f}% (likelihood)")

    data = write_domain(out / "domain", TUNE_IMAGES, QUIZ_IMAGES, DATA_SEED)
    settings = TuningSettings()
    methods = dict(MAIN_METHODS)
    if args.ablations:
        methods.update(ABLATIONS)
    seeds = list(range(args.seeds))

    results = [run_base(base_dir, data)]
    results += run_methods(methods, seeds, base_dir, data, settings, out)
    elapsed = time.time() - started

    summary = "\n\n".join(
        [
            f"Stage-0 seen-value accuracy: {100 * seen.generation_accuracy:.1f}% (generation), "
            f"{100 * seen.likelihood_accuracy:.1f}% (likelihood).",
            accuracy_table(results),
            "McNemar on new-value questions (pooled over seeds):\n\n" + mcnemar_table(results, COMPARISONS),
            f"Total time: {elapsed / 60:.1f} min.",
        ]
    )
    (out / "table.md").write_text(summary + "\n", encoding="utf-8")
    (out / "results.json").write_text(
        json.dumps({"settings": asdict(settings), "cells": [asdict(r) for r in results]}, indent=1), encoding="utf-8"
    )
    print(summary)


if __name__ == "__main__":
    main()
