"""Compare tab: score base and tuned on quiz questions, and ask both models about one image."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from app.comparison_view import ACCURACY_COLUMNS, ATTRIBUTE_COLUMNS, EDIT_COLUMNS, QUESTION_COLUMNS


@dataclass
class CompareTab:
    run_select: gr.Dropdown
    refresh_button: gr.Button
    question_source: gr.Radio
    question_file: gr.File
    question_table: gr.Dataframe
    show_questions_button: gr.Button
    scoring: gr.Radio
    limit: gr.Number
    run_button: gr.Button
    summary: gr.Markdown
    accuracy: gr.Dataframe
    radar: gr.HTML
    attributes: gr.Dataframe
    mcnemar: gr.Markdown
    grounding: gr.Markdown
    questions: gr.Dataframe
    export_file: gr.File
    chat_image: gr.Image
    chat_instruction: gr.Textbox
    chat_max_tokens: gr.Number
    chat_button: gr.Button
    base_reply: gr.Textbox
    tuned_reply: gr.Textbox


def _render_question_inputs() -> dict:
    with gr.Row():
        run_select = gr.Dropdown([], value=None, label="Run", allow_custom_value=True, scale=3,
                                 elem_id="compare-run")
        refresh_button = gr.Button("Refresh runs", size="sm", scale=1)
    question_source = gr.Radio(
        [("Generated from the quiz images' attribute reports", "auto"), ("A question file (CSV)", "file"),
         ("The table below", "table")],
        value="auto",
        label="Questions",
    )
    question_file = gr.File(label="Question file: columns image, question, options (A | B | …), answer, attribute",
                            file_types=[".csv", ".jsonl", ".json"], visible=False)
    with gr.Accordion("Edit questions", open=False):
        show_questions_button = gr.Button("Fill the table from the generated questions or the file", size="sm")
        question_table = gr.Dataframe(pd.DataFrame(columns=EDIT_COLUMNS), interactive=True, wrap=True, max_height=320,
                                      label="Questions (choose 'The table below' to use your edits)")
    with gr.Row():
        scoring = gr.Radio(
            [("Option likelihood and parsed reply", "both"), ("Option likelihood", "likelihood"),
             ("Parsed reply", "parse")],
            value="both",
            label="Scoring",
        )
        limit = gr.Number(0, precision=0, minimum=0, label="Questions to score (0: all)")
    run_button = gr.Button("Compare base and tuned", variant="primary", elem_id="run-comparison")
    return {"run_select": run_select, "refresh_button": refresh_button, "question_source": question_source,
            "question_file": question_file, "question_table": question_table,
            "show_questions_button": show_questions_button, "scoring": scoring, "limit": limit,
            "run_button": run_button}


def _render_results() -> dict:
    summary = gr.Markdown(elem_id="comparison-summary")
    accuracy = gr.Dataframe(headers=ACCURACY_COLUMNS, interactive=False, label="Accuracy", elem_id="accuracy-table")
    with gr.Row():
        radar = gr.HTML(label="Accuracy per attribute", elem_id="attribute-radar")
        attributes = gr.Dataframe(headers=ATTRIBUTE_COLUMNS, interactive=False, label="Accuracy per attribute",
                                  max_height=420, wrap=True, column_widths=["30%", "26%", "14%", "14%", "16%"])
    with gr.Row():
        mcnemar = gr.Markdown()
        grounding = gr.Markdown()
    questions = gr.Dataframe(headers=QUESTION_COLUMNS, interactive=False, wrap=True, max_height=480,
                             label="Per question: each model's raw reply, and its choice and correctness "
                                   "under each scoring")
    export_file = gr.File(label="Results as CSV (both scorings per model)", interactive=False)
    return {"summary": summary, "accuracy": accuracy, "radar": radar, "attributes": attributes, "mcnemar": mcnemar,
            "grounding": grounding, "questions": questions, "export_file": export_file}


def _render_chat() -> dict:
    gr.Markdown("### Ask both models\nOne image, one instruction: the base and the tuned model answer in turn.")
    with gr.Row():
        chat_image = gr.Image(type="pil", label="Image", height=280)
        with gr.Column():
            chat_instruction = gr.Textbox("Describe the image.", label="Instruction", lines=2)
            chat_max_tokens = gr.Number(128, precision=0, minimum=1, maximum=1024, label="Maximum new tokens")
            chat_button = gr.Button("Ask both models", variant="primary")
    with gr.Row():
        base_reply = gr.Textbox(label="Base model", lines=6, interactive=False)
        tuned_reply = gr.Textbox(label="Tuned model", lines=6, interactive=False)
    return {"chat_image": chat_image, "chat_instruction": chat_instruction, "chat_max_tokens": chat_max_tokens,
            "chat_button": chat_button, "base_reply": base_reply, "tuned_reply": tuned_reply}


def render_compare_tab() -> CompareTab:
    gr.Markdown(
        "Score the base model and the tuned model of a run on the same multiple-choice questions about the "
        "quiz images, which were held out from tuning."
    )
    parts = _render_question_inputs()
    parts.update(_render_results())
    parts.update(_render_chat())
    return CompareTab(**parts)
