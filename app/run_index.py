"""Read every run folder of the workspace for the Runs tab; zip and delete runs. No gradio here."""

from __future__ import annotations

import json
import logging
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any

import yaml

from app.settings import AppSettings
from app.training_jobs import ACTIVE_STATUSES, JobError, TrainingJobs


logger = logging.getLogger(__name__)

# Short headers keep the table readable in a 1280 px window; the settings are in the run's details.
RUN_COLUMNS = ["Run", "Status", "Model", "Started", "Steps", "Loss", "Quiz base → tuned"]
RUN_COLUMN_WIDTHS = ["22%", "9%", "25%", "13%", "9%", "8%", "14%"]
COMPARISON_SUMMARY_NAME = "evaluation/app-summary.json"


def read_config(folder: Path, settings: AppSettings) -> dict[str, Any]:
    """Return the run's config as plain data: the run's own copy, else the file the app wrote next to it."""
    for path in (folder / "config.yaml", settings.runs_dir / f"{folder.name}.yaml"):
        try:
            return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            continue
        except yaml.YAMLError as error:
            logger.error("Cannot read run config %s: %s", path, error)
            return {}
    return {}


def settings_text(config: dict[str, Any]) -> str:
    method, training = config.get("method", {}), config.get("training", {})
    if not method:
        return ""
    length = f"{training.get('max_steps')} steps" if training.get("max_steps") else f"{training.get('epochs')} epochs"
    return (
        f"{method.get('instruction')}, K={method.get('num_proxy_tokens')}, m={method.get('momentum')}, "
        f"{method.get('mode')} on {'+'.join(method.get('trainable') or []) or 'nothing'}, "
        f"lr {training.get('learning_rate')}, {length}"
    )


def last_metrics(folder: Path) -> dict[str, Any] | None:
    """Return the last metrics record that has a loss, reading only the end of the file."""
    path = folder / "metrics.jsonl"
    if not path.exists():
        return None
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - 16 * 1024))
        lines = handle.read().decode("utf-8", errors="replace").splitlines()
    for line in reversed(lines):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "loss" in record:
            return record
    return None


def comparison_summary(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / COMPARISON_SUMMARY_NAME).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def run_rows(jobs: TrainingJobs) -> list[list[Any]]:
    rows = []
    for name in jobs.run_names():
        folder = jobs.settings.runs_dir / name
        state = jobs.state(name)
        config = read_config(folder, jobs.settings)
        last = last_metrics(folder)
        total = (last or {}).get("total_steps") or state.total_steps
        steps = f"{last['step']} / {total}" if last else ""
        comparison = comparison_summary(folder)
        accuracy = ""
        if comparison:
            accuracy = f"{comparison['base_accuracy']:.1%} → {comparison['tuned_accuracy']:.1%}"
        started_at = jobs.started(name)
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(started_at)) if started_at else ""
        rows.append([
            name,
            state.status,
            config.get("model", {}).get("name", ""),
            started,
            steps,
            round(last["loss"], 4) if last else None,
            accuracy,
        ])
    return rows


def run_details(jobs: TrainingJobs, name: str) -> str:
    """Return a Markdown description of one run: status, error, settings and artifacts."""
    folder = jobs.folder(name).root
    if not folder.is_dir():
        return f"Run {name!r} not found in {jobs.settings.runs_dir}."
    state = jobs.state(name)
    config = read_config(folder, jobs.settings)
    lines = [f"### {name}", f"Status: **{state.status}**" + (f" (stage {state.stage})" if state.stage else "")]
    if state.error:
        lines.append(f"Error: `{state.error}`")
    if config:
        data = config.get("data", {})
        lines.append(f"Model: `{config.get('model', {}).get('name')}`. Settings: {settings_text(config)}.")
        lines.append(f"Data: `{data.get('path')}`, quiz share {data.get('quiz_fraction')}.")
    artifacts = folder / "artifacts"
    if artifacts.is_dir():
        files = sorted(str(p.relative_to(artifacts)) for p in artifacts.rglob("*") if p.is_file())
        lines.append("Artifacts: " + ", ".join(f"`{f}`" for f in files))
    else:
        lines.append("No artifacts yet: they are written when the run completes.")
    comparison = comparison_summary(folder)
    if comparison:
        lines.append(
            f"Last comparison: base {comparison['base_accuracy']:.1%}, tuned {comparison['tuned_accuracy']:.1%} "
            f"on {comparison['questions']} questions (McNemar p = {comparison.get('mcnemar_p', float('nan')):.3g})."
        )
    return "\n\n".join(lines)


def zip_artifacts(jobs: TrainingJobs, name: str) -> Path:
    """Write `<exports>/<run>-artifacts.zip` with the artifacts and the run's config; return its path."""
    folder = jobs.folder(name).root
    artifacts = folder / "artifacts"
    if not artifacts.is_dir():
        raise JobError(f"Run {name!r} has no artifacts yet (status {jobs.state(name).status}); "
                       "they are written when a run completes.")
    target = jobs.settings.exports_dir / f"{name}-artifacts.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(artifacts.rglob("*")):
            if path.is_file():
                archive.write(path, f"{name}/artifacts/{path.relative_to(artifacts)}")
        for extra in ("config.yaml", "split.json", "metrics.jsonl"):
            if (folder / extra).is_file():
                archive.write(folder / extra, f"{name}/{extra}")
    logger.info("Wrote %s", target)
    return target


def delete_run(jobs: TrainingJobs, name: str) -> None:
    """Delete a finished run's folder and config, and its uploaded data set if no other run uses it."""
    folder = jobs.folder(name).root
    if not folder.is_dir():
        raise JobError(f"Run {name!r} not found; refresh the list.")
    state = jobs.state(name)
    if state.status in ACTIVE_STATUSES and state.alive:
        raise JobError(f"Run {name!r} is still training; stop it first, then delete it.")
    data_path = read_config(folder, jobs.settings).get("data", {}).get("path")
    shutil.rmtree(folder)
    jobs.config_path(name).unlink(missing_ok=True)
    jobs.forget(name)
    logger.info("Deleted run %s", name)
    if data_path:
        _delete_unused_dataset(jobs, Path(data_path))


def _delete_unused_dataset(jobs: TrainingJobs, data_path: Path) -> None:
    datasets_dir = jobs.settings.datasets_dir.resolve()
    resolved = data_path.resolve()
    if datasets_dir not in resolved.parents:
        return
    upload_folder = datasets_dir / resolved.relative_to(datasets_dir).parts[0]
    for other in jobs.run_names():
        other_path = read_config(jobs.settings.runs_dir / other, jobs.settings).get("data", {}).get("path")
        if other_path and upload_folder in (Path(other_path).resolve(), *Path(other_path).resolve().parents):
            return
    shutil.rmtree(upload_folder, ignore_errors=True)
    logger.info("Deleted uploaded data set %s, which no run uses any more", upload_folder)
