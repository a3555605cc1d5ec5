"""Tune tab events: start a training process, follow it with a timer, stop it."""

from __future__ import annotations

import logging
import re
import time

import gradio as gr

from app import datasets
from app.context import AppContext
from app.errors import user_error
from app.model_catalog import (
    DEMO_CHOICE,
    LOCAL_FOLDER_CHOICE,
    download_problem,
    resolve_model_name,
    size_warning,
)
from app.shared import SharedState
from app.tabs.tune.layout import TuneTab
from app.tabs.tune.progress import empty_loss_frame, loss_frame, progress_html, status_markdown
from app.training_jobs import JobError, gpu_count


logger = logging.getLogger(__name__)


def default_run_name(model_name: str) -> str:
    short = re.sub(r"[^A-Za-z0-9.-]+", "-", model_name.rstrip("/").split("/")[-1]).strip("-")[:40] or "model"
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{short}"


def build_config(dataset: datasets.Dataset, quiz_fraction: float, model_name: str, settings, values: dict):
    """Fill a RunConfig from the tab's inputs; the config's own validation runs when the job starts."""
    from engine.config import RunConfig

    config = RunConfig()
    config.model.name = model_name
    config.model.precision = values["precision"]
    config.model.allow_download = settings.allow_downloads
    method, training = config.method, config.training
    method.num_proxy_tokens = int(values["num_proxy_tokens"])
    method.momentum = float(values["momentum"])
    method.warmup_epochs = float(values["warmup_epochs"])
    method.trainable = list(values["trainable"] or [])
    method.shuffling = values["shuffling"]
    method.mode = values["mode"]
    method.instruction = values["instruction"]
    method.fixed_instruction = values["fixed_instruction"]
    method.lora_rank = int(values["lora_rank"])
    method.lora_alpha = 2 * method.lora_rank
    method.proxy_learning_rate = float(values["proxy_learning_rate"])
    method.warmup_learning_rate = float(values["warmup_learning_rate"])
    training.learning_rate = float(values["learning_rate"])
    training.epochs = float(values["epochs"])
    training.max_steps = int(values["max_steps"]) or None
    training.batch_size = int(values["batch_size"])
    training.image_size = int(values["image_size"]) or None
    training.seed = int(values["seed"])
    config.data.path = dataset.path
    config.data.cache_dir = str(settings.image_cache_dir)
    config.data.quiz_fraction = float(quiz_fraction)
    return config


def follow_outputs(tab: TuneTab) -> list:
    """Return the components that `followed_run_values` fills, in its order."""
    return [tab.loss_plot, tab.progress, tab.status, tab.log_tail, tab.timer, tab.stop_button]


def followed_run_values(jobs, run_name: str | None) -> tuple:
    """Return the loss curve, progress, status, log tail, timer and Stop button for the followed run.

    The timer stays active and Stop enabled while the run's status is active,
    which includes a resumed run whose new process has not written a status yet.
    """
    if not run_name:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.Timer(active=False), gr.skip()
    try:
        jobs.keep_stop_request(run_name)
        state = jobs.state(run_name)
    except JobError as error:
        return gr.skip(), "", f"Cannot follow run {run_name!r}: {error}", "", gr.Timer(active=False), gr.skip()
    records = jobs.follower(run_name).refresh()
    last = records[-1] if records else None
    return (loss_frame(records), progress_html(state, last), status_markdown(state, last),
            jobs.log_tail(run_name), gr.Timer(active=not state.finished), gr.Button(interactive=not state.finished))


def _number_problems(values: dict) -> list[str]:
    return [f"{name.replace('_', ' ')} is empty; enter a number." for name, value in values.items() if value is None]


