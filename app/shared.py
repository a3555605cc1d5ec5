"""Components that several tabs read or write."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr


@dataclass
class SharedState:
    tabs: gr.Tabs
    dataset: gr.State
    """The chosen Dataset as a dict (see app.datasets.Dataset), or None."""
    samples: gr.State
    """The ingested samples of that dataset, for the split preview and auto-generated questions."""
    followed_run: gr.State
    """Name of the run whose progress the Tune tab shows."""
    quiz_fraction: gr.Slider | None = None
