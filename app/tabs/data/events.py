"""Data tab events: load the sample data or an upload, and show what ingestion made of it."""

from __future__ import annotations

import logging
from pathlib import Path

import gradio as gr
import pandas as pd

from app import datasets
from app.context import AppContext
from app.errors import user_error
from app.shared import SharedState
from app.tabs.data.layout import DataTab


logger = logging.getLogger(__name__)

COUNT_COLUMNS = ["Status", "Reason", "Files"]
PROBLEM_COLUMNS = ["File", "Status", "Reason and what to do"]


def _ingestion_view(result, dataset: datasets.Dataset, quiz_fraction: float) -> tuple:
    report = result.report
    skipped = report.totals["skipped"] + report.totals["error"]
    if skipped:
        gr.Warning(f"{skipped} of {report.totals['files']} files were skipped or rejected; see the list on the Data tab.")
    return (
        dataset.to_state(),
        result.samples,
        datasets.summary_markdown(report, dataset),
        pd.DataFrame(datasets.count_rows(report), columns=COUNT_COLUMNS),
        pd.DataFrame(datasets.problem_rows(report), columns=PROBLEM_COLUMNS),
        datasets.preview_items(result.samples, report),
        datasets.split_text(result.samples, quiz_fraction),
    )


def _unexpected(error: Exception, what: str) -> gr.Error:
    # The UI boundary: an ingestion bug must reach the user as a message, with the traceback in the log.
    logger.exception("Ingestion of %s failed", what)
    return gr.Error(
        f"Reading {what} failed unexpectedly ({type(error).__name__}: {error}). "
        "This is a bug in the ingestion step; the app log has the details to report."
    )


def _rejection_view(message: str) -> tuple:
    gr.Warning("The upload was rejected; the Data tab says why.")
    return (
        None,
        [],
        f"**Upload rejected.** {message}",
        pd.DataFrame(columns=COUNT_COLUMNS),
        pd.DataFrame([["(whole upload)", "rejected", message]], columns=PROBLEM_COLUMNS),
        [],
        "",
    )


def wire_data_tab(demo: gr.Blocks, tab: DataTab, shared: SharedState, context: AppContext) -> None:
    settings = context.settings
    outputs = [shared.dataset, shared.samples, tab.summary, tab.counts, tab.problems, tab.gallery, tab.split_info]

    def load_sample_data(quiz_fraction: float):
        """Ingest the bundled sample data and show its summary and preview."""
        try:
            result = datasets.ingest_path(datasets.SAMPLE_DATA_DIR, settings)
        except datasets.IngestionUnavailableError as error:
            raise user_error(str(error)) from error
        except Exception as error:
            raise _unexpected(error, "the sample data") from error
        dataset = datasets.describe_result(result, str(datasets.SAMPLE_DATA_DIR), "the bundled sample data")
        logger.info("Loaded the sample data: %d samples", dataset.num_samples)
        return _ingestion_view(result, dataset, quiz_fraction)

    def ingest_upload(paths: list[Path], quiz_fraction: float, request: gr.Request) -> tuple:
        """Check uploaded files or one zip, keep them for training and return the Data tab's outputs."""
        if not paths:
            raise user_error("No files uploaded. Choose a folder, some files, or a .zip archive first.")
        context.remember_uploads(request.session_hash, paths)
        try:
            datasets.check_upload_size(paths, settings.max_upload_total)
        except datasets.UploadTooLargeError as error:
            raise user_error(str(error)) from error
        try:
            ingest = datasets.import_ingest()
            result = datasets.ingest_uploaded_files(paths, settings)
        except datasets.IngestionUnavailableError as error:
            raise user_error(str(error)) from error
        except ingest.IngestError as error:
            logger.warning("Rejected an upload of %d files: %s", len(paths), error)
            return _rejection_view(str(error))
        except Exception as error:
            raise _unexpected(error, f"an upload of {len(paths)} files") from error

        staged = datasets.stage_upload(paths, context.session_dir(request.session_hash))
        label = f"an upload of {len(dict.fromkeys(paths))} file(s)"
        dataset = datasets.describe_result(result, str(staged), label)
        logger.info("Ingested an upload of %d files: %d samples", len(paths), dataset.num_samples)
        return _ingestion_view(result, dataset, quiz_fraction)

    def ingest_component(value: list[str] | None, previous: list[str] | None, quiz_fraction: float,
                         request: gr.Request) -> tuple:
        """Ingest the latest upload of one component, replacing whatever was uploaded before.

        The component's own upload button adds files to the ones it already
        holds, so only the files added since the last upload are ingested,
        and the component is set to show just those.
        """
        current = datasets.latest_upload(value or [], previous or [])
        outputs = ingest_upload([Path(p) for p in current], quiz_fraction, request)
        return (*outputs, gr.File(value=current), current, gr.File(value=None), [])

    def clear_upload() -> tuple:
        """Forget the data of a cleared upload, so no earlier summary or rejection stays on the page."""
        return (None, [], "No data chosen yet.", pd.DataFrame(columns=COUNT_COLUMNS),
                pd.DataFrame(columns=PROBLEM_COLUMNS), [], "", [])

    def show_split(samples: list, quiz_fraction: float) -> str:
        return datasets.split_text(samples or [], quiz_fraction)

    tab.sample_button.click(load_sample_data, [tab.quiz_fraction], outputs, api_name="load_sample_data")
    if settings.preload_sample_data:
        demo.load(load_sample_data, [tab.quiz_fraction], outputs, api_visibility="private")
    # Each upload is ingested once, when it arrives, and replaces the data of any earlier upload.
    folder_seen, files_seen = gr.State([]), gr.State([])
    tab.folder_upload.upload(
        ingest_component, [tab.folder_upload, folder_seen, tab.quiz_fraction],
        [*outputs, tab.folder_upload, folder_seen, tab.files_upload, files_seen], api_name="ingest_folder",
    )
    tab.files_upload.upload(
        ingest_component, [tab.files_upload, files_seen, tab.quiz_fraction],
        [*outputs, tab.files_upload, files_seen, tab.folder_upload, folder_seen], api_name="ingest_files",
    )
    tab.folder_upload.clear(clear_upload, None, [*outputs, folder_seen], api_visibility="private")
    tab.files_upload.clear(clear_upload, None, [*outputs, files_seen], api_visibility="private")
    tab.quiz_fraction.release(show_split, [shared.samples, tab.quiz_fraction], [tab.split_info], api_name="show_split")
