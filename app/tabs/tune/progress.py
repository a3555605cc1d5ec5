"""Turn a run's status and metric records into the plot data, progress bar and status text."""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd

from app.training_jobs import JobState


STAGE_LABELS = {"warmup": "warm-up", "main": "main"}
STAGE_COLOURS = {"warm-up": "#e69f00", "main": "#0072b2"}
MAX_PLOT_POINTS = 2000


def empty_loss_frame() -> pd.DataFrame:
    """Return one row per stage with a missing step and loss, which the chart does not draw.

    gradio 6.31's LinePlot fixes the colour domain from the first value it
    renders and keeps it when the value changes, so every frame starts with
    both stages to keep the colours of `STAGE_COLOURS`.
    """
    return pd.DataFrame({
        "step": pd.Series([math.nan] * len(STAGE_COLOURS), dtype="float64"),
        "loss": pd.Series([math.nan] * len(STAGE_COLOURS), dtype="float64"),
        "stage": list(STAGE_COLOURS),
    })


def loss_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Return step, loss and stage columns, thinned to at most MAX_PLOT_POINTS rows (the last point always kept)."""
    if not records:
        return empty_loss_frame()
    stride = max(1, -(-len(records) // MAX_PLOT_POINTS))
    kept = records[::stride]
    if kept[-1] is not records[-1]:
        kept.append(records[-1])
    points = pd.DataFrame({
        "step": [float(r["step"]) for r in kept],
        "loss": [float(r["loss"]) for r in kept],
        "stage": [STAGE_LABELS.get(r.get("stage"), str(r.get("stage"))) for r in kept],
    })
    return pd.concat([empty_loss_frame(), points], ignore_index=True)


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def progress_html(state: JobState, last: dict[str, Any] | None) -> str:
    total = (last or {}).get("total_steps") or state.total_steps
    step = (last or {}).get("step", 0)
    if state.status == "completed" and total:
        step = total
    fraction = min(1.0, step / total) if total else 0.0
    if state.status in ("created", "running") and not last:
        text = "Preparing: reading the data and loading the model…"
    elif total:
        stage = STAGE_LABELS.get((last or {}).get("stage"), "")
        text = f"Step {step} of {total} ({fraction:.0%})"
        if stage and state.status == "running":
            text += f", {stage} stage"
        if state.status == "running" and last and last.get("eta_s") is not None:
            text += f", about {format_seconds(last['eta_s'])} left"
        if last and last.get("elapsed_s") is not None:
            text += f"; elapsed {format_seconds(last['elapsed_s'])}"
    else:
        text = ""
    return (
        f'<div class="run-progress" data-status="{html.escape(state.status)}">'
        f'<div class="run-progress-bar" style="width: {fraction * 100:.1f}%"></div></div>'
        f'<div class="run-progress-text">{html.escape(text)}</div>'
    )


def status_markdown(state: JobState, last: dict[str, Any] | None) -> str:
    name = state.name
    demo = " It uses the demo model, so the loss says nothing about real learning." if state.demo_model else ""
    if state.status == "created" and state.stage == "resume":
        return f"**{name}**: resuming from its last checkpoint (loading the model).{demo}"
    if state.status == "created" or (state.status == "running" and state.stage == "setup"):
        return f"**{name}**: starting (reading the data and loading the model).{demo}"
    if state.status == "running":
        return f"**{name}**: training, pid {state.pid}. Closing this page does not stop it.{demo}"
    if state.status == "completed":
        elapsed = state.details.get("elapsed_s")
        took = f" in {format_seconds(elapsed)}" if elapsed is not None else ""
        return f"**{name}**: completed{took}. Compare it with its base model on the Compare tab.{demo}"
    if state.status == "stopped":
        step = (last or {}).get("step")
        at = f" at step {step}" if step else ""
        return f"**{name}**: stopped{at} with a checkpoint. Resume it on the Runs tab."
    if state.status == "failed":
        return (
            f"**{name}**: failed. Cause: `{state.error or 'unknown'}`. "
            "The log below shows the last lines; fix the cause and start a new run, or resume this one on the Runs tab."
        )
    return f"**{name}**: status {state.status}."
