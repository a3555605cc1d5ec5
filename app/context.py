"""Services shared by every tab and session of one app instance."""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from app.comparators import ComparatorCache
from app.settings import AppSettings, make_private_dir
from app.training_jobs import TrainingJobs


logger = logging.getLogger(__name__)

SESSION_PATTERN = re.compile(r"[^A-Za-z0-9_-]")


@dataclass
class AppContext:
    settings: AppSettings
    jobs: TrainingJobs
    comparators: ComparatorCache
    uploads: dict[str, set[Path]] = field(default_factory=dict)
    """gradio's temporary copies of each session's uploads, deleted when the session ends."""

    @classmethod
    def create(cls, settings: AppSettings) -> AppContext:
        jobs = TrainingJobs(settings)
        return cls(settings=settings, jobs=jobs, comparators=ComparatorCache(jobs))

    def session_dir(self, session_hash: str | None) -> Path:
        """Return this browser session's private upload folder, created on first use."""
        safe = SESSION_PATTERN.sub("", session_hash or "") or "anonymous"
        return make_private_dir(self.settings.sessions_dir / safe[:64])

    def remember_uploads(self, session_hash: str | None, paths: list[Path]) -> None:
        self.uploads.setdefault(session_hash or "", set()).update(Path(p) for p in paths)

    def end_session(self, session_hash: str | None) -> None:
        """Delete the session's upload folder and gradio's temporary copies of its uploads.

        Uploads that a run uses were moved to the datasets folder before, so they stay.
        """
        safe = SESSION_PATTERN.sub("", session_hash or "")
        if safe:
            shutil.rmtree(self.settings.sessions_dir / safe[:64], ignore_errors=True)
        temp_root = self.settings.gradio_temp_dir.resolve()
        for path in self.uploads.pop(session_hash or "", set()):
            folder = path.resolve().parent
            # gradio stores each upload alone in a folder named by its hash; remove that folder.
            if temp_root in folder.parents:
                shutil.rmtree(folder, ignore_errors=True)
        logger.info("Session %s ended; its uploads were deleted", safe[:8] or "(unknown)")
