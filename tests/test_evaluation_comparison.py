"""Base versus tuned on real tiny runs: adapter toggling, weight swapping, reports and the CLI."""

import csv
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from engine.cli import main
from engine.config import RunConfig
from engine.evaluation.comparison import Comparator
from engine.evaluation.scoring import QuestionImages, ScoringSettings, score_options
from engine.evaluation.variants import WeightSwap
from engine.models.loading import load_model
from engine.training import train


SAMPLE_DATA = Path(__file__).resolve().parent.parent / "sample_data"


def run_config(mode: str) -> RunConfig:
    """A few steps on the language model at a high learning rate, so that outputs change."""
    config = RunConfig()
    config.model.name = "demo"
    config.data.path = str(SAMPLE_DATA)
    config.data.quiz_fraction = 0.2
    config.method.instruction = "none"
    config.method.trainable = ["language"]
    config.method.mode = mode
    config.training.batch_size = 2
    config.training.max_steps = 3
    config.training.learning_rate = 0.05 if mode == "lora" else 0.01
    return config


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("lora-run") / "run"
    assert train(run_config("lora"), folder).status == "completed"
    return folder


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("full-run") / "run"
    assert train(run_config("full"), folder).status == "completed"
    return folder


def likelihoods(model, loaded, questions) -> list[tuple[float, ...]]:
    results, _ = score_options(
        model, loaded.processor, loaded.family, questions, QuestionImages(questions, None), ScoringSettings()
    )
    return [result.scores for result in results]


def test_lora_tuned_differs_base_matches(lora_run):
    comparator = Comparator.load(lora_run)
    questions, _ = comparator.quiz_questions()
    questions = questions[:6]
    reference = load_model("demo")

    with comparator.variants.use("tuned"):
        tuned = likelihoods(comparator.model, comparator.variants.loaded, questions)
    with comparator.variants.use("base"):
        base = likelihoods(comparator.model, comparator.variants.loaded, questions)
    plain = likelihoods(reference.model, reference, questions)

    assert comparator.kind == "lora"
    assert base == plain
    assert tuned != base
    assert max(abs(a - b) for t, p in zip(tuned, base, strict=True) for a, b in zip(t, p, strict=True)) > 1e-3


def test_full_swap_round_trips_weights(full_run):
    comparator = Comparator.load(full_run)
    model = comparator.model
    saved = load_file(str(full_run / "artifacts" / "trained_modules.safetensors"))
    before = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    parameters = dict(model.named_parameters())

    with comparator.variants.use("tuned"):
        for name, tensor in saved.items():
            assert torch.equal(parameters[name], tensor), name
    with comparator.variants.use("base"):
        for name, parameter in model.named_parameters():
            assert torch.equal(parameter, before[name]), name

    assert comparator.kind == "full"
    assert any(not torch.equal(saved[name], before[name]) for name in saved)


def test_full_swap_rereads_base_checkpoint(full_run):
    comparator = Comparator.load(full_run)
    swap = comparator.variants.swap
    saved = load_file(str(full_run / "artifacts" / "trained_modules.safetensors"))

    assert swap.base_files is not None
    assert {name for pairs in swap.base_files.values() for _, name in pairs} == set(saved)
    assert swap.copied_bytes == 0


def test_full_swap_copies_only_replaced_without_base_files(full_run):
    comparator = Comparator.load(full_run)
    trained = full_run / "artifacts" / "trained_modules.safetensors"
    saved = load_file(str(trained))
    model_bytes = sum(p.numel() * p.element_size() for p in comparator.model.parameters())

    swap = WeightSwap(comparator.model, trained)
    assert swap.base_files is None
    assert set(swap.originals) == set(saved)
    assert swap.copied_bytes == sum(t.numel() * t.element_size() for t in saved.values())
    assert swap.copied_bytes < model_bytes


def test_full_run_tuned_differs_base_matches(full_run):
    comparator = Comparator.load(full_run)
    questions, _ = comparator.quiz_questions()
    questions = questions[:6]
    reference = load_model("demo")

    with comparator.variants.use("tuned"):
        tuned = likelihoods(comparator.model, comparator.variants.loaded, questions)
    with comparator.variants.use("base"):
        base = likelihoods(comparator.model, comparator.variants.loaded, questions)

    assert base == likelihoods(reference.model, reference, questions)
    assert tuned != base


