"""A synthetic second demo for the app: the stage-0 base and a small domain set.

The base model answers multiple-choice questions about shapes, sizes and the
seen colours and patterns. The domain set has the new colours and patterns
in its reports only. Everything is synthetic (drawn shapes), never medical.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from proving_ground.domain import write_domain
from proving_ground.stage0 import SHIPPED_STAGE0, Stage0Settings, ensure_stage0


DEMO_TUNE_IMAGES = 200
DEMO_QUIZ_IMAGES = 40
DEMO_SEED = 11


def prepare_synthetic_demo(dest: Path) -> tuple[Path, Path]:
    """Write the stage-0 model and a synthetic domain set under `dest`; return (model_dir, data_dir).

    `model_dir` loads with `engine.models.loading.load_model`. `data_dir` is a
    flat folder of `domain_NNNN.png` images with `domain_NNNN.txt` attribute
    reports. The shipped stage-0 model is copied when present; otherwise it
    is trained first (minutes on a CPU). Calling it again reuses what exists.
    """
    dest = Path(dest)
    model_dir = dest / "model"
    data_dir = dest / "data"
    if not (model_dir / "config.json").exists():
        source = SHIPPED_STAGE0 if (SHIPPED_STAGE0 / "config.json").exists() else ensure_stage0(dest / "cache", Stage0Settings())
        shutil.copytree(source, model_dir, dirs_exist_ok=True)
    if not any(data_dir.glob("*.png")):
        domain = write_domain(dest / "domain", DEMO_TUNE_IMAGES, DEMO_QUIZ_IMAGES, DEMO_SEED)
        shutil.copytree(domain.tune_dir, data_dir, dirs_exist_ok=True)
        shutil.rmtree(dest / "domain")
    return model_dir, data_dir
