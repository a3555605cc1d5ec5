"""Command line: `python -m engine {train,ingest,evaluate} ...`."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

from engine.config import RunConfig


def _add_train_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = RunConfig()
    parser.add_argument(
        "--data", help=f"Folder or .zip of images with reports (default in config: {defaults.data.path})."
    )
    parser.add_argument(
        "--model",
        help="Hub id, local model folder, or 'demo' for the offline tiny random model "
        f"(default: {defaults.model.name}).",
    )
    parser.add_argument("--out", required=True, type=Path, help="Run folder to create (or continue with --resume).")
    parser.add_argument("--config", type=Path, help="YAML file with RunConfig values; flags below override it.")
    parser.add_argument("--max-steps", type=int, help="Optimizer steps of the main stage; overrides --epochs.")
    parser.add_argument("--epochs", type=float, help=f"Epochs of the main stage (default: {defaults.training.epochs}).")
    parser.add_argument(
        "--batch-size", type=int, help=f"Samples per device and step (default: {defaults.training.batch_size})."
    )
    parser.add_argument(
        "--gradient-accumulation-steps", type=int, help="Micro-batches summed per optimizer step (default: 1)."
    )
    parser.add_argument(
        "--learning-rate",
        type=float,
        help=f"Learning rate of model weights (default: {defaults.training.learning_rate}).",
    )
    parser.add_argument(
        "--instruction",
        choices=["proxy", "fixed", "none"],
        help="proxy: instruction-free tuning (default); fixed: --fixed-instruction text; none: empty user text.",
    )
    parser.add_argument(
        "--fixed-instruction",
        help=f"User text for --instruction fixed (default: {defaults.method.fixed_instruction!r}).",
    )
    parser.add_argument(
        "--num-proxy-tokens",
        type=int,
        help=f"K, soft tokens in the proxy instruction (default: {defaults.method.num_proxy_tokens}).",
    )
    parser.add_argument(
        "--momentum",
        type=float,
        help=f"m of the proxy's moving average, in [0, 1) (default: {defaults.method.momentum}).",
    )
    parser.add_argument(
        "--momentum-update",
        choices=["reload", "shadow"],
        help="reload: set t to t̄ before every forward pass (default); "
        "shadow: the forward pass sees t̄ while gradients train t.",
    )
    parser.add_argument(
        "--warmup-epochs",
        type=float,
        help=f"Proxy-only warm-up length in epochs; 0 skips it (default: {defaults.method.warmup_epochs}).",
    )
    parser.add_argument(
        "--warmup-steps", type=int, help="Proxy-only warm-up length in optimizer steps; overrides --warmup-epochs."
    )
    parser.add_argument(
        "--shuffling", choices=["none", "comma", "sentence", "auto"], help="Response shuffling (default: auto)."
    )
    parser.add_argument(
        "--trainable",
        help="Comma-separated module groups trained in the main stage: vision, projector, language "
        "(default: vision,projector).",
    )
    parser.add_argument("--mode", choices=["lora", "full"], help="LoRA adapters or full weights (default: lora).")
    parser.add_argument(
        "--lora-rank", type=int, help=f"Rank of the LoRA adapters (default: {defaults.method.lora_rank})."
    )
    parser.add_argument(
        "--proxy-init",
        choices=["text", "random"],
        help="Start the proxy from an instruction's embeddings or at random (default: text).",
    )
    parser.add_argument(
        "--quiz-fraction",
        type=float,
        help=f"Share of images held out as the quiz set, never tuned on (default: {defaults.data.quiz_fraction}).",
    )
    parser.add_argument(
        "--image-size", type=int, help="Maximum image side in pixels given to the processor (default: processor's own)."
    )
    parser.add_argument(
        "--max-length",
        type=int,
        help=f"Maximum tokens per sample; the report is truncated (default: {defaults.training.max_length}).",
    )
    parser.add_argument(
        "--save-steps", type=int, help=f"Checkpoint every N steps (default: {defaults.training.save_steps})."
    )
    parser.add_argument(
        "--seed",
        type=int,
        help=f"Random seed for initialisation, data order and shuffling (default: {defaults.training.seed}).",
    )
    parser.add_argument(
        "--precision", choices=["auto", "fp32", "bf16"], help="Model dtype; auto: bf16 on capable GPUs, fp32 on CPU."
    )
    parser.add_argument("--gradient-checkpointing", action="store_true", help="Recompute activations to save memory.")
    parser.add_argument(
        "--allow-download",
        action="store_true",
        help="Download a hub model that is not in the local Hugging Face cache "
        "(default: off, so nothing is requested from the hub).",
    )
    parser.add_argument(
        "--proxy-learning-rate",
        type=float,
        help=f"Learning rate of the proxy in the main stage (default: {defaults.method.proxy_learning_rate}).",
    )
    parser.add_argument(
        "--warmup-learning-rate",
        type=float,
        help=f"Learning rate of the proxy during warm-up (default: {defaults.method.warmup_learning_rate}).",
    )
    parser.add_argument(
        "--cache-dir", help="Where decoded images are cached (default: ~/.cache/instruction-free-tuning/images)."
    )
    parser.add_argument("--resume", action="store_true", help="Continue the run in --out from its last checkpoint.")


_FLAG_TARGETS = {
    "data": ("data", "path"),
    "cache_dir": ("data", "cache_dir"),
    "model": ("model", "name"),
    "precision": ("model", "precision"),
    "max_steps": ("training", "max_steps"),
    "epochs": ("training", "epochs"),
    "batch_size": ("training", "batch_size"),
    "gradient_accumulation_steps": ("training", "gradient_accumulation_steps"),
    "learning_rate": ("training", "learning_rate"),
    "image_size": ("training", "image_size"),
    "max_length": ("training", "max_length"),
    "save_steps": ("training", "save_steps"),
    "seed": ("training", "seed"),
    "instruction": ("method", "instruction"),
    "fixed_instruction": ("method", "fixed_instruction"),
    "num_proxy_tokens": ("method", "num_proxy_tokens"),
    "momentum": ("method", "momentum"),
    "momentum_update": ("method", "momentum_update"),
    "warmup_epochs": ("method", "warmup_epochs"),
    "warmup_steps": ("method", "warmup_steps"),
    "shuffling": ("method", "shuffling"),
    "mode": ("method", "mode"),
    "lora_rank": ("method", "lora_rank"),
    "proxy_init": ("method", "proxy_init"),
    "quiz_fraction": ("data", "quiz_fraction"),
    "proxy_learning_rate": ("method", "proxy_learning_rate"),
    "warmup_learning_rate": ("method", "warmup_learning_rate"),
}


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """Resolve the run config: saved run config on resume, else YAML file, then flags."""
    if args.resume and (args.out / "config.yaml").exists():
        config = RunConfig.load(args.out / "config.yaml")
    elif args.config:
        config = RunConfig.load(args.config)
    else:
        config = RunConfig()
    for flag, (section, name) in _FLAG_TARGETS.items():
        value = getattr(args, flag, None)
        if value is not None:
            setattr(getattr(config, section), name, value)
    if args.trainable is not None:
        config.method.trainable = [part.strip() for part in args.trainable.split(",") if part.strip()]
    if args.gradient_checkpointing:
        config.model.gradient_checkpointing = True
    if args.allow_download:
        config.model.allow_download = True
    config.validate()
    return config


def _run_train(args: argparse.Namespace) -> int:
    from engine.training import train

    config = config_from_args(args)
    status = train(config, args.out, resume=args.resume).status
    logging.getLogger("engine").info("Run %s finished with status %s", args.out, status)
    return EXIT_CODES.get(status, 1)


# Exit status of `train`: a stopped run is not an error, but scripts can tell it
# from a finished one.
EXIT_CODES = {"completed": 0, "stopped": 3}


def _quiet_library_output() -> None:
    """Hide library progress bars and known deprecation noise when output goes to a file."""
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    if not sys.stderr.isatty():
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m engine", description="Instruction-free tuning of vision-language models."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="Log debug messages.")
    commands = parser.add_subparsers(dest="command", required=True)

    train_parser = commands.add_parser(
        "train",
        help="Tune a model on image–report pairs.",
        epilog="Exit status: 0 completed, 3 stopped (resume with --resume), 1 failed, 2 invalid input.",
    )
    _add_train_arguments(train_parser)
    train_parser.set_defaults(handler=_run_train)

    try:
        from engine.data.ingest.cli import add_ingest_arguments, run_ingest
    except ImportError:
        pass
    else:
        ingest_parser = commands.add_parser("ingest", help="Decode and pair a folder or zip; write a report.")
        add_ingest_arguments(ingest_parser)
        ingest_parser.set_defaults(handler=run_ingest)

    try:
        from engine.evaluation.cli import add_evaluate_arguments, run_evaluate
    except ImportError:
        pass
    else:
        evaluate_parser = commands.add_parser(
            "evaluate", help="Score base and tuned models on multiple-choice questions."
        )
        add_evaluate_arguments(evaluate_parser)
        evaluate_parser.set_defaults(handler=run_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    _quiet_library_output()
    try:
        return args.handler(args)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        logging.getLogger("engine").error("%s", error)
        return 2


if __name__ == "__main__":
    sys.exit(main())
