"""Tests for the proving ground: the synthetic world, the stage-0 base and one tuning run."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from engine.data.attributes import parse_attributes
from engine.evaluation.parsing import parse_answer
from proving_ground import quiz
from proving_ground.domain import write_domain
from proving_ground.stage0 import SHIPPED_STAGE0, Stage0Settings, evaluate_seen_values, train_stage0
from proving_ground.world import (
    ATTRIBUTE_KEYS,
    NEW_COLOURS,
    NEW_PATTERNS,
    SEEN_COLOURS,
    SEEN_PATTERNS,
    WorldObject,
    draw_image,
    sample_objects,
)


def test_world_same_seed_same_pixels():
    first = [draw_image(o).tobytes() for o in sample_objects(5, random.Random(3), NEW_COLOURS, NEW_PATTERNS)]
    second = [draw_image(o).tobytes() for o in sample_objects(5, random.Random(3), NEW_COLOURS, NEW_PATTERNS)]
    assert first == second


def test_world_values_change_pixels():
    base = WorldObject("circle", "red", "large", "solid")
    variants = [
        WorldObject("square", "red", "large", "solid"),
        WorldObject("circle", "purple", "large", "solid"),
        WorldObject("circle", "red", "small", "solid"),
        WorldObject("circle", "red", "large", "dotted"),
        WorldObject("circle", "red", "large", "checkered"),
        WorldObject("circle", "red", "large", "striped"),
    ]
    for variant in variants:
        assert draw_image(variant).tobytes() != draw_image(base).tobytes(), variant


def test_world_report_is_attribute_report():
    obj = WorldObject("triangle", "cyan", "small", "checkered")
    assert parse_attributes(obj.report()) == {"shape": "triangle", "colour": "cyan", "size": "small", "pattern": "checkered"}


def test_world_new_values_are_disjoint():
    assert not set(SEEN_COLOURS) & set(NEW_COLOURS)
    assert not set(SEEN_PATTERNS) & set(NEW_PATTERNS)


def test_quiz_answer_text_parses_to_answer():
    rng = random.Random(0)
    obj = WorldObject("circle", "pink", "large", "dotted")
    for attribute in ATTRIBUTE_KEYS:
        question = quiz.make_question(obj, Path("x.png"), attribute, ["a", "b", "c", obj.value(attribute)], 4, rng, "q")
        assert question.answer_text == obj.value(attribute)
        assert parse_answer(quiz.answer_text(question.answer_letter), question.options) == question.answer_index


def test_domain_quiz_asks_only_new_values(tmp_path):
    data = write_domain(tmp_path, tune_images=6, quiz_images=12, seed=1)
    assert len(list(data.tune_dir.glob("*.png"))) == 6
    assert len(data.questions) == len(data.groups)
    for question, group in zip(data.questions, data.groups):
        if group == "new":
            assert question.answer_text in NEW_COLOURS + NEW_PATTERNS
        else:
            assert question.attribute == "size"


def test_shadow_methods_change_only_momentum_update(tmp_path):
    from proving_ground.experiment import MAIN_METHODS, TuningSettings, method_config

    data = write_domain(tmp_path / "domain", tune_images=2, quiz_images=1, seed=1)
    for reload_method in ("InstFree", "InstFree w/ RS"):
        overrides = dict(MAIN_METHODS[f"{reload_method} (shadow momentum)"])
        assert overrides.pop("momentum_update") == "shadow"
        assert overrides == MAIN_METHODS[reload_method]
        assert "momentum_update" not in MAIN_METHODS[reload_method]

        config = method_config(
            reload_method, MAIN_METHODS[f"{reload_method} (shadow momentum)"], tmp_path, data, 0, TuningSettings(), tmp_path
        )
        assert config.method.momentum_update == "shadow"


@pytest.fixture(scope="module")
def stage0_dir() -> Path:
    if not (SHIPPED_STAGE0 / "config.json").exists():
        pytest.skip(f"No shipped stage-0 model at {SHIPPED_STAGE0}; run `python -m proving_ground` once.")
    return SHIPPED_STAGE0


def test_stage0_answers_seen_values(stage0_dir):
    scores = evaluate_seen_values(stage0_dir, count=60, seed=99)
    # Questions have 2 to 4 options, so chance is below 40%. The shipped model
    # scores 89.5% on 200 questions (shape, a quarter of them, at 58%).
    assert scores.likelihood_accuracy >= 0.75
    assert scores.generation_accuracy >= 0.75


@pytest.mark.slow
def test_stage0_training_lowers_loss(tmp_path):
    settings = Stage0Settings(steps=20, batch_size=8, warmup_steps=5, describe_only_steps=0)
    folder = train_stage0(tmp_path / "stage0", settings)
    records = [json.loads(line) for line in (folder / "stage0_log.jsonl").read_text().splitlines()]
    assert len(records) >= 2
    assert records[-1]["loss"] < records[0]["loss"]


@pytest.mark.slow
def test_tuning_changes_domain_answers(stage0_dir, tmp_path):
    from engine.evaluation.scoring import QuestionImages, ScoringSettings, score_options
    from engine.evaluation.variants import ModelVariants
    from proving_ground.experiment import MAIN_METHODS, TuningSettings, run_cell

    data = write_domain(tmp_path / "domain", tune_images=32, quiz_images=12, seed=2)
    result = run_cell(
        "InstFree w/ RS", MAIN_METHODS["InstFree w/ RS"], 0, stage0_dir, data, TuningSettings(epochs=2.0), tmp_path
    )
    run = Path(result.run_dir)
    assert (run / "artifacts" / "adapter").is_dir()
    assert (run / "artifacts" / "proxy.safetensors").is_file()

    variants = ModelVariants.load(run, device=torch.device("cpu"), precision="fp32")
    loaded = variants.loaded
    images = QuestionImages(data.questions, size=None)
    settings = ScoringSettings(scoring="likelihood", grounding_control=False)
    option_scores = {}
    for variant in ("base", "tuned"):
        with variants.use(variant):
            ranked, _ = score_options(loaded.model, loaded.processor, loaded.family, data.questions, images, settings)
        option_scores[variant] = torch.tensor([list(scores.scores) for scores in ranked if len(scores.scores) == 4])
    change = (option_scores["tuned"] - option_scores["base"]).abs().max().item()
    assert change > 1e-3


def test_synthetic_demo_writes_model_and_data(stage0_dir, tmp_path):
    from proving_ground.demo import DEMO_TUNE_IMAGES, prepare_synthetic_demo

    model_dir, data_dir = prepare_synthetic_demo(tmp_path / "demo")
    assert (model_dir / "config.json").is_file()
    images = sorted(data_dir.glob("*.png"))
    assert len(images) == DEMO_TUNE_IMAGES
    assert all(image.with_suffix(".txt").is_file() for image in images)
    assert prepare_synthetic_demo(tmp_path / "demo") == (model_dir, data_dir)
