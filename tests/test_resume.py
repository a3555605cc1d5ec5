"""Stopping a run leaves a usable checkpoint; resuming reaches the uninterrupted result."""

import json
import os

import pytest
import torch
from safetensors.torch import load_file

import engine.training.run as run_module
from engine.runs import RunFolder
from engine.training import train
from engine.training.callbacks import StopCallback
from tests.test_training import tiny_config


STOP_AT_MAIN_STEP = 2


class StopAtStep(StopCallback):
    """Create the stop file after a given main-stage step, as a user would."""

    def on_step_end(self, args, state, control, **kwargs):
        if args.output_dir.endswith("main") and state.global_step == STOP_AT_MAIN_STEP:
            self.stop_file.touch()
        return super().on_step_end(args, state, control, **kwargs)


def resume_config(model_dir, data_dir):
    config = tiny_config(model_dir, data_dir, momentum=0.9)
    config.training.max_steps = 4
    config.training.save_steps = 100
    config.training.learning_rate = 1e-3
    return config


def adapter_weights(run_dir):
    return load_file(str(RunFolder(run_dir).adapter_dir / "adapter_model.safetensors"))


@pytest.mark.slow
def test_stop_then_resume_matches_uninterrupted(tiny_model_factory, small_data, tmp_path, monkeypatch):
    model_dir = tiny_model_factory("llava")
    reference = train(resume_config(model_dir, small_data), tmp_path / "reference")
    assert reference.status == "completed"

    monkeypatch.setattr(run_module, "StopCallback", StopAtStep)
    stopped = train(resume_config(model_dir, small_data), tmp_path / "interrupted")
    folder = RunFolder(tmp_path / "interrupted")
    assert stopped.status == "stopped"
    assert folder.read_status()["status"] == "stopped"
    checkpoint = folder.last_checkpoint("main")
    assert checkpoint is not None and checkpoint.name == f"checkpoint-{STOP_AT_MAIN_STEP}"
    assert (checkpoint / "proxy.safetensors").exists()
    assert not folder.adapter_dir.exists()

    monkeypatch.setattr(run_module, "StopCallback", StopCallback)
    resumed = train(resume_config(model_dir, small_data), tmp_path / "interrupted", resume=True)
    assert resumed.status == "completed"
    assert folder.read_status()["status"] == "completed"

    assert torch.equal(resumed.proxy.tokens, reference.proxy.tokens)
    assert torch.equal(resumed.proxy.average, reference.proxy.average)
    expected = adapter_weights(tmp_path / "reference")
    actual = adapter_weights(tmp_path / "interrupted")
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(actual[name], expected[name]), f"adapter weight {name} differs after resume"

    steps = [json.loads(line)["step"] for line in folder.metrics_path.read_text().splitlines()]
    assert steps[-1] == 2 + 4


def test_existing_run_folder_needs_resume(tiny_model_factory, small_data, tmp_path):
    config = resume_config(tiny_model_factory("llava"), small_data)
    config.training.max_steps = 1
    train(config, tmp_path / "run")
    with pytest.raises(run_module.RunFolderInUseError, match="pass --resume"):
        train(config, tmp_path / "run")


def test_failed_run_records_error(tiny_model_factory, tmp_path):
    config = resume_config(tiny_model_factory("llava"), tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        train(config, tmp_path / "run")
    status = RunFolder(tmp_path / "run").read_status()
    assert status["status"] == "failed"
    assert "does not exist" in status["error"]


def test_run_failed_before_checkpoint_can_restart(tiny_model_factory, small_data, tmp_path):
    with pytest.raises(FileNotFoundError):
        train(resume_config(tiny_model_factory("llava"), tmp_path / "missing"), tmp_path / "run")
    config = resume_config(tiny_model_factory("llava"), small_data)
    config.training.max_steps = 1
    assert train(config, tmp_path / "run").status == "completed"


def test_completed_run_cannot_resume(tiny_model_factory, small_data, tmp_path):
    config = resume_config(tiny_model_factory("llava"), small_data)
    config.training.max_steps = 1
    train(config, tmp_path / "run")
    with pytest.raises(run_module.RunFolderInUseError, match="already completed"):
        train(config, tmp_path / "run", resume=True)


def test_stop_requested_during_startup_is_honoured(tiny_model_factory, small_data, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "STOP").touch()
    outcome = train(resume_config(tiny_model_factory("llava"), small_data), run_dir)
    assert outcome.status == "stopped"
    status = RunFolder(run_dir).read_status()
    assert status["status"] == "stopped"
    assert status["stage"] == "warmup"


def test_stale_stop_file_is_cleared(tiny_model_factory, small_data, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    stop_file = run_dir / "STOP"
    stop_file.touch()
    os.utime(stop_file, (0, 0))
    config = resume_config(tiny_model_factory("llava"), small_data)
    config.training.max_steps = 1
    assert train(config, run_dir).status == "completed"
    assert not stop_file.exists()
