"""Serve the app with the safety settings applied."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import gradio as gr

from app.blocks import build_blocks
from app.settings import AppSettings, PortInUseError


logger = logging.getLogger(__name__)

CSS_PATH = Path(__file__).resolve().parent.parent / "assets" / "app.css"


def serve(settings: AppSettings, **launch_options: Any) -> gr.Blocks:
    """Build and launch the app; `launch_options` override gradio launch arguments (tests pass prevent_thread_lock).

    Raises PortInUseError when the port is taken. Gradio's own start-up lines
    (including its share-link hint) are silenced with `quiet`; the app logs
    the local URL instead.
    """
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
        "quiet": True,
    }
    options.update(launch_options)
    block = not options.pop("prevent_thread_lock", False)
    try:
        demo.launch(prevent_thread_lock=True, **options)
    except OSError as error:
        # gradio 6.31 raises a bare OSError with this text when it cannot bind the port.
        if "Cannot find empty port" not in str(error):
            raise
        raise PortInUseError(
            f"Port {settings.port} on {settings.host} is already in use, for example by another copy of this app. "
            f"Stop that program or choose another port with --port (for example --port {settings.port + 1})."
        ) from error
    logger.info(
        "Running on local URL: %s (workspace %s, login %s, share link %s)",
        demo.local_url,
        settings.workspace,
        "required" if settings.auth else "off",
        demo.share_url or "off",
    )
    if block:
        demo.block_thread()
    return demo
