"""Worker for the two-process test: train, then save this rank's proxy for comparison."""

import os
import sys
from pathlib import Path

from safetensors.torch import save_file

from engine.config import RunConfig
from engine.training import train


def main(model_dir: str, data_dir: str, run_dir: str, proxies_dir: str) -> None:
    config = RunConfig()
    config.model.name = model_dir
    config.data.path = data_dir
    config.data.quiz_fraction = 0.0
    config.training.batch_size = 2
    config.training.max_steps = 2
    config.method.warmup_steps = 2
    config.method.num_proxy_tokens = 4
    outcome = train(config, Path(run_dir))
    rank = os.environ["RANK"]
    tensors = {"tokens": outcome.proxy.tokens.detach().contiguous(), "average": outcome.proxy.average.contiguous()}
    save_file(tensors, str(Path(proxies_dir) / f"rank{rank}.safetensors"))


if __name__ == "__main__":
    main(*sys.argv[1:])
