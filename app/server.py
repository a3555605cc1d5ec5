"""Serve the app with the safety settings applied."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import gradio as gr

from app.blocks import build_blocks
from app.settings import AppSettings


logger = logging.getLogger(__name__)

CSS_PATH = Path(__file__).resolve().parent.parent / "assets" / "app.css"


def serve(settings: AppSettings, **launch_options: Any) -> gr.Blocks:
    """Build and launch the app; `launch_options` override gradio launch arguments (tests pass prevent_thread_lock)."""
    demo = build_blocks(settings)
    demo.queue(default_concurrency_limit=1)
    options: dict[str, Any] = {
        "server_name": settings.host,
        "server_port": settings.port,
        "auth": list(settings.auth) or None,
        "share": settings.share,
        "max_file_size": settings.max_file_size,
        "show_error": True,
        "enable_monitoring": False,
        "ssr_mode": False,
        "mcp_server": False,
        "css_paths": [CSS_PATH],
        "theme": gr.themes.Soft(),
        "footer_links": ["gradio"],
    }
    options.update(launch_options)
    logger.info(
        "Serving on http://%s:%d with workspace %s (login %s, share link %s)",
        settings.host,
        settings.port,
        settings.workspace,
        "required" if settings.auth else "off",
        "on" if settings.share else "off",
    )
    demo.launch(**options)
    return demo
