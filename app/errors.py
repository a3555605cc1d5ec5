"""Turn an ordinary user error into a gr.Error that the app log records as one line."""

from __future__ import annotations

import logging

import gradio as gr


logger = logging.getLogger("app.user_errors")


def user_error(message: str) -> gr.Error:
    """Log `message` as a one-line warning and return a gr.Error for it whose traceback gradio does not print.

    Use it for mistakes the user can fix (missing input, invalid setting,
    busy job); unexpected failures should go through `logger.exception`.
    """
    logger.warning("%s", message)
    return gr.Error(message, print_exception=False)
