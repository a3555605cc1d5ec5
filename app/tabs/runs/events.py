"""Runs tab events: list, follow, resume, download and delete runs."""

from __future__ import annotations

import logging

import gradio as gr
import pandas as pd

from app import run_index
from app.context import AppContext
from app.shared import SharedState
from app.tabs.runs.layout import RunsTab
from app.tabs.tune.layout import TuneTab
from app.training_jobs import JobError


logger = logging.getLogger(__name__)


def wire_runs_tab(demo: gr.Blocks, tab_item: gr.Tab, tab: RunsTab, tune_tab: TuneTab, shared: SharedState,
                  context: AppContext) -> None:
    jobs = context.jobs

    def list_runs(selected: str | None):
        """Return the table of all runs and the run picker."""
        rows = run_index.run_rows(jobs)
        names = [row[0] for row in rows]
        value = selected if selected in names else None
        if value is None and names:
            value = names[0]
        return pd.DataFrame(rows, columns=run_index.RUN_COLUMNS), gr.Dropdown(choices=names, value=value)

    def show_run(name: str | None) -> str:
        """Return the details of one run."""
        if not name:
            return "No run selected."
        try:
            return run_index.run_details(jobs, name)
        except JobError as error:
            return str(error)

    def follow_run(name: str | None):
        """Show the run's progress on the Tune tab (re-attaches to a running job)."""
        if not name:
            raise gr.Error("No run selected. Pick a run in the list first.")
        return name, gr.Tabs(selected="tune"), gr.Timer(active=True)

    def resume_run(name: str | None):
        """Continue a stopped or failed run from its last checkpoint and follow it."""
        if not name:
            raise gr.Error("No run selected. Pick a stopped run in the list first.")
        try:
            jobs.resume(name)
        except JobError as error:
            raise gr.Error(str(error)) from error
        gr.Info(f"Resumed {name} from its last checkpoint.")
        return name, gr.Tabs(selected="tune"), gr.Timer(active=True)

    def download_artifacts(name: str | None):
        """Zip the run's adapter or trained weights, proxy and config for download."""
        if not name:
            raise gr.Error("No run selected. Pick a completed run in the list first.")
        try:
            path = run_index.zip_artifacts(jobs, name)
        except JobError as error:
            raise gr.Error(str(error)) from error
        return gr.File(value=str(path), visible=True)

    def ask_delete(name: str | None):
        if not name:
            raise gr.Error("No run selected. Pick the run to delete in the list first.")
        text = f"Delete **{name}** with its checkpoints, artifacts and log? This cannot be undone."
        return gr.Row(visible=True), text

    def delete_run(name: str | None):
        """Delete a run that is not training (after the confirmation in the page)."""
        if not name:
            raise gr.Error("No run selected. Pick the run to delete in the list first.")
        try:
            run_index.delete_run(jobs, name)
        except JobError as error:
            raise gr.Error(str(error)) from error
        gr.Info(f"Deleted {name}.")
        table, picker = list_runs(None)
        return gr.Row(visible=False), table, picker

    list_outputs = [tab.table, tab.run_select]
    tab.refresh_button.click(list_runs, [tab.run_select], list_outputs, api_name="list_runs")
    demo.load(list_runs, [tab.run_select], list_outputs, api_visibility="private")
    tab_item.select(list_runs, [tab.run_select], list_outputs, api_visibility="private")
    tab.run_select.change(show_run, [tab.run_select], [tab.details], api_name="show_run")
    follow_outputs = [shared.followed_run, shared.tabs, tune_tab.timer]
    tab.follow_button.click(follow_run, [tab.run_select], follow_outputs, api_name="follow_run")
    tab.resume_button.click(resume_run, [tab.run_select], follow_outputs, api_name="resume_run",
                            concurrency_id="training-control")
    tab.download_button.click(download_artifacts, [tab.run_select], [tab.download_file],
                              api_name="download_artifacts")
    tab.delete_button.click(ask_delete, [tab.run_select], [tab.confirm_row, tab.confirm_text],
                            api_visibility="private")
    tab.cancel_delete_button.click(lambda: gr.Row(visible=False), None, [tab.confirm_row], api_visibility="private")
    tab.confirm_delete_button.click(delete_run, [tab.run_select], [tab.confirm_row, *list_outputs],
                                    api_name="delete_run", concurrency_id="training-control")
