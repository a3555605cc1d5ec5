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


def test_radar_chart_names_scoring():
    from app.comparison_view import radar_svg

    accuracy = Accuracy(5, 10, 0.5, 0.2, 0.8)
    attributes = [SimpleNamespace(attribute=name, base=accuracy, tuned=accuracy)
                  for name in ("Nucleus-to-cytoplasmic ratio", "Cell shape", "Granule colour")]
    report = SimpleNamespace(methods={"parse": SimpleNamespace(per_attribute=attributes)})

    svg = radar_svg(report)

    assert "Scoring: reply parsed" in svg
    # The viewBox starts left of 0 to leave room for long labels on the left side.
    assert 'viewBox="-' in svg


@pytest.mark.parametrize(("value", "previous", "latest"), [
    (["a", "b"], [], ["a", "b"]),
    (["a", "b", "c"], ["a", "b"], ["c"]),
    (["a", "b", "a", "b"], ["a", "b"], ["a", "b"]),
    (["c"], ["a", "b"], ["c"]),
    (["a", "b"], ["a", "b"], ["a", "b"]),
])
def test_latest_upload_drops_earlier_files(value, previous, latest):
    assert datasets.latest_upload(value, previous) == latest


@pytest.mark.parametrize(("stage", "label"), [
    ("base model, image image", "base model, real images"),
    ("tuned model, grey image", "tuned model, grey images (grounding control)"),
    ("loading", "loading"),
])
def test_progress_label_reads_naturally(stage, label):
    from app.tabs.compare.events import progress_label

    assert progress_label(stage) == label


def test_uncached_hub_model_needs_download(monkeypatch):
    from app import model_catalog

    monkeypatch.setattr(model_catalog, "is_cached", lambda repo_id: False)
    message = model_catalog.download_problem("Qwen/Qwen2.5-VL-3B-Instruct", allow_downloads=False)

    assert "hf download Qwen/Qwen2.5-VL-3B-Instruct" in message
    assert "--allow-downloads" in message
    assert model_catalog.download_problem("Qwen/Qwen2.5-VL-3B-Instruct", allow_downloads=True) == ""
    assert model_catalog.download_problem("demo", allow_downloads=False) == ""


def test_allow_downloads_reaches_run_config(tmp_path):
    from app.settings import build_parser, settings_from_args
    from app.tabs.tune.events import build_config
    from engine.config import RunConfig

    args = build_parser().parse_args(["--allow-downloads", "--workspace", str(tmp_path)])
    settings = settings_from_args(args)
    defaults = RunConfig()
    values = {"precision": "auto", "num_proxy_tokens": 8, "momentum": 0.999, "warmup_epochs": 1, "trainable": [],
              "shuffling": "auto", "mode": "lora", "instruction": "proxy", "fixed_instruction": "",
              "lora_rank": 8, "proxy_learning_rate": 1e-3, "warmup_learning_rate": 1e-3,
              "learning_rate": defaults.training.learning_rate, "epochs": 1, "max_steps": 3, "batch_size": 1,
              "image_size": 0, "seed": 0}
    dataset = datasets.Dataset(path=str(tmp_path), label="test", num_samples=1, num_attribute_reports=0)

    config = build_config(dataset, 0.2, "demo", settings, values)

    assert settings.allow_downloads is True
    assert config.model.allow_download is True


def test_log_tail_drops_progress_bars(tmp_path):
    from app.training_jobs import CONSOLE_LOG_NAME, TrainingJobs

    settings = AppSettings(workspace=tmp_path)
    run = settings.runs_dir / "run"
    run.mkdir(parents=True)
    (run / CONSOLE_LOG_NAME).write_text(
        "INFO training started\n"
        "Writing model shards:  50%|█████     | 1/2 [00:00<00:00,  3.1it/s]\r"
        "Writing model shards: 100%|██████████| 2/2 [00:00<00:00,  3.2it/s]\n"
        "INFO finished with status completed\n"
    )

    tail = TrainingJobs(settings).log_tail("run")

    assert tail == "INFO training started\nINFO finished with status completed"


def write_run(settings: AppSettings, name: str, launch: dict | None = None, status: dict | None = None):
    import json

    run = settings.runs_dir / name
    run.mkdir(parents=True)
    if launch is not None:
        (run / "launch.json").write_text(json.dumps(launch))
    if status is not None:
        (run / "status.json").write_text(json.dumps(status))
    return run


def test_run_start_time_ignores_new_files(tmp_path):
    from app.training_jobs import TrainingJobs

    settings = AppSettings(workspace=tmp_path)
    older = write_run(settings, "older", launch={"pid": 1, "started": 2000.0, "first_started": 1000.0})
    write_run(settings, "newer", launch={"pid": 2, "started": 1500.0})
    jobs = TrainingJobs(settings)

    (older / "metrics.jsonl").write_text("{}\n")

    assert jobs.started("older") == 1000.0
    assert jobs.started("newer") == 1500.0
    assert jobs.run_names() == ["newer", "older"]


def test_resumed_run_not_reported_stopped(tmp_path):
    import subprocess
    import time

    from app.training_jobs import TrainingJobs

    settings = AppSettings(workspace=tmp_path)
    # A live process whose command line names the engine stands in for a resumed run that is still loading.
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "engine"])
    try:
        now = time.time()
        write_run(settings, "run", launch={"pid": process.pid, "started": now},
                  status={"status": "stopped", "stage": "main", "updated": now - 10, "pid": 1})

        state = TrainingJobs(settings).state("run")

        assert state.status == "created"
        assert state.stage == "resume"
        assert "resuming" in status_markdown(state, None)
    finally:
        process.kill()
        process.wait()


def test_resumed_run_that_died_is_failed(tmp_path):
    import time

    from app.training_jobs import TrainingJobs

    settings = AppSettings(workspace=tmp_path)
    now = time.time()
    # pid 0 is never a live training process.
    write_run(settings, "run", launch={"pid": 0, "started": now},
              status={"status": "stopped", "stage": "main", "updated": now - 10, "pid": 1})

    state = TrainingJobs(settings).state("run")

    assert state.status == "failed"
    assert "without writing a final status" in state.error
