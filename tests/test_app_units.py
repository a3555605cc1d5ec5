"""App helpers that need no server: plot data, progress text, datasets, model choices, radar chart."""

from __future__ import annotations

import math
import sys
from types import SimpleNamespace

import pytest

from app import datasets
from app.comparators import ComparisonUnavailableError, import_comparator
from app.model_catalog import LOCAL_FOLDER_CHOICE, resolve_model_name, size_warning
from app.settings import AppSettings, format_size, parse_size, prepare_environment
from app.tabs.tune.events import default_run_name
from app.tabs.tune.progress import MAX_PLOT_POINTS, format_seconds, loss_frame, progress_html, status_markdown
from app.training_jobs import JobState
from engine.evaluation.statistics import Accuracy


def metric(step: int, stage: str = "main") -> dict:
    return {"step": step, "loss": 7.0 - step / 1000, "stage": stage, "total_steps": 10_000, "eta_s": 65.0,
            "elapsed_s": 3.0}


def test_loss_frame_keeps_stage_colours():
    frame = loss_frame([metric(1, "warmup"), metric(2, "main")])

    assert list(frame["stage"][:2]) == ["warm-up", "main"]
    assert math.isnan(frame["step"][0])
    assert list(frame["step"][2:]) == [1.0, 2.0]
    assert list(frame["stage"][2:]) == ["warm-up", "main"]


def test_loss_frame_thins_long_runs():
    records = [metric(step) for step in range(1, 10_001)]

    frame = loss_frame(records)

    points = frame.dropna()
    assert len(points) <= MAX_PLOT_POINTS + 1
    assert points["step"].iloc[-1] == 10_000.0


def test_progress_text_shows_eta():
    state = JobState(name="run", status="running", pid=1, alive=True)

    text = progress_html(state, metric(2500))

    assert "Step 2500 of 10000 (25%)" in text
    assert "about 1:05 left" in text
    assert 'style="width: 25.0%"' in text


def test_status_failed_names_cause():
    state = JobState(name="run", status="failed", error="OSError: model not found")

    text = status_markdown(state, None)

    assert "failed" in text
    assert "OSError: model not found" in text


@pytest.mark.parametrize(("seconds", "text"), [(None, "unknown"), (5, "0:05"), (65, "1:05"), (3725, "1:02:05")])
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


@pytest.mark.parametrize(("text", "size"), [("1024", 1024), ("500mb", 500 * 1024**2), ("4gb", 4 * 1024**3),
                                            ("1.5kb", 1536)])
def test_parse_size(text, size):
    assert parse_size(text) == size


def test_format_size_picks_unit():
    assert format_size(512) == "512 bytes"
    assert format_size(300_000) == "293.0 KiB"
    assert format_size(5 * 1024**3) == "5.0 GiB"


def test_default_run_name_safe():
    name = default_run_name("Qwen/Qwen2.5-VL-3B-Instruct")

    assert name.endswith("-Qwen2.5-VL-3B-Instruct")
    assert "/" not in name


def test_local_folder_needs_config(tmp_path):
    with pytest.raises(ValueError, match="Missing model folder"):
        resolve_model_name(LOCAL_FOLDER_CHOICE, "  ")
    with pytest.raises(ValueError, match="has no config.json"):
        resolve_model_name(LOCAL_FOLDER_CHOICE, str(tmp_path))

    (tmp_path / "config.json").write_text("{}")

    assert resolve_model_name(LOCAL_FOLDER_CHOICE, str(tmp_path)) == str(tmp_path)


def test_large_model_warned_on_cpu_only():
    assert "billion parameters" in size_warning("meta-llama/Llama-3.2-11B-Vision-Instruct", has_gpu=False)
    assert size_warning("meta-llama/Llama-3.2-11B-Vision-Instruct", has_gpu=True) == ""
    assert "meaningless" in size_warning("demo", has_gpu=False)


def test_missing_ingestion_reported(monkeypatch):
    monkeypatch.setitem(sys.modules, "engine.data.ingest", None)

    with pytest.raises(datasets.IngestionUnavailableError, match="not available yet"):
        datasets.import_ingest()


def test_missing_comparator_reported(monkeypatch):
    monkeypatch.setitem(sys.modules, "engine.evaluation.comparison", None)

    with pytest.raises(ComparisonUnavailableError, match="not available yet"):
        import_comparator()


def test_upload_kept_for_run(tmp_path):
    settings = AppSettings(workspace=tmp_path / "workspace")
    prepare_environment(settings)
    session = settings.sessions_dir / "session1"
    source = tmp_path / "report.txt"
    source.write_text("Cell type: Basophil\n")
    staged = datasets.stage_upload([source], session)

    kept = datasets.keep_for_run(str(staged), settings)

    assert kept == str(settings.datasets_dir / staged.name)
    assert (settings.datasets_dir / staged.name / "report.txt").is_file()
    assert not staged.exists()
    assert datasets.keep_for_run(kept, settings) == kept


def test_radar_chart_has_both_models():
    from app.comparison_view import radar_svg

    def accuracy(value: float) -> Accuracy:
        return Accuracy(int(value * 10), 10, value, value, value)

    attributes = [SimpleNamespace(attribute=name, base=accuracy(0.2), tuned=accuracy(0.8))
                  for name in ("Cell size", "Cell shape", "Granule colour <b>")]
    report = SimpleNamespace(methods={"likelihood": SimpleNamespace(per_attribute=attributes)})

    svg = radar_svg(report)

    assert svg.startswith("<svg")
    assert svg.count("<title>") == 2
    assert "Granule colour &lt;b&gt;" in svg
