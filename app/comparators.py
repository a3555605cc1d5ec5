"""Keep one run's evaluation Comparator loaded in the app process; no gradio here."""

from __future__ import annotations

import gc
import logging
import threading

from app.training_jobs import JobError, TrainingJobs


logger = logging.getLogger(__name__)


class ComparisonUnavailableError(RuntimeError):
    """Raised when `engine.evaluation` has no Comparator in this checkout."""


def import_comparator():
    try:
        from engine.evaluation.comparison import Comparator
    except ImportError as error:
        raise ComparisonUnavailableError(
            "Base-versus-tuned comparison (engine.evaluation) is not available yet in this installation "
            f"({error}). Update the project and restart the app."
        ) from error
    return Comparator


class ComparatorCache:
    """Holds the Comparator of the most recently used run; loading another run releases the previous one."""

    def __init__(self, jobs: TrainingJobs) -> None:
        self.jobs = jobs
        self._lock = threading.Lock()
        self._name: str | None = None
        self._comparator = None

    def get(self, name: str | None):
        """Return the Comparator of run `name`, loading its model on first use; raises JobError or ComparisonUnavailableError."""
        if not name:
            raise JobError("No run selected. Pick a completed run first.")
        folder = self.jobs.folder(name)
        state = self.jobs.state(name)
        if not (folder.artifacts_dir / "run_info.json").is_file():
            raise JobError(
                f"Run {name!r} is {state.status} and has no artifacts, so there is no tuned model to compare. "
                "Pick a completed run."
            )
        Comparator = import_comparator()
        with self._lock:
            if self._name != name:
                self._comparator = None
                gc.collect()
                logger.info("Loading the base and tuned model of run %s", name)
                self._comparator = Comparator.load(folder.root)
                self._name = name
            return self._comparator
