"""The training command line on the bundled sample data with the demo model."""

import json
import subprocess
import sys

import pytest
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForImageTextToText

from engine.models.demo import demo_model_dir
from tests.conftest import REPO_ROOT, SAMPLE_DATA


METRIC_KEYS = {"step", "epoch", "stage", "loss", "learning_rate", "grad_norm", "elapsed_s", "eta_s"}


def run_cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=env,
    )


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    result = run_cli("train", "--data", str(SAMPLE_DATA), "--model", "demo", "--out", str(run_dir), "--max-steps", "3")
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def test_run_folder_contents(demo_run):
    names = {path.name for path in demo_run.iterdir()}
    assert {"config.yaml", "status.json", "metrics.jsonl", "train.log", "data_manifest.json", "split.json"} <= names
    assert {"artifacts", "checkpoints", "warmup_proxy.safetensors"} <= names
    artifacts = {path.name for path in (demo_run / "artifacts").iterdir()}
    assert artifacts == {"adapter", "proxy.safetensors", "run_info.json"}


def test_status_completed(demo_run):
    assert json.loads((demo_run / "status.json").read_text())["status"] == "completed"


def test_metrics_lines_cover_both_stages(demo_run):
    records = [json.loads(line) for line in (demo_run / "metrics.jsonl").read_text().splitlines()]
    for record in records:
        assert METRIC_KEYS <= record.keys()
    stages = [record["stage"] for record in records]
    assert stages[0] == "warmup"
    assert stages[-1] == "main"
    assert stages.count("main") == 3
    steps = [record["step"] for record in records]
    assert steps == sorted(steps)
    assert len(set(steps)) == len(steps)


def test_adapter_loads_with_peft(demo_run):
    base = AutoModelForImageTextToText.from_pretrained(demo_model_dir())
    model = PeftModel.from_pretrained(base, demo_run / "artifacts" / "adapter")
    lora = [name for name, _ in model.named_parameters() if "lora_" in name]
    assert lora


def test_proxy_artifact_is_fp32_with_k_tokens(demo_run):
    tensors = load_file(str(demo_run / "artifacts" / "proxy.safetensors"))
    assert tensors["tokens"].shape[0] == 8
    assert str(tensors["tokens"].dtype) == "torch.float32"
    assert str(tensors["average"].dtype) == "torch.float32"


def test_manifest_has_hashes_not_names(demo_run):
    manifest = json.loads((demo_run / "data_manifest.json").read_text())
    text = (demo_run / "data_manifest.json").read_text()
    assert manifest["num_samples"] == 32
    assert len(manifest["samples"]) == 32
    assert all(len(entry["image_sha256"]) == 64 for entry in manifest["samples"])
    assert "BA_" not in text
    assert ".jpg" not in text


def test_split_holds_out_a_fifth(demo_run):
    split = json.loads((demo_run / "split.json").read_text())
    assert len(split["quiz"]) == 8
    assert len(split["tune"]) == 32
    assert not set(split["quiz"]) & set(split["tune"])


def test_help_documents_every_option():
    result = run_cli("train", "--help")
    assert result.returncode == 0
    for option in (
        "--data",
        "--model",
        "--out",
        "--config",
        "--max-steps",
        "--resume",
        "--momentum",
        "--num-proxy-tokens",
    ):
        assert option in result.stdout
    text = " ".join(result.stdout.split())
    assert "(default: 0.999)" in text
    assert "(default: 8)" in text


def test_invalid_setting_exits_with_message(tmp_path):
    result = run_cli("train", "--data", str(SAMPLE_DATA), "--out", str(tmp_path / "run"), "--momentum", "1.2")
    assert result.returncode == 2
    assert "method.momentum is 1.2; it must be in [0, 1)" in result.stderr
