"""Start, follow, stop and resume training processes; no gradio here.

Each job is `python -m engine train` in its own process session, so closing
the browser tab or restarting the app never stops it. The child's stdout and
stderr go to `<run>/console.log`, because an undrained pipe would block
training once its buffer fills. Everything the UI shows is read back from the run
folder, so a restarted app re-attaches by reading the same files.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from app.settings import AppSettings
from engine.runs.folder import RunFolder


if TYPE_CHECKING:
    from engine.config import RunConfig


logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONSOLE_LOG_NAME = "console.log"
LAUNCH_RECORD_NAME = "launch.json"
RUN_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
ACTIVE_STATUSES = ("created", "running")
# A tqdm progress bar: "<percent>%|<bar>| <done>/<total> [<times>]".
PROGRESS_BAR_PATTERN = re.compile(r"\d+%\|.*\|\s*\d+/\d+")


class JobError(RuntimeError):
    """Raised when a job cannot be started, stopped or resumed; the message states the cause and the fix."""


@dataclass
class JobState:
    """State of one run as the UI shows it, derived from its folder and process."""

    name: str
    status: str
    """created, running, completed, stopped or failed; `failed` also when the process died silently."""
    stage: str | None = None
    error: str | None = None
    total_steps: int | None = None
    pid: int | None = None
    alive: bool = False
    demo_model: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status not in ACTIVE_STATUSES


@dataclass
class MetricsFollower:
    """Incremental reader of one run's `metrics.jsonl`, shared by every browser session."""

    folder: RunFolder
    offset: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def refresh(self) -> list[dict[str, Any]]:
        """Read records appended since the last call and return all records so far."""
        with self.lock:
            try:
                new_records, self.offset = self.folder.read_metrics(self.offset)
            except json.JSONDecodeError as error:
                logger.error("Skipping unreadable metrics in %s: %s", self.folder.metrics_path, error)
                new_records = []
            self.records.extend(record for record in new_records if "loss" in record)
            return list(self.records)


