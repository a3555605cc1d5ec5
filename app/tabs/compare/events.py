"""Compare tab events: pick questions, run the comparison, export it, and chat with both models."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import gradio as gr
import pandas as pd

from app import comparison_view, run_index
from app.comparators import ComparisonUnavailableError
from app.context import AppContext
from app.errors import user_error
from app.shared import SharedState
from app.tabs.compare.layout import CompareTab
from app.training_jobs import JobError


logger = logging.getLogger(__name__)

# gradio injects a fresh tracker for a parameter whose default is a gr.Progress instance.
PROGRESS = gr.Progress()


# The engine's progress stage reads "<variant> model, <condition> image", where the condition is
# "image" (the question's own image) or "grey" (the grounding control).
STAGE_PATTERN = re.compile(r"^(?P<variant>\w+) model, (?P<condition>image|grey) image$")


def progress_label(stage: str) -> str:
    """Return the progress text for an engine stage, e.g. "tuned model, grey images (grounding control)"."""
    match = STAGE_PATTERN.match(stage)
    if match is None:
        return stage
    images = "real images" if match["condition"] == "image" else "grey images (grounding control)"
    return f"{match['variant']} model, {images}"


def _load_comparator(context: AppContext, run_name: str | None):
    try:
        return context.comparators.get(run_name)
    except (JobError, ComparisonUnavailableError) as error:
        raise user_error(str(error)) from error
    except (OSError, ValueError, RuntimeError) as error:
        logger.error("Loading run %s for comparison failed: %s", run_name, error)
        raise user_error(f"Could not load the models of run {run_name!r}: {error}") from error


def _questions(context: AppContext, comparator, source: str, question_file: str | None,
               table: pd.DataFrame | None, session_hash: str | None):
    """Return (questions, warnings, report name) from the chosen source; raises gr.Error with the cause."""
    try:
        if source == "auto":
            questions, warnings = comparator.quiz_questions()
            return questions, warnings, "quiz-attributes"
        if source == "file":
            if not question_file:
                raise user_error("No question file uploaded. Upload a CSV or choose another question source.")
            stem = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(question_file).stem)[:40] or "questions"
            return comparator.load_questions(Path(question_file)), [], f"file-{stem}"
        if table is None or table.empty or not table.iloc[:, 0].astype(str).str.strip().any():
            raise user_error("The question table is empty. Fill it (or use generated questions) first.")
        path = context.session_dir(session_hash) / "question-table.csv"
        table.to_csv(path, index=False, columns=comparison_view.EDIT_COLUMNS)
        return comparator.load_questions(path), [], "question-table"
    except gr.Error:
        raise
    except (ValueError, FileNotFoundError) as error:
        raise user_error(f"Could not use these questions: {error}") from error


def wire_compare_tab(demo: gr.Blocks, tab_item: gr.Tab, tab: CompareTab, shared: SharedState,
                     context: AppContext) -> None:
    jobs, settings = context.jobs, context.settings

    def list_compare_runs(selected: str | None):
        names = [name for name in jobs.run_names()
                 if (jobs.settings.runs_dir / name / "artifacts" / "run_info.json").is_file()]
        value = selected if selected in names else None
        if value is None and names:
            value = names[0]
        return gr.Dropdown(choices=names, value=value)

    def show_questions(run_name: str | None, source: str, question_file: str | None, request: gr.Request):
        """Fill the editable table with the generated questions or those of the uploaded file."""
        comparator = _load_comparator(context, run_name)
        questions, _, _ = _questions(context, comparator, "file" if source == "file" else "auto", question_file,
                                     None, request.session_hash)
        return comparison_view.questions_to_edit_frame(questions)

    def run_comparison(run_name: str | None, source: str, question_file: str | None, table: pd.DataFrame | None,
                       scoring: str, limit: float | None, request: gr.Request, progress=PROGRESS):
        """Score base and tuned on the same questions; return accuracy, per-attribute, tests and replies."""
        comparator = _load_comparator(context, run_name)
        questions, warnings, name = _questions(context, comparator, source, question_file, table,
                                               request.session_hash)

        def report_progress(done: int, total: int, stage: str) -> None:
            progress(done / max(total, 1), desc=progress_label(stage))

        try:
            report = comparator.evaluate(questions, scoring=scoring, limit=int(limit or 0) or None,
                                         progress_callback=report_progress, name=name, warnings=warnings)
        except ValueError as error:
            raise user_error(f"The comparison could not run: {error}") from error
        comparison_view.write_summary(report, jobs.folder(run_name).root, run_index.COMPARISON_SUMMARY_NAME)
        per_question = comparison_view.question_frame(report)
        export = settings.exports_dir / f"{run_name}-{name}.csv"
        comparison_view.question_frame(report, csv=True).to_csv(export, index=False)
        logger.info("Compared run %s on %d questions", run_name, len(report.items))
        return (comparison_view.summary_markdown(report), comparison_view.accuracy_frame(report),
                comparison_view.radar_svg(report), comparison_view.attribute_frame(report),
                comparison_view.mcnemar_markdown(report), comparison_view.grounding_markdown(report),
                per_question, str(export))

    def prepare_comparison(run_name: str | None) -> None:
        """Load the run's models and data ahead of the first comparison, unless a training job is running.

        Loading is the slow part of a first comparison. It is skipped while a
        job trains, so no second copy of a model sits next to training.
        Failures are only logged, because the Compare button reports them.
        """
        if not run_name or jobs.active_run() is not None:
            return
        try:
            comparator = context.comparators.get(run_name)
            comparator.dataset_samples()
        except Exception as error:  # noqa: BLE001 - reported again, with its message, when the user compares
            logger.warning("Preloading run %s for comparison failed: %s", run_name, error)

    def show_question_file(source: str):
        return gr.File(visible=source == "file")

    def chat(run_name: str | None, image, instruction: str, max_new_tokens: float | None):
        """Stream the base model's reply, then the tuned model's, to one instruction about one image."""
        if image is None:
            raise user_error("No image given. Upload or paste an image first.")
        if not (instruction or "").strip():
            raise user_error("The instruction is empty. Type a question or request about the image.")
        comparator = _load_comparator(context, run_name)
        replies = {"base": "", "tuned": ""}
        for variant in ("base", "tuned"):
            try:
                for text in comparator.chat(image, instruction, which=variant, max_new_tokens=int(max_new_tokens or 128)):
                    replies[variant] = text
                    yield replies["base"], replies["tuned"]
            except (ValueError, RuntimeError) as error:
                raise user_error(f"Generation with the {variant} model failed: {error}") from error
        yield replies["base"], replies["tuned"]

    tab.refresh_button.click(list_compare_runs, [tab.run_select], [tab.run_select], api_name="list_compare_runs")
    demo.load(list_compare_runs, [tab.run_select], [tab.run_select], api_visibility="private")
    tab_item.select(list_compare_runs, [tab.run_select], [tab.run_select], api_visibility="private").then(
        prepare_comparison, [tab.run_select], None, api_visibility="private", concurrency_id="model",
        show_progress="hidden",
    )
    tab.run_select.input(prepare_comparison, [tab.run_select], None, api_visibility="private",
                         concurrency_id="model", show_progress="hidden")
    tab.question_source.change(show_question_file, [tab.question_source], [tab.question_file],
                               api_visibility="private")
    tab.show_questions_button.click(
        show_questions, [tab.run_select, tab.question_source, tab.question_file], [tab.question_table],
        api_name="show_questions", concurrency_id="model",
    )
    tab.run_button.click(
        run_comparison,
        [tab.run_select, tab.question_source, tab.question_file, tab.question_table, tab.scoring, tab.limit],
        [tab.summary, tab.accuracy, tab.radar, tab.attributes, tab.mcnemar, tab.grounding, tab.questions,
         tab.export_file],
        api_name="run_comparison",
        concurrency_id="model",
    )
    tab.chat_button.click(
        chat, [tab.run_select, tab.chat_image, tab.chat_instruction, tab.chat_max_tokens],
        [tab.base_reply, tab.tuned_reply], api_name="chat", concurrency_id="model",
    )
