"""Runs tab: every run of the workspace, with follow, resume, download and delete."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from app.run_index import RUN_COLUMN_WIDTHS, RUN_COLUMNS


@dataclass
class RunsTab:
    refresh_button: gr.Button
    table: gr.Dataframe
    run_select: gr.Dropdown
    details: gr.Markdown
    follow_button: gr.Button
    resume_button: gr.Button
    download_button: gr.Button
    delete_button: gr.Button
    download_file: gr.File
    confirm_row: gr.Row
    confirm_text: gr.Markdown
    confirm_delete_button: gr.Button
    cancel_delete_button: gr.Button


def render_runs_tab() -> RunsTab:
    gr.Markdown("Every run in the workspace. Runs keep training when this page or the app is closed.")
    refresh_button = gr.Button("Refresh", size="sm")
    table = gr.Dataframe(headers=RUN_COLUMNS, interactive=False, wrap=True, column_widths=RUN_COLUMN_WIDTHS,
                         label="Runs", elem_id="runs-table")
    with gr.Row():
        run_select = gr.Dropdown([], value=None, label="Run", scale=2, elem_id="run-select", allow_custom_value=True)
    details = gr.Markdown()
    with gr.Row():
        follow_button = gr.Button("Show progress on the Tune tab")
        resume_button = gr.Button("Resume", interactive=False, elem_id="resume-run")
        download_button = gr.Button("Download artifacts (zip)")
        delete_button = gr.Button("Delete…", variant="stop")
    download_file = gr.File(label="Download", interactive=False, visible=False)
    with gr.Row(visible=False) as confirm_row:
        confirm_text = gr.Markdown()
        confirm_delete_button = gr.Button("Delete permanently", variant="stop")
        cancel_delete_button = gr.Button("Cancel")
    return RunsTab(refresh_button=refresh_button, table=table, run_select=run_select, details=details,
                   follow_button=follow_button, resume_button=resume_button, download_button=download_button,
                   delete_button=delete_button, download_file=download_file, confirm_row=confirm_row,
                   confirm_text=confirm_text, confirm_delete_button=confirm_delete_button,
                   cancel_delete_button=cancel_delete_button)