def process_alive(pid: int | None) -> bool:
    """Return True if `pid` is a live process that runs the engine (not a zombie or a reused pid)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc") / str(pid)
    if not proc.exists():
        return True
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes()
    except (OSError, IndexError):
        return False
    return state != "Z" and b"engine" in cmdline


@functools.cache
def gpu_count() -> int:
    # Imported here because torch costs seconds at app start-up.
    import torch

    return torch.cuda.device_count()


def train_command(config_path: Path | None, run_dir: Path, resume: bool) -> list[str]:
    """Return the argv of a training process; `accelerate launch` only with more than one GPU."""
    arguments = ["-m", "engine", "train", "--out", str(run_dir)]
    if config_path is not None:
        arguments += ["--config", str(config_path)]
    if resume:
        arguments.append("--resume")
    gpus = gpu_count()
    if gpus > 1:
        # NOTE: the multi-GPU path has not been run by the app's tests (CPU-only machine).
        return [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(gpus), *arguments]
    return [sys.executable, *arguments]


class TrainingJobs:
    """All training runs of one workspace; at most one runs at a time."""

    def __init__(self, settings: AppSettings) -> None:
        self.settings = settings
        self._processes: dict[str, subprocess.Popen] = {}
        self._followers: dict[str, MetricsFollower] = {}
        self._stop_requested: set[str] = set()
        self._model_names: dict[str, str | None] = {}
        self._lock = threading.Lock()

    # --- lookup -------------------------------------------------------------

    def folder(self, name: str) -> RunFolder:
        if not RUN_NAME_PATTERN.match(name or ""):
            raise JobError(
                f"Invalid run name {name!r}: use 1 to 80 letters, digits, '.', '_' or '-', starting with a letter or digit."
            )
        return RunFolder(self.settings.runs_dir / name)

    def run_names(self) -> list[str]:
        """Return the names of all run folders, the most recently started first (not-started ones last)."""
        runs_dir = self.settings.runs_dir
        if not runs_dir.is_dir():
            return []
        names = [p.name for p in runs_dir.iterdir() if p.is_dir() and RUN_NAME_PATTERN.match(p.name)]
        return sorted(names, key=lambda name: (self.started(name) or 0.0, name), reverse=True)

    def config_path(self, name: str) -> Path:
        return self.settings.runs_dir / f"{name}.yaml"

    def state(self, name: str) -> JobState:
        folder = self.folder(name)
        status = folder.read_status()
        launch = _read_json(folder.root / LAUNCH_RECORD_NAME)
        pid = status.get("pid") if status.get("status") == "running" else launch.get("pid")
        alive = self._alive(name, pid)
        state = JobState(
            name=name,
            status=status.get("status", "unknown"),
            stage=status.get("stage"),
            error=status.get("error"),
            total_steps=status.get("total_steps"),
            pid=pid,
            alive=alive,
            demo_model=bool(status.get("demo_model")) or self._model_name(name) == "demo",
            details=status,
        )
        if state.finished and _launched_after(launch, status):
            # Resumed, but the new process has not written a status yet, so the file still records how the
            # previous process ended. If the new process is gone too, the check below reports it as failed.
            state.status, state.stage, state.error = "created", "resume", None
        if state.status in ACTIVE_STATUSES and not alive and (launch or state.status == "running"):
            state.status = "failed"
            exit_code = self._exit_code(name)
            code_text = f" with exit code {exit_code}" if exit_code is not None else ""
            state.error = state.error or (
                f"The training process (pid {pid}) ended{code_text} without writing a final status, "
                "for example because it was killed or ran out of memory. See the log below."
            )
        return state

    def started(self, name: str) -> float | None:
        """Return when the run was first started (seconds since the epoch), which resuming does not change.

        Reads the launch record; runs started outside the app have none, so
        their folder's `config.yaml`, which training writes once, dates them.
        """
        folder = self.folder(name)
        launch = _read_json(folder.root / LAUNCH_RECORD_NAME)
        started = launch.get("first_started", launch.get("started"))
        if isinstance(started, (int, float)):
            return float(started)
        for path in (self.config_path(name), folder.config_path):
            if path.is_file():
                return path.stat().st_mtime
        return None

    def active_run(self) -> str | None:
        """Return the name of the run whose process is alive, if any."""
        for name in self.run_names():
            try:
                state = self.state(name)
            except JobError:
                continue
            if state.status in ACTIVE_STATUSES and state.alive:
                return name
        return None

    def follower(self, name: str) -> MetricsFollower:
        with self._lock:
            if name not in self._followers:
                self._followers[name] = MetricsFollower(self.folder(name))
            return self._followers[name]

    def log_tail(self, name: str, lines: int = 40, max_bytes: int = 64 * 1024) -> str:
        """Return the last `lines` lines of the console log (the engine's log if there is none).

        Progress-bar lines (tqdm's "Writing model shards: 50%|█████|" and the
        like) are left out: the Tune tab shows progress itself.
        """
        folder = self.folder(name)
        for path in (folder.root / CONSOLE_LOG_NAME, folder.log_path):
            if path.exists():
                with path.open("rb") as handle:
                    handle.seek(max(0, path.stat().st_size - max_bytes))
                    text = handle.read().decode("utf-8", errors="replace")
                kept = [line for line in text.splitlines() if not PROGRESS_BAR_PATTERN.search(line)]
                return "\n".join(kept[-lines:])
        return ""

    # --- actions ------------------------------------------------------------

    def start(self, config: RunConfig, name: str) -> RunFolder:
        """Write the config next to the run folder and start training; raises JobError or ValueError."""
        config.validate()
        with self._lock:
            self._reject_if_busy()
            folder = self.folder(name)
            if folder.root.exists():
                raise JobError(f"A run named {name!r} already exists in {self.settings.runs_dir}; choose another name.")
            folder.root.mkdir(parents=True, mode=0o700)
            self.forget(name)
            config_path = self.config_path(name)
            config.save(config_path)
            self._spawn(name, folder, train_command(config_path, folder.root, resume=False))
        return folder

    def resume(self, name: str) -> RunFolder:
        """Continue a stopped or failed run from its last checkpoint."""
        with self._lock:
            self._reject_if_busy()
            if not self.folder(name).root.is_dir():
                raise JobError(f"Run {name!r} not found in {self.settings.runs_dir}; refresh the list of runs.")
            state = self.state(name)
            if state.status not in ("stopped", "failed"):
                raise JobError(f"Run {name!r} is {state.status}; only a stopped or failed run can be resumed.")
            folder = self.folder(name)
            if not folder.config_path.exists():
                raise JobError(f"Run {name!r} has no config.yaml, so it never started; start a new run instead.")
            self._stop_requested.discard(name)
            self._spawn(name, folder, train_command(None, folder.root, resume=True))
        return folder

    def stop(self, name: str) -> None:
        """Ask the run to stop at its next step; it saves a checkpoint and ends as `stopped`."""
        state = self.state(name)
        if state.finished:
            raise JobError(f"Run {name!r} is already {state.status}; there is nothing to stop.")
        self.folder(name).request_stop()
        self._stop_requested.add(name)
        logger.info("Stop requested for run %s (pid %s)", name, state.pid)

    def forget(self, name: str) -> None:
        """Drop what is cached about a run, before its folder is reused or after it is deleted."""
        self._followers.pop(name, None)
        self._model_names.pop(name, None)
        self._stop_requested.discard(name)

    def keep_stop_request(self, name: str) -> None:
        """Recreate the STOP file if the engine removed it while setting up (it clears stale ones at start)."""
        folder = self.folder(name)
        if name in self._stop_requested and not folder.stop_path.exists():
            if self.state(name).status in ACTIVE_STATUSES:
                folder.request_stop()
            else:
                self._stop_requested.discard(name)

    # --- internals ----------------------------------------------------------

    def _reject_if_busy(self) -> None:
        active = self.active_run()
        if active is not None:
            raise JobError(
                f"Run {active!r} is still training and only one training job runs at a time. "
                "Wait for it to finish or stop it on the Tune tab."
            )

    def _spawn(self, name: str, folder: RunFolder, command: list[str]) -> None:
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), environment.get("PYTHONPATH")]))
        environment["PYTHONUNBUFFERED"] = "1"
        with (folder.root / CONSOLE_LOG_NAME).open("ab") as console:
            process = subprocess.Popen(
                command,
                cwd=PROJECT_ROOT,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._processes[name] = process
        previous = _read_json(folder.root / LAUNCH_RECORD_NAME)
        now = time.time()
        record = {"pid": process.pid, "command": command, "started": now,
                  "first_started": previous.get("first_started", previous.get("started", now))}
        (folder.root / LAUNCH_RECORD_NAME).write_text(json.dumps(record, indent=2), encoding="utf-8")
        logger.info("Started training run %s (pid %d): %s", name, process.pid, " ".join(command))

    def _alive(self, name: str, pid: int | None) -> bool:
        process = self._processes.get(name)
        if process is not None and process.pid == pid:
            # poll() also reaps the child, so a finished job leaves no zombie.
            return process.poll() is None
        return process_alive(pid)

    def _model_name(self, name: str) -> str | None:
        if name not in self._model_names:
            for path in (self.folder(name).config_path, self.config_path(name)):
                if path.is_file():
                    values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
                    self._model_names[name] = (values.get("model") or {}).get("name")
                    break
        return self._model_names.get(name)

    def _exit_code(self, name: str) -> int | None:
        process = self._processes.get(name)
        return process.poll() if process is not None else None


def _launched_after(launch: dict[str, Any], status: dict[str, Any]) -> bool:
    """Return True if the launch record is newer than the last status the engine wrote."""
    started, updated = launch.get("started"), status.get("updated")
    return isinstance(started, (int, float)) and isinstance(updated, (int, float)) and started > updated


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
