"""Assemble the tabs into one gr.Blocks; each tab's layout and events live in app/tabs/."""

from __future__ import annotations

import logging

import gradio as gr

from app.context import AppContext
from app.settings import AppSettings
from app.shared import SharedState
from app.tabs.compare import render_compare_tab, wire_compare_tab
from app.tabs.data import render_data_tab, wire_data_tab
from app.tabs.runs import render_runs_tab, wire_runs_tab
from app.tabs.tune import render_tune_tab, wire_tune_tab


logger = logging.getLogger(__name__)

TITLE = "Instruction-free tuning"
# Every hour, delete gradio's temporary files older than a day.
DELETE_CACHE = (3600, 86400)


def build_blocks(settings: AppSettings, context: AppContext | None = None) -> gr.Blocks:
    from engine.config import RunConfig

    context = context or AppContext.create(settings)
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=DELETE_CACHE) as demo:
        gr.Markdown(
            f"# {TITLE}\n"
            "Tune a vision-language model on your images and their reports, without writing instructions, "
            "then compare it with the base model. Everything runs on this machine."
        )
        dataset, samples, followed_run = gr.State(None), gr.State([]), gr.State(None)
        with gr.Tabs() as tabs:
            shared = SharedState(tabs=tabs, dataset=dataset, samples=samples, followed_run=followed_run)
            with gr.Tab("1. Data", id="data"):
                data_tab = render_data_tab()
            shared.quiz_fraction = data_tab.quiz_fraction
            with gr.Tab("2. Tune", id="tune"):
                tune_tab = render_tune_tab(RunConfig())
            with gr.Tab("3. Compare", id="compare") as compare_tab_item:
                compare_tab = render_compare_tab()
            with gr.Tab("4. Runs", id="runs") as runs_tab_item:
                runs_tab = render_runs_tab()

        wire_data_tab(demo, data_tab, shared, context)
        wire_tune_tab(demo, tune_tab, shared, context)
        wire_runs_tab(demo, runs_tab_item, runs_tab, tune_tab, shared, context)
        wire_compare_tab(demo, compare_tab_item, compare_tab, shared, context)

        def end_session(request: gr.Request) -> None:
            context.end_session(request.session_hash)

        demo.unload(end_session)
    demo.app_context = context
    return demo
