"""One tuning run from config to artifacts: setup, warm-up stage, main stage, save."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import torch
from PIL import Image

from engine.config import RunConfig
from engine.data.loading import load_samples
from engine.data.sample import Sample
from engine.data.split import Split, sample_key, split_samples
from engine.models.demo import cache_root
from engine.models.families import PROXY_MODULE_NAME
from engine.models.loading import LoadedModel, load_model
from engine.proxy import PLACEHOLDER_TOKEN, ProxyInstruction, initial_proxy_tokens
from engine.runs.folder import RunFolder
from engine.training.callbacks import (
    StopCallback,
)
from engine.training.collator import ReportCollator, fitted_size
from engine.training.plan import SampleDataset, is_main_process, plan_stages
from engine.training.stages import RunContext, run_main, run_warmup, save_artifacts


logger = logging.getLogger(__name__)


def user_text_for(config: RunConfig) -> str:
    """Return the user-turn text: placeholders, the fixed instruction, or nothing."""
    method = config.method
    if method.instruction == "proxy":
        return PLACEHOLDER_TOKEN * method.num_proxy_tokens
    if method.instruction == "fixed":
        return method.fixed_instruction
    return ""


def create_proxy(loaded: LoadedModel, config: RunConfig) -> ProxyInstruction:
    """Add the placeholder token to the tokenizer and build the initial proxy."""
    tokenizer = loaded.tokenizer
    tokenizer.add_tokens([PLACEHOLDER_TOKEN], special_tokens=True)
    placeholder_id = tokenizer.convert_tokens_to_ids(PLACEHOLDER_TOKEN)
    embedding = loaded.model.get_input_embeddings()
    generator = torch.Generator().manual_seed(config.training.seed)
    tokens = initial_proxy_tokens(
        embedding,
        tokenizer,
        config.method.num_proxy_tokens,
        config.method.proxy_init,
        config.method.proxy_init_text,
        generator=generator,
    )
    proxy = ProxyInstruction(tokens, placeholder_id=placeholder_id, substitute_id=tokenizer.pad_token_id or 0)
    return proxy.to(embedding.weight.device)


def data_manifest(samples: list[Sample], dropped: list[str], ingestion: dict) -> dict:
    """Counts and content hashes only: no names, paths or identifiers of patients."""
    entries = []
    for sample in samples:
        entries.append(
            {
                "image_sha256": hashlib.sha256(Path(sample.image_path).read_bytes()).hexdigest(),
                "report_sha256": hashlib.sha256(sample.report.encode("utf-8")).hexdigest(),
                "group": sample.group,
            }
        )
    return {
        "num_samples": len(samples),
        "num_dropped_no_label_tokens": len(dropped),
        "ingestion_totals": ingestion.get("totals", {}),
        "samples": entries,
    }


def write_split(folder: RunFolder, split: Split) -> None:
    """Record which images were tuned on and which are held out, by content key only."""
    payload = {
        "tune": [sample_key(s) for s in split.tune],
        "quiz": [sample_key(s) for s in split.quiz],
        "quiz_overlapping_tune": split.overlapping,
    }
    folder.split_path.write_text(json.dumps(payload, indent=2), encoding="utf-8")


def drop_samples_without_labels(samples: list[Sample], collator: ReportCollator) -> tuple[list[Sample], list[str]]:
    """Drop samples whose prompt alone fills max_length, so no report token would remain."""
    kept, dropped = [], []
    lengths: dict[tuple[int, int], int] = {}
    for sample in samples:
        image = collator_image_size(sample, collator)
        if image not in lengths:
            lengths[image] = int(collator.encode_prompts([sample])["input_ids"].shape[1])
        if lengths[image] < collator.max_length:
            kept.append(sample)
        else:
            dropped.append(sample.source)
    if dropped:
        logger.warning(
            "Dropped %d sample(s) whose prompt alone reaches max_length %d (no report token left): %s",
            len(dropped),
            collator.max_length,
            ", ".join(dropped[:5]),
        )
    return kept, dropped


def collator_image_size(sample: Sample, collator: ReportCollator) -> tuple[int, int]:
    # Prompt length depends on the image only through its size; reading the
    # header is enough.
    with Image.open(sample.image_path) as image:
        return fitted_size(image.size, collator.image_size)


# --- entry point -----------------------------------------------------------------


class RunFolderInUseError(RuntimeError):
    """Raised when a run folder already contains a run and --resume was not given."""


def _attach_log_file(folder: RunFolder) -> logging.Handler | None:
    if not is_main_process():
        return None
    handler = logging.FileHandler(folder.log_path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)
    return handler


def _prepare_folder(config: RunConfig, folder: RunFolder, resume: bool) -> None:
    # Under torchrun the main process writes config.yaml first; only it checks.
    previous = folder.read_status().get("status")
    if folder.config_path.exists() and not resume and is_main_process():
        if previous == "failed" and not _has_checkpoints(folder):
            # A run that failed before its first checkpoint has nothing to keep.
            logger.info("Replacing run %s, which failed before saving a checkpoint", folder.root)
            folder.metrics_path.unlink(missing_ok=True)
        else:
            raise RunFolderInUseError(
                f"Run folder {folder.root} already contains a {previous} run; pass --resume to continue it "
                "or choose a new --out."
            )
    if resume and not folder.config_path.exists():
        raise FileNotFoundError(f"Cannot resume: {folder.config_path} not found. Start a new run instead.")
    if resume and previous == "completed":
        raise RunFolderInUseError(f"Run {folder.root} is already completed; start a new run with another --out.")
    # The saved config must work from any working directory (evaluation, app).
    config.data.path = str(Path(config.data.path).expanduser().resolve())
    folder.root.mkdir(parents=True, exist_ok=True)
    _clear_stale_stop_request(folder)  # before the status is overwritten
    if is_main_process():
        config.save(folder.config_path)
        folder.write_status("running", stage="setup")


def _has_checkpoints(folder: RunFolder) -> bool:
    return any(folder.last_checkpoint(stage) is not None for stage in ("warmup", "main"))


def _clear_stale_stop_request(folder: RunFolder) -> None:
    """Remove a stop file that an earlier attempt already acted on.

    A stop file is stale when it predates this process or the last final
    status of the run (the stop that led to this resume). One written since
    is a request for this run (a user pressing Stop while the model loads)
    and is kept.
    """
    try:
        written = folder.stop_path.stat().st_mtime
    except FileNotFoundError:
        return
    previous = folder.read_status()
    acted_on = previous.get("status") in ("stopped", "failed", "completed") and written <= previous.get("updated", 0)
    if (acted_on or written < psutil.Process().create_time()) and is_main_process():
        folder.stop_path.unlink(missing_ok=True)


def _setup(config: RunConfig, folder: RunFolder, started: float, stop: StopCallback) -> RunContext:
    cache_dir = Path(config.data.cache_dir) if config.data.cache_dir else cache_root() / "images"
    samples, ingestion = load_samples(Path(config.data.path), cache_dir)
    split = split_samples(samples, config.data.quiz_fraction, config.data.split_seed)
    samples = split.tune
    if is_main_process():
        write_split(folder, split)
    loaded = load_model(config.model.name, precision=config.model.precision, allow_download=config.model.allow_download)
    _write_status(folder, "running", stage="setup", demo_model=loaded.is_demo)

    proxy_needed = config.method.instruction == "proxy"
    proxy = create_proxy(loaded, config) if proxy_needed else None
    collator = ReportCollator(
        processor=loaded.processor,
        family=loaded.family,
        user_text=user_text_for(config),
        shuffling=config.method.shuffling,
        max_length=config.training.max_length,
        image_size=config.training.image_size,
        seed=config.training.seed,
    )
    samples, dropped = drop_samples_without_labels(samples, collator)
    if not samples:
        raise ValueError(
            f"Every sample's prompt reaches training.max_length={config.training.max_length}; "
            "raise it or lower training.image_size."
        )
    if is_main_process():
        manifest = data_manifest(samples, dropped, ingestion)
        folder.manifest_path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")

    if proxy is not None:
        # Attached as a submodule so that DDP all-reduces its gradient and
        # device moves include it; the proxy keeps itself in fp32.
        # NOTE: only single-process and DDP (gloo, CPU) runs are tested. FSDP
        # or DeepSpeed ZeRO-3 would shard this module with the model, and the
        # momentum update and proxy checkpoints assume a full local tensor.
        setattr(loaded.model, PROXY_MODULE_NAME, proxy)
        proxy.attach(loaded.model.get_input_embeddings())

    plan = plan_stages(config, len(samples))
    return RunContext(config, folder, loaded, SampleDataset(samples), collator, plan, started, stop)


@dataclass
class TrainOutcome:
    """The final status and the trained objects, for callers in the same process."""

    status: str
    model: object
    proxy: ProxyInstruction | None


def train(config: RunConfig, run_dir: Path, resume: bool = False, callbacks: tuple = ()) -> TrainOutcome:
    """Run instruction-free tuning (or a baseline) into `run_dir`.

    The final status is `completed`, `stopped` (a stop was requested, and
    resume continues from the saved checkpoint) or `failed` (with the error,
    which is also re-raised). `callbacks` are extra `TrainerCallback`s for both
    stages.
    """
    config.validate()
    folder = RunFolder(Path(run_dir))
    _prepare_folder(config, folder, resume)
    handler = _attach_log_file(folder)
    started = time.time()
    # Signals are caught from the start, so a stop during model loading is
    # honoured at the first training step.
    stop = StopCallback(folder.stop_path)
    stop.install_signal_handlers()
    try:
        context = _setup(config, folder, started, stop)
        context.extra_callbacks = tuple(callbacks)
        proxy = getattr(context.loaded.model, PROXY_MODULE_NAME, None)
        details = {"demo_model": context.loaded.is_demo, "total_steps": context.plan.total_steps}

        if proxy is not None:
            _write_status(folder, "running", stage="warmup", **details)
            if not run_warmup(context, proxy, resume):
                _write_status(folder, "stopped", stage="warmup", **details)
                return TrainOutcome("stopped", context.loaded.model, proxy)

        _write_status(folder, "running", stage="main", **details)
        trainer = run_main(context, proxy, resume)
        if context.stop.requested:
            _write_status(folder, "stopped", stage="main", **details)
            return TrainOutcome("stopped", trainer.model, proxy)

        if is_main_process():
            save_artifacts(context, trainer.model, proxy)
        _write_status(folder, "completed", elapsed_s=round(time.time() - started, 1), **details)
        return TrainOutcome("completed", trainer.model, proxy)
    except BaseException as error:
        _write_status(folder, "failed", error=f"{type(error).__name__}: {error}")
        logger.error("Run failed: %s: %s", type(error).__name__, error)
        raise
    finally:
        stop.restore_signal_handlers()
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            handler.close()


def _write_status(folder: RunFolder, status: str, **details) -> None:
    if is_main_process():
        folder.write_status(status, **details)
