"""The app's events driven through gradio_client against a served app, with real training processes."""

from __future__ import annotations

import csv
import re
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from tests.conftest import REPO_ROOT, SAMPLE_DATA
from tests.test_app_support import running_app, stop_all_runs, wait_for


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served_app(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("app-workspace")
    with running_app(workspace) as (demo, url, settings):
        yield url, settings
        stop_all_runs(settings)


@pytest.fixture
def client(served_app):
    url, _ = served_app
    return Client(url, verbose=False)


def poll(client: Client) -> dict:
    plot, progress, status, log, _timer = client.predict(api_name="/poll_training")
    # Rows without a step only fix the chart's colours; they are not points.
    points = [row for row in plot["data"] if row[0] is not None]
    return {"points": points, "progress": progress, "status": status, "log": log}


def wait_for_status(client: Client, word: str, timeout: float = 240.0) -> dict:
    def reached():
        state = poll(client)
        return state if f": {word}" in state["status"] else None

    return wait_for(reached, timeout=timeout, what=f"a run status containing {word!r}")


def update_value(output):
    """Return the value of a component output, which gradio_client receives as an update dict."""
    return output.get("value") if isinstance(output, dict) and output.get("__type__") == "update" else output


def sample_pairs(count: int) -> list[Path]:
    images = sorted(SAMPLE_DATA.glob("*.jpg"))[:count]
    return [path for image in images for path in (image, image.with_suffix(".txt"))]


# --- Data tab ------------------------------------------------------------------------


def test_sample_data_summary(client):
    summary, counts, problems, gallery, split = client.predict(0.2, api_name="/load_sample_data")

    assert "40 image–report pairs ready" in summary
    assert "attribute lists" in summary
    assert ["ok", "image", 40] in counts["data"]
    assert ["ok", "report", 40] in counts["data"]
    assert problems["data"] == []
    assert len(gallery) == 24
    assert "Cell type:" in gallery[0]["caption"]
    assert split == "32 images for tuning, 8 held out as the quiz set."


def test_split_preview_follows_slider(client):
    client.predict(0.2, api_name="/load_sample_data")

    split = client.predict(0.5, api_name="/show_split")

    assert split == "20 images for tuning, 20 held out as the quiz set."


def test_upload_lists_skipped_file(client, tmp_path):
    stray = tmp_path / "notes.xyz"
    stray.write_bytes(b"not an image")
    files = [handle_file(str(p)) for p in [*sample_pairs(3), stray]]

    summary, counts, problems, gallery, _, shown, other = client.predict(files, 0.2, api_name="/ingest_files")

    assert "3 image–report pairs ready" in summary
    assert len(gallery) == 3
    rows = {row[0]: row for row in problems["data"]}
    assert "notes.xyz" in rows
    assert rows["notes.xyz"][1] in ("skipped", "rejected")
    assert rows["notes.xyz"][2]
    assert len(update_value(shown)) == 7
    assert update_value(other) is None


def test_upload_name_collision_rejected(client, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "report.txt").write_text("Cell type: Basophil\n")
    (second / "report.txt").write_text("Cell type: Neutrophil\n")
    files = [handle_file(str(first / "report.txt")), handle_file(str(second / "report.txt"))]

    summary, _, problems, gallery, _, _, _ = client.predict(files, 0.2, api_name="/ingest_folder")

    assert summary.startswith("**Upload rejected.**")
    assert ".zip" in summary
    assert problems["data"][0][1] == "rejected"
    assert gallery == []


def test_upload_without_files_fails(client):
    with pytest.raises(AppError, match="No files uploaded"):
        client.predict(None, 0.2, api_name="/ingest_files")


def test_upload_after_rejection_replaces_it(client, tmp_path):
    clash = tmp_path / "clash"
    clash.mkdir()
    (clash / "report.txt").write_text("Cell type: Basophil\n")
    rejected = [handle_file(str(clash / "report.txt")), handle_file(str(SAMPLE_DATA / "BA_152650.txt"))]
    (tmp_path / "report.txt").write_text("Cell type: Neutrophil\n")
    rejected.append(handle_file(str(tmp_path / "report.txt")))
    first = client.predict(rejected, 0.2, api_name="/ingest_folder")
    assert first[0].startswith("**Upload rejected.**")

    summary, _, problems, _, _, shown, other = client.predict(
        [handle_file(str(p)) for p in sample_pairs(2)], 0.2, api_name="/ingest_folder"
    )

    assert "2 image–report pairs ready" in summary
    assert problems["data"] == []
    assert len(update_value(shown)) == 4
    assert update_value(other) is None


# --- Tune and Runs tabs --------------------------------------------------------------------


def test_start_without_data_fails(client):
    with pytest.raises(AppError, match="No data chosen"):
        client.predict(max_steps=3, api_name="/start_training")


def test_long_run_metrics_stop_resume(client, served_app, tmp_path):
    url, settings = served_app
    client.predict(0.2, api_name="/load_sample_data")
    client.predict(max_steps=3000, run_name="long-run", api_name="/start_training")

    def two_points():
        state = poll(client)
        return state if len(state["points"]) >= 2 else None

    state = wait_for(two_points, what="two loss points")
    assert {point[2] for point in state["points"]} <= {"warm-up", "main"}
    assert state["points"][0][2] == "warm-up"
    assert "Step " in state["progress"]
    assert "training" in state["status"]

    with pytest.raises(AppError, match="long-run.*still training.*one training job"):
        client.predict(max_steps=3, run_name="second-run", api_name="/start_training")

    # An app restarted on the same workspace finds the job and follows it.
    with running_app(settings.workspace) as (_, second_url, _):
        restarted = Client(second_url, verbose=False)
        restarted.predict(api_name="/attach_training")
        assert "long-run" in poll(restarted)["status"]

    client.predict(api_name="/stop_training")
    stopped = wait_for_status(client, "stopped")
    assert "Resume it on the Runs tab" in stopped["status"]
    table, _ = client.predict(None, api_name="/list_runs")[:2]
    assert ["long-run", "stopped"] == table["data"][0][:2]
    started = table["data"][0][3]

    resumed = client.predict("long-run", api_name="/resume_run")
    # The Tune tab follows the resumed run at once: no stale "stopped" status, and its timer runs.
    # (gradio_client receives no Button updates, so the browser test checks the Stop button.)
    status, timer = resumed[-3], resumed[-1]
    assert "long-run" in status
    assert "stopped" not in status
    assert "resuming from its last checkpoint" in status
    assert timer["active"] is True
    wait_for_status(client, "training")
    table, _ = client.predict(None, api_name="/list_runs")[:2]
    assert table["data"][0][3] == started
    client.predict(api_name="/stop_training")
    wait_for_status(client, "stopped")
    config = yaml.safe_load((settings.runs_dir / "long-run" / "config.yaml").read_text())
    assert config["method"]["num_proxy_tokens"] == 8
    assert config["method"]["momentum"] == 0.999
    assert config["training"]["max_steps"] == 3000
    assert config["data"]["quiz_fraction"] == 0.2


def test_completed_run_compare_chat_delete(client, served_app, tmp_path):
    _, settings = served_app
    client.predict(0.2, api_name="/load_sample_data")
    client.predict(max_steps=3, run_name="short-run", api_name="/start_training")
    done = wait_for_status(client, "completed")
    assert len(done["points"]) >= 2
    assert "demo model" in done["status"]

    table, _ = client.predict("short-run", api_name="/list_runs")[:2]
    row = next(r for r in table["data"] if r[0] == "short-run")
    assert row[1] == "completed"
    details, _ = client.predict("short-run", api_name="/show_run")
    assert "K=8" in details

    download = client.predict("short-run", api_name="/download_artifacts")
    with zipfile.ZipFile(download["value"]) as archive:
        names = archive.namelist()
    assert "short-run/artifacts/adapter/adapter_model.safetensors" in names
    assert "short-run/config.yaml" in names

    summary, accuracy, radar, _, mcnemar, grounding, questions, export = client.predict(
        run_name="short-run", question_file=None, limit=4, api_name="/run_comparison"
    )
    assert "4 questions" in summary
    assert "meaningless" in summary
    models = [(row[0], row[1]) for row in accuracy["data"]]
    assert ("base", "option likelihood") in models
    assert ("tuned", "option likelihood") in models
    assert all("–" in row[5] for row in accuracy["data"])
    assert "McNemar" in mcnemar
    assert "grey image" in grounding
    assert len(questions["data"]) == 4
    assert questions["headers"][5:10] == ["Base reply", "Base parsed", "Base parsed correct", "Base likelihood",
                                          "Base likelihood correct"]
    assert questions["headers"][10] == "Tuned reply"
    assert all(row[5] and row[10] for row in questions["data"]), "both raw replies are shown"
    assert radar.startswith("<svg") or "at least three attributes" in radar
    header = Path(export).read_text().splitlines()[0]
    assert header == ("image,attribute,question,options,answer,base_reply,base_parsed,base_parse_correct,"
                      "base_likelihood,base_likelihood_correct,tuned_reply,tuned_parsed,tuned_parse_correct,"
                      "tuned_likelihood,tuned_likelihood_correct")

    table, _ = client.predict("short-run", api_name="/list_runs")[:2]
    row = next(r for r in table["data"] if r[0] == "short-run")
    assert re.fullmatch(r"\d+\.\d% → \d+\.\d%", row[6])
    _, download_after_select = client.predict("short-run", api_name="/show_run")
    assert update_value(download_after_select) is None

    table = client.predict("short-run", "auto", None, api_name="/show_questions")
    assert table["headers"] == ["image", "question", "options", "answer", "attribute"]
    edited = {"headers": table["headers"], "data": table["data"][:2], "metadata": None}
    summary = client.predict(run_name="short-run", source="table", question_file=None, table=edited, limit=0,
                             api_name="/run_comparison")[0]
    assert "2 questions" in summary

    question_file = tmp_path / "questions.csv"
    with question_file.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(table["headers"])
        writer.writerows(table["data"][:3])
    summary = client.predict(run_name="short-run", source="file", question_file=handle_file(str(question_file)),
                             limit=0, api_name="/run_comparison")[0]
    assert "3 questions" in summary

    base, tuned = client.predict("short-run", handle_file(str(SAMPLE_DATA / "BA_152650.jpg")),
                                 "Describe the image.", 8, api_name="/chat")
    assert isinstance(base, str) and base
    assert isinstance(tuned, str) and tuned

    client.predict("short-run", api_name="/delete_run")
    assert not (settings.runs_dir / "short-run").exists()
    assert not (settings.runs_dir / "short-run.yaml").exists()


def test_failed_run_shows_cause(client, tmp_path):
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "no-such-architecture"}')
    client.predict(0.2, api_name="/load_sample_data")

    client.predict(model_choice="local-folder", local_folder=str(broken), run_name="broken-run",
                   api_name="/start_training")
    failed = wait_for_status(client, "failed")

    assert "Cause:" in failed["status"]
    assert "no-such-architecture" in failed["status"] or "broken-model" in failed["status"]
    assert failed["log"].strip()


def test_compare_rejects_run_without_artifacts(client, served_app):
    _, settings = served_app
    (settings.runs_dir / "empty-run").mkdir()

    with pytest.raises(AppError, match="has no artifacts"):
        client.predict(run_name="empty-run", question_file=None, limit=2, api_name="/run_comparison")


def test_delete_rejects_traversal_name(client):
    with pytest.raises(AppError, match="Invalid run name"):
        client.predict("../outside", api_name="/delete_run")


def test_launch_reports_busy_port(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "launch.py", "--port", str(port), "--workspace", str(tmp_path / "workspace")],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
        )

    assert result.returncode == 2
    assert f"Port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "--port" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