def test_evaluate_scores_identical_items(lora_run):
    comparator = Comparator.load(lora_run)
    questions, _ = comparator.quiz_questions()
    progress = []

    report = comparator.evaluate(questions, limit=4, progress_callback=lambda *a: progress.append(a), save=False)

    assert len(report.items) == 4
    for item in report.items:
        assert set(item.outcomes) == {("base", "image"), ("tuned", "image"), ("base", "grey"), ("tuned", "grey")}
        for outcome in item.outcomes.values():
            assert outcome.reply is not None
            assert outcome.likelihood is not None
    assert progress[-1][0] == progress[-1][1] == 4 * 4 * 2
    assert set(report.methods) == {"parse", "likelihood"}
    assert report.methods["likelihood"].paired.total == 4


def test_comparator_chat_both_variants(lora_run, tmp_path):
    comparator = Comparator.load(lora_run)
    image = sorted(SAMPLE_DATA.glob("*.jpg"))[0]

    base = list(comparator.chat(image, "Describe the image.", which="base", max_new_tokens=8))
    tuned = list(comparator.chat(image, "Describe the image.", which="tuned", max_new_tokens=8))

    assert base
    assert tuned
    assert base[-1] != tuned[-1]
    assert not comparator._lock.locked()
    with pytest.raises(ValueError, match="which is 'other'"):
        comparator.chat(image, "Describe.", which="other")


def test_unfinished_run_rejected(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()

    with pytest.raises(FileNotFoundError, match="no saved artifacts"):
        Comparator.load(folder)


# --- command line ------------------------------------------------------------------


def test_cli_writes_reports(lora_run, tmp_path):
    out = tmp_path / "out.json"

    code = main(["evaluate", "--run", str(lora_run), "--questions", "auto", "--json", str(out), "--limit", "5"])

    assert code == 0
    report = json.loads(out.read_text())
    saved = json.loads((lora_run / "evaluation" / "auto.json").read_text())
    assert saved["num_items"] == report["num_items"] == 5
    assert set(report["methods"]) == {"parse", "likelihood"}
    likelihood = report["methods"]["likelihood"]
    assert {"base", "tuned", "paired", "per_attribute", "grounding"} <= set(likelihood)
    assert 0.0 <= likelihood["paired"]["mcnemar_p_value"] <= 1.0
    assert report["radar"]["likelihood"]["axes"] == [row["attribute"] for row in likelihood["per_attribute"]]
    item = report["items"][0]
    for label in ("base", "tuned", "base_grey", "tuned_grey"):
        assert {"reply", "parsed", "parse_correct", "likelihood", "likelihood_correct"} <= set(item[label])

    with (lora_run / "evaluation" / "auto.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 5
    assert {"base_reply", "tuned_reply", "base_likelihood", "tuned_grey_parsed"} <= set(rows[0])


def test_cli_question_file_with_dataset_names(lora_run, tmp_path, capsys):
    questions = tmp_path / "my_set.csv"
    names = [path.name for path in sorted(SAMPLE_DATA.glob("*.jpg"))[:2]]
    questions.write_text(
        "image,question,options,answer,attribute\n"
        f"{names[0]},What is the cell type?,Basophil|Eosinophil,A,Cell type\n"
        f"{names[1]},Is the cell small?,yes|no,yes,Cell size\n"
    )

    code = main(
        ["evaluate", "--run", str(lora_run), "--questions", str(questions), "--scoring", "likelihood", "--no-grounding-control"]
    )

    assert code == 0
    saved = json.loads((lora_run / "evaluation" / "my_set.json").read_text())
    assert saved["num_items"] == 2
    assert list(saved["methods"]) == ["likelihood"]
    assert "base_grey" not in saved["items"][0]
    assert "likelihood: base" in capsys.readouterr().out


def test_cli_reports_invalid_question_row(lora_run, tmp_path):
    questions = tmp_path / "bad.csv"
    questions.write_text("image,question,options,answer\nmissing.png,Q,a|b,a\n")

    code = main(["evaluate", "--run", str(lora_run), "--questions", str(questions)])

    assert code == 2
