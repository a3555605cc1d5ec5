"""`python -m engine evaluate`: score a run's base and tuned model on a question set."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tqdm import tqdm

from engine.evaluation.attribute_questions import GenerationSettings
from engine.evaluation.comparison import Comparator
from engine.evaluation.prompts import DEFAULT_ANSWER_INSTRUCTION, DEFAULT_ANSWER_PREFIX, PromptSettings
from engine.evaluation.report import summary_text, write_json
from engine.evaluation.scoring import ScoringSettings


logger = logging.getLogger(__name__)

AUTO_QUESTIONS = "auto"


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = ScoringSettings()
    generation = GenerationSettings()
    parser.add_argument("--run", required=True, type=Path, help="Run folder written by `python -m engine train`.")
    parser.add_argument(
        "--questions",
        default=AUTO_QUESTIONS,
        help="Question file (.csv, .jsonl or .json), or 'auto' to ask about every attribute of the run's "
        "quiz images (default: auto).",
    )
    parser.add_argument("--json", type=Path, help="Also write the JSON report to this file.")
    parser.add_argument(
        "--scoring",
        choices=["parse", "likelihood", "both"],
        default="both",
        help="parse: generate a reply and read the letter; likelihood: compare option-letter "
        "log-probabilities; both (default).",
    )
    parser.add_argument("--limit", type=int, help="Evaluate only the first N questions.")
    parser.add_argument(
        "--max-options",
        type=int,
        default=generation.max_options,
        help=f"Options per generated question, the right one included (default: {generation.max_options}).",
    )
    parser.add_argument(
        "--seed", type=int, default=generation.seed, help="Seed of generated options and their order (default: 0)."
    )
    parser.add_argument("--data", type=Path, help="Data the run was tuned on, if it moved (default: the run's data.path).")
    parser.add_argument("--name", help="Report name under <run>/evaluation/ (default: the question file's name or 'auto').")
    parser.add_argument(
        "--batch-size", type=int, default=defaults.batch_size, help=f"Prompts per forward pass (default: {defaults.batch_size})."
    )
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=defaults.max_new_tokens,
        help=f"Reply length limit of generation in tokens (default: {defaults.max_new_tokens}).",
    )
    parser.add_argument(
        "--likelihood-target",
        choices=["letter", "text"],
        default=defaults.likelihood_target,
        help="Continuation scored by likelihood: the option letter (default) or the option text.",
    )
    parser.add_argument(
        "--length-normalise",
        action="store_true",
        help="With --likelihood-target text, rank options by mean log-probability per token.",
    )
    parser.add_argument(
        "--no-grounding-control",
        action="store_true",
        help="Skip the control run with a uniform grey image in place of each image (halves the time).",
    )
    parser.add_argument(
        "--answer-instruction",
        default=DEFAULT_ANSWER_INSTRUCTION,
        help=f"Line after the options (default: {DEFAULT_ANSWER_INSTRUCTION!r}).",
    )
    parser.add_argument(
        "--answer-prefix",
        default=DEFAULT_ANSWER_PREFIX,
        help=f"Reply start before the letter in likelihood scoring (default: {DEFAULT_ANSWER_PREFIX!r}).",
    )
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16"], help="Model dtype (default: the run's).")


def run_evaluate(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit is {args.limit}; it must be at least 1.")
    comparator = Comparator.load(args.run, precision=args.precision)

    warnings: list[str] = []
    if args.questions == AUTO_QUESTIONS:
        generation = GenerationSettings(max_options=args.max_options, seed=args.seed)
        questions, warnings = comparator.quiz_questions(generation, data_path=args.data)
        name = args.name or AUTO_QUESTIONS
    else:
        questions = comparator.load_questions(Path(args.questions), data_path=args.data)
        name = args.name or Path(args.questions).stem

    settings = ScoringSettings(
        scoring=args.scoring,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        likelihood_target=args.likelihood_target,
        length_normalise=args.length_normalise,
        image_size=comparator.image_size,
        grounding_control=not args.no_grounding_control,
        prompt=PromptSettings(answer_instruction=args.answer_instruction, answer_prefix=args.answer_prefix),
    )
    with tqdm(total=0, unit="item", desc="Evaluating", disable=None) as bar:

        def progress(done: int, total: int, stage: str) -> None:
            bar.total = total
            bar.set_postfix_str(stage, refresh=False)
            bar.update(done - bar.n)

        report = comparator.evaluate(
            questions, limit=args.limit, progress_callback=progress, settings=settings, name=name, warnings=warnings
        )
    if args.json is not None:
        write_json(report, args.json)
    sys.stdout.write(summary_text(report) + "\n")
    sys.stdout.write(f"Report: {comparator.folder.root / 'evaluation' / name}.json and .csv\n")
    return 0
