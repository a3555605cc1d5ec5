"""Data tab: choose the data, read the ingestion summary, preview pairs, set the quiz split."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr


@dataclass
class DataTab:
    sample_button: gr.Button
    folder_upload: gr.File
    files_upload: gr.File
    summary: gr.Markdown
    quiz_fraction: gr.Slider
    split_info: gr.Markdown
    counts: gr.Dataframe
    problems: gr.Dataframe
    gallery: gr.Gallery


def render_data_tab() -> DataTab:
    gr.Markdown(
        "Choose the images and reports to tune on. Each image needs a report: a text file with the same name, "
        "a manifest (CSV), or a `report.txt` in its folder. A browser folder upload loses the folder names, "
        "so upload a **.zip** when reports are paired by folder."
    )
    with gr.Row():
        with gr.Column(scale=1):
            sample_button = gr.Button("Use the bundled sample data (40 white-blood-cell images)", variant="secondary")
            # No file_types here: a batch with extensionless DICOM files would be rejected whole.
            folder_upload = gr.File(file_count="directory", label="Upload a folder")
            files_upload = gr.File(file_count="multiple", label="Or upload files or one .zip archive")
            gr.Markdown("Each upload is checked as soon as it arrives and replaces the data of any earlier one.",
                        elem_classes=["model-note"])
        with gr.Column(scale=1):
            summary = gr.Markdown("No data chosen yet.", elem_id="ingest-summary")
            quiz_fraction = gr.Slider(
                minimum=0.0,
                maximum=0.5,
                value=0.2,
                step=0.05,
                label="Quiz share",
                info="Share of images held out as the quiz set: never tuned on, used on the Compare tab.",
            )
            split_info = gr.Markdown()
    counts = gr.Dataframe(
        headers=["Status", "Reason", "Files"],
        datatype=["str", "str", "number"],
        interactive=False,
        label="Files per status and reason",
        elem_id="ingest-counts",
    )
    problems = gr.Dataframe(
        headers=["File", "Status", "Reason and what to do"],
        datatype=["str", "str", "str"],
        interactive=False,
        wrap=True,
        max_height=360,
        label="Skipped and rejected files",
        elem_id="ingest-problems",
    )
    gallery = gr.Gallery(label="Preview of decoded images with their reports", columns=6, height=420, object_fit="contain")
    return DataTab(
        sample_button=sample_button,
        folder_upload=folder_upload,
        files_upload=files_upload,
        summary=summary,
        quiz_fraction=quiz_fraction,
        split_info=split_info,
        counts=counts,
        problems=problems,
        gallery=gallery,
    )
