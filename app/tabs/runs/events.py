"""Runs tab events: list, follow, resume, download and delete runs."""

from __future__ import annotations

import logging

import gradio as gr
import pandas as pd

from app import run_index
from app.context import AppContext
from app.errors import user_error
from app.shared import SharedState
from app.tabs.runs.layout import RunsTab
from app.tabs.tune.events import follow_outputs, followed_run_values
from app.tabs.tune.layout import TuneTab
from app.training_jobs import JobError


RESUMABLE_STATUSES = ("stopped", "failed")


logger = logging.getLogger(__name__)


def wire_runs_tab(demo: gr.Blocks, tab_item: gr.Tab, tab: RunsTab, tune_tab: TuneTab, shared: SharedState,
                  context: AppContext) -> None:
    jobs = context.jobs

    def can_resume(name: str | None) -> bool:
        try:
            return bool(name) and jobs.state(name).status in RESUMABLE_STATUSES
        except JobError:
            return False

    def list_runs(selected: str | None):
        """Return the table of all runs, the run picker, whether the picked run can be resumed, and its details."""
        rows = run_index.run_rows(jobs)
        names = [row[0] for row in rows]
        value = selected if selected in names else None
        if value is None and names:
            value = names[0]
        # The details are returned here too: a picker value set by this event
        # does not always fire the picker's change event.
        details, _, _ = show_run(value)
        return (pd.DataFrame(rows, columns=run_index.RUN_COLUMNS), gr.Dropdown(choices=names, value=value),
                gr.Button(interactive=can_resume(value)), details)

    def show_run(name: str | None):
        """Return the details of one run; clear the previous run's download and allow Resume only when it can work."""
        hidden_download = gr.File(value=None, visible=False)
        if not name:
            return "No run selected.", hidden_download, gr.Button(interactive=False)
        try:
            details = run_index.run_details(jobs, name)
        except JobError as error:
            return str(error), hidden_download, gr.Button(interactive=False)
        return details, hidden_download, gr.Button(interactive=can_resume(name))

    def follow_run(name: str | None):
        """Show the run's progress on the Tune tab (re-attaches to a running job)."""
        if not name:
            raise user_error("No run selected. Pick a run in the list first.")
        return name, gr.Tabs(selected="tune"), *followed_run_values(jobs, name)

    def resume_run(name: str | None):
        """Continue a stopped or failed run from its last checkpoint and follow it on the Tune tab."""
        if not name:
            raise user_error("No run selected. Pick a stopped run in the list first.")
        try:
            jobs.resume(name)
        except JobError as error:
            raise user_error(str(error)) from error
        gr.Info(f"Resumed {name} from its last checkpoint.")
        return name, gr.Tabs(selected="tune"), *followed_run_values(jobs, name), gr.Button(interactive=False)

    def download_artifacts(name: str | None):
        """Zip the run's adapter or trained weights, proxy and config for download."""
        if not name:
            raise user_error("No run selected. Pick a completed run in the list first.")
        try:
            path = run_index.zip_artifacts(jobs, name)
        except JobError as error:
            raise user_error(str(error)) from error
        return gr.File(value=str(path), visible=True)

    def ask_delete(name: str | None):
        if not name:
            raise user_error("No run selected. Pick the run to delete in the list first.")
        text = f"Delete **{name}** with its checkpoints, artifacts and log? This cannot be undone."
        return gr.Row(visible=True), text

    def delete_run(name: str | None):
        """Delete a run that is not training (after the confirmation in the page)."""
        if not name:
            raise user_error("No run selected. Pick the run to delete in the list first.")
        try:
            run_index.delete_run(jobs, name)
        except JobError as error:
            raise user_error(str(error)) from error
        gr.Info(f"Deleted {name}.")
        return gr.Row(visible=False), *list_runs(None)

    list_outputs = [tab.table, tab.run_select, tab.resume_button, tab.details]
    tab.refresh_button.click(list_runs, [tab.run_select], list_outputs, api_name="list_runs")
    demo.load(list_runs, [tab.run_select], list_outputs, api_visibility="private")
    tab_item.select(list_runs, [tab.run_select], list_outputs, api_visibility="private")
    tab.run_select.change(show_run, [tab.run_select], [tab.details, tab.download_file, tab.resume_button],
                          api_name="show_run")
    # Both fill the Tune tab at once, so it never shows the run's previous state while the timer starts.
    tune_outputs = [shared.followed_run, shared.tabs, *follow_outputs(tune_tab)]
    tab.follow_button.click(follow_run, [tab.run_select], tune_outputs, api_name="follow_run")
    tab.resume_button.click(resume_run, [tab.run_select], [*tune_outputs, tab.resume_button], api_name="resume_run",
                            concurrency_id="training-control")
    tab.download_button.click(download_artifacts, [tab.run_select], [tab.download_file],
                              api_name="download_artifacts")
    tab.delete_button.click(ask_delete, [tab.run_select], [tab.confirm_row, tab.confirm_text],
                            api_visibility="private")
    tab.cancel_delete_button.click(lambda: gr.Row(visible=False), None, [tab.confirm_row], api_visibility="private")
    tab.confirm_delete_button.click(delete_run, [tab.run_select], [tab.confirm_row, *list_outputs],
                                    api_name="delete_run", concurrency_id="training-control")
