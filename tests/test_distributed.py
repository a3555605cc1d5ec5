"""Two CPU processes (torchrun, gloo) end with the same proxy on both ranks."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import REPO_ROOT


@pytest.mark.slow
def test_two_processes_keep_proxies_identical(tiny_model_factory, small_data, tmp_path):
    proxies = tmp_path / "proxies"
    proxies.mkdir()
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(REPO_ROOT / "tests" / "helpers" / "distributed_train.py"),
        str(tiny_model_factory("llava")),
        str(small_data),
        str(run_dir),
        str(proxies),
    ]
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]

    rank0 = load_file(str(proxies / "rank0.safetensors"))
    rank1 = load_file(str(proxies / "rank1.safetensors"))
    assert torch.equal(rank0["tokens"], rank1["tokens"])
    assert torch.equal(rank0["average"], rank1["average"])

    # Only the main process writes the run folder: one line per logged step.
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]
    assert json.loads((run_dir / "status.json").read_text())["status"] == "completed"
