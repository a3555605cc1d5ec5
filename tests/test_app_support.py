"""Helpers for the app tests: launch the app on a free loopback port, wait for conditions, clean up runs."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from app.settings import AppSettings
from app.training_jobs import process_alive
from engine.runs.folder import RunFolder


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition: Callable[[], Any], timeout: float = 180.0, interval: float = 0.5, what: str = "condition"):
    """Call `condition` until it returns a truthy value and return that value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout:.0f} s waiting for {what}; last value: {value!r}")
        time.sleep(interval)


def stop_all_runs(settings: AppSettings, timeout: float = 90.0) -> None:
    """Ask every live training process of the workspace to stop, then end the ones that do not (by pid)."""
    pids = {}
    for folder in settings.runs_dir.glob("*/"):
        record_path = folder / "launch.json"
        if not record_path.is_file():
            continue
        pid = json.loads(record_path.read_text())["pid"]
        if process_alive(pid):
            RunFolder(folder).request_stop()
            pids[folder.name] = pid
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        pids = {name: pid for name, pid in pids.items() if process_alive(pid)}
        for name in pids:
            # The engine deletes a STOP file left from before its start, so renew it until the run ends.
            RunFolder(settings.runs_dir / name).request_stop()
        time.sleep(0.5)
    for pid in pids.values():
        os.kill(pid, signal.SIGTERM)


@contextmanager
def running_app(workspace: Path, **overrides: Any) -> Iterator[tuple[Any, str, AppSettings]]:
    """Serve the app on a free port with `workspace`; yield (demo, url, settings) and close it afterwards."""
    from app import launch

    settings = AppSettings(workspace=workspace, port=free_port(), **overrides)
    demo = launch(settings, prevent_thread_lock=True, quiet=True)
    try:
        yield demo, f"http://127.0.0.1:{settings.port}/", settings
    finally:
        demo.close()