def wire_tune_tab(demo: gr.Blocks, tab: TuneTab, shared: SharedState, context: AppContext) -> None:
    jobs, settings = context.jobs, context.settings
    outputs = follow_outputs(tab)

    def show_model_note(choice: str):
        notes = [] if choice == LOCAL_FOLDER_CHOICE else [
            download_problem(choice, settings.allow_downloads),
            size_warning(choice, has_gpu=gpu_count() > 0),
        ]
        return gr.Textbox(visible=choice == LOCAL_FOLDER_CHOICE), "\n\n".join(note for note in notes if note)

    def show_dataset(dataset_state: dict | None) -> str:
        dataset = datasets.Dataset.from_state(dataset_state)
        if dataset is None:
            return "No data chosen yet: choose data on the Data tab first."
        return f"Data: {dataset.label}, {dataset.num_samples} image–report pairs."

    def start_training(dataset_state: dict | None, quiz_fraction: float, model_choice: str, local_folder: str,
                       run_name: str, **values):
        """Write the run config and start `python -m engine train` as a separate process."""
        dataset = datasets.Dataset.from_state(dataset_state)
        if dataset is None:
            raise user_error("No data chosen. Load the sample data or upload data on the Data tab first.")
        problems = _number_problems(values)
        if problems:
            raise user_error("Invalid settings: " + " ".join(problems))
        try:
            model_name = resolve_model_name(model_choice, local_folder)
        except ValueError as error:
            raise user_error(str(error)) from error
        problem = download_problem(model_name, settings.allow_downloads)
        if problem:
            raise user_error(problem)
        warning = size_warning(model_name, has_gpu=gpu_count() > 0)
        if warning and model_name != DEMO_CHOICE:
            gr.Warning(warning)

        name = (run_name or "").strip() or default_run_name(model_name)
        dataset = datasets.Dataset(**{**dataset.to_state(), "path": datasets.keep_for_run(dataset.path, settings)})
        config = build_config(dataset, quiz_fraction, model_name, settings, values)
        try:
            jobs.start(config, name)
        except (JobError, ValueError) as error:
            raise user_error(str(error)) from error
        state = jobs.state(name)
        return (name, dataset.to_state(), empty_loss_frame(), progress_html(state, None), status_markdown(state, None),
                "", gr.Timer(active=True), gr.Button(interactive=True))

    def poll_training(run_name: str | None):
        """Return the loss curve, progress, status and log tail of the followed run."""
        return followed_run_values(jobs, run_name)

    def stop_training(run_name: str | None):
        """Ask the followed run to stop at its next step (it saves a checkpoint first)."""
        if not run_name:
            raise user_error("No run is followed on this page, so there is nothing to stop.")
        try:
            jobs.stop(run_name)
        except JobError as error:
            raise user_error(str(error)) from error
        gr.Info(f"Stop requested: {run_name} ends after its current step and saves a checkpoint.")
        return gr.Button(interactive=False)

    def attach_training(current: str | None):
        """Follow the running job, if any (after a page reload or an app restart)."""
        active = jobs.active_run()
        name = active or current
        if not name:
            return None, gr.Timer(active=False)
        return name, gr.Timer(active=True)

    tab.model_choice.change(show_model_note, [tab.model_choice], [tab.local_folder, tab.model_note],
                            api_name="show_model_note")
    shared.dataset.change(show_dataset, [shared.dataset], [tab.dataset_info], api_visibility="private")
    tab.start_button.click(
        start_training,
        inputs=[shared.dataset, shared.quiz_fraction, tab.model_choice, tab.local_folder, tab.run_name],
        inputs_kwargs=tab.settings,
        outputs=[shared.followed_run, shared.dataset, *outputs[:4], tab.timer, tab.stop_button],
        api_name="start_training",
        concurrency_id="training-control",
    )
    # Clients without a timer call the same endpoint by name.
    tab.timer.tick(poll_training, [shared.followed_run], outputs, api_name="poll_training",
                   show_progress="hidden", concurrency_limit=None)
    tab.stop_button.click(stop_training, [shared.followed_run], [tab.stop_button], api_name="stop_training",
                          concurrency_id="training-control")
    shared.followed_run.change(poll_training, [shared.followed_run], outputs, api_visibility="private",
                               show_progress="hidden")
    demo.load(attach_training, [shared.followed_run], [shared.followed_run, tab.timer], api_name="attach_training")
