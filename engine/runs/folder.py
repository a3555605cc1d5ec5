"""The run folder: everything one tuning run writes, in a fixed layout.

<run>/config.yaml           resolved RunConfig, written before training
<run>/status.json           running / completed / stopped / failed (+ error)
<run>/metrics.jsonl         one JSON object per log event, flushed as written
<run>/train.log             human-readable log
<run>/data_manifest.json    counts and per-sample content hashes
<run>/split.json            content keys of the tuning and quiz images
<run>/STOP                  created by anyone who wants the run to stop
<run>/checkpoints/{warmup,main}/checkpoint-N/
<run>/warmup_proxy.safetensors   proxy at the end of warm-up (marks it done)
<run>/artifacts/            adapter/ (peft) or trained_modules.safetensors (full),
                            proxy.safetensors, run_info.json (what was trained on which base)
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal


RunStatus = Literal["created", "running", "completed", "stopped", "failed"]


@dataclass(frozen=True)
class RunFolder:
    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / "config.yaml"

    @property
    def status_path(self) -> Path:
        return self.root / "status.json"

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def log_path(self) -> Path:
        return self.root / "train.log"

    @property
    def manifest_path(self) -> Path:
        return self.root / "data_manifest.json"

    @property
    def split_path(self) -> Path:
        return self.root / "split.json"

    @property
    def stop_path(self) -> Path:
        return self.root / "STOP"

    @property
    def warmup_proxy_path(self) -> Path:
        return self.root / "warmup_proxy.safetensors"

    @property
    def artifacts_dir(self) -> Path:
        return self.root / "artifacts"

    @property
    def adapter_dir(self) -> Path:
        return self.artifacts_dir / "adapter"

    @property
    def trained_modules_path(self) -> Path:
        return self.artifacts_dir / "trained_modules.safetensors"

    @property
    def proxy_path(self) -> Path:
        return self.artifacts_dir / "proxy.safetensors"

    def checkpoints_dir(self, stage: str) -> Path:
        return self.root / "checkpoints" / stage

    def last_checkpoint(self, stage: str) -> Path | None:
        """Return the checkpoint with the highest step of a stage, or None."""
        folder = self.checkpoints_dir(stage)
        if not folder.is_dir():
            return None
        candidates = [p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
        return max(candidates, key=lambda p: int(p.name.split("-")[-1]), default=None)

    # --- status -----------------------------------------------------------

    def write_status(self, status: RunStatus, **details: Any) -> None:
        """Write the status file atomically, so a reader never sees half a file."""
        payload = {"status": status, "updated": time.time(), "pid": os.getpid(), **details}
        temporary = self.status_path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(payload, indent=2), encoding="utf-8")
        os.replace(temporary, self.status_path)

    def read_status(self) -> dict[str, Any]:
        """Return the status mapping; `{"status": "created"}` before training writes one."""
        try:
            return json.loads(self.status_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"status": "created"}
        except json.JSONDecodeError:
            return {"status": "unknown", "error": f"{self.status_path} is not valid JSON"}

    # --- metrics ----------------------------------------------------------

    def read_metrics(self, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Return complete metric records from byte `offset` on, and the new offset.

        A line still being written (no trailing newline) is left for the next
        call, so a polling reader never parses half a record.
        """
        try:
            with self.metrics_path.open("rb") as handle:
                handle.seek(offset)
                data = handle.read()
        except FileNotFoundError:
            return [], offset
        complete = data[: data.rfind(b"\n") + 1]
        records = [json.loads(line) for line in complete.splitlines() if line.strip()]
        return records, offset + len(complete)

    def request_stop(self) -> None:
        """Ask a running training process to stop at its next step."""
        self.stop_path.touch()
