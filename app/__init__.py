"""The local web app over the `engine` package.

`build_app` and `launch` import gradio lazily, after `prepare_environment`
has pointed gradio's temporary folder into the workspace and switched
analytics off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.settings import AppSettings, prepare_environment


if TYPE_CHECKING:
    import gradio as gr


def build_app(settings: AppSettings) -> gr.Blocks:
    """Build the Blocks of the app for `settings` without starting a server."""
    prepare_environment(settings)
    from app.blocks import build_blocks

    return build_blocks(settings)


def launch(settings: AppSettings, **launch_options: Any) -> gr.Blocks:
    """Build the app and serve it; blocks unless `prevent_thread_lock=True` is passed."""
    prepare_environment(settings)
    from app.server import serve

    return serve(settings, **launch_options)


__all__ = ["AppSettings", "build_app", "launch"]
