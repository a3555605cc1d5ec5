"""Scoring with tiny models: batched generation, option likelihood, grounding summary."""

from pathlib import Path

import pytest
import torch
from PIL import Image

from engine.data.loading import load_samples
from engine.evaluation.attribute_questions import GenerationSettings, generate_attribute_questions
from engine.evaluation.chat import stream_reply
from engine.evaluation.prompts import PromptSettings, format_question
from engine.evaluation.questions import Question
from engine.evaluation.results import ItemResult, Outcome, summarise_method
from engine.evaluation.scoring import (
    OptionScores,
    QuestionImages,
    ScoringSettings,
    generate_replies,
    option_continuations,
    score_options,
)
from engine.models.loading import load_model
from engine.models.tiny import TINY_FAMILIES


SAMPLE_DATA = Path(__file__).resolve().parent.parent / "sample_data"


@pytest.fixture(scope="module")
def questions(tmp_path_factory) -> list[Question]:
    samples, _ = load_samples(SAMPLE_DATA, tmp_path_factory.mktemp("images"))
    generated = generate_attribute_questions(samples[:6], samples, GenerationSettings(max_options=4, seed=0))
    return [question for question in generated if len(question.options) >= 3][:6]


@pytest.fixture(scope="module")
def demo():
    return load_model("demo")


def test_likelihood_recovers_planted_letter(questions):
    loaded = load_model("demo")
    tokenizer = loaded.tokenizer
    plan = option_continuations(tokenizer, questions[0], PromptSettings().answer_prefix, "letter")
    assert plan.single_token
    planted = plan.options[2][0]  # the token of letter C

    head = loaded.model.lm_head
    with torch.no_grad():
        head.weight.zero_()
    head.bias = torch.nn.Parameter(torch.zeros(head.out_features))
    with torch.no_grad():
        head.bias[planted] = 20.0

    results, _ = score_options(
        loaded.model, loaded.processor, loaded.family, questions, QuestionImages(questions, None), ScoringSettings()
    )

    assert [result.choice for result in results] == [2] * len(questions)
    for result in results:
        assert result.scores[2] > -1e-3
        assert max(result.scores[:2]) < -15


def test_likelihood_batches_match_single(demo, questions):
    images = QuestionImages(questions, None)
    batched, _ = score_options(demo.model, demo.processor, demo.family, questions, images, ScoringSettings(batch_size=4))
    single, _ = score_options(demo.model, demo.processor, demo.family, questions, images, ScoringSettings(batch_size=1))

    for one, other in zip(batched, single, strict=True):
        assert one.scores == pytest.approx(other.scores, abs=1e-4)


def test_text_likelihood_scores_every_option(demo, questions):
    images = QuestionImages(questions, None)
    settings = ScoringSettings(likelihood_target="text", length_normalise=True, batch_size=5)

    results, tokenization = score_options(demo.model, demo.processor, demo.family, questions, images, settings)
    single, _ = score_options(
        demo.model, demo.processor, demo.family, questions, images,
        ScoringSettings(likelihood_target="text", length_normalise=True, batch_size=1),
    )

    assert tokenization == "natural"
    for result, question, other in zip(results, questions, single, strict=True):
        assert len(result.scores) == len(question.options)
        assert result.choice == max(range(len(result.scores)), key=result.scores.__getitem__)
        assert result.scores == pytest.approx(other.scores, abs=1e-4)


def test_generation_batches_match_single(demo, questions):
    texts = [format_question(question) for question in questions]
    images = QuestionImages(questions, None)

    batched = generate_replies(demo.model, demo.processor, demo.family, texts, images, 12, batch_size=4)
    single = generate_replies(demo.model, demo.processor, demo.family, texts, images, 12, batch_size=1)

    assert batched == single
    assert all(isinstance(reply, str) for reply in batched)


def test_progress_counts_every_item(demo, questions):
    counts = []
    images = QuestionImages(questions, None)

    generate_replies(demo.model, demo.processor, demo.family, ["Q"] * len(questions), images, 2, 4, counts.append)
    score_options(
        demo.model, demo.processor, demo.family, questions, images,
        ScoringSettings(likelihood_target="text", batch_size=5), counts.append,
    )

    assert sum(counts) == 2 * len(questions)


def test_grey_image_keeps_size(questions):
    real = QuestionImages(questions, 48)[0]
    grey = QuestionImages(questions, 48, grey=True)[0]

    assert grey.size == real.size
    assert max(real.size) == 48
    assert grey.getextrema() == ((128, 128), (128, 128), (128, 128))


def test_chat_streams_growing_text(demo, questions):
    image = Image.open(questions[0].image_path)

    pieces = list(stream_reply(demo.model, demo.processor, demo.family, image, "Describe the image.", 12))
    reference = generate_replies(demo.model, demo.processor, demo.family, ["Describe the image."], [image.convert("RGB")], 12)

    assert len(pieces) >= 2
    for earlier, later in zip(pieces, pieces[1:], strict=False):
        assert later.startswith(earlier)
    assert pieces[-1].strip() == reference[0]


def test_chat_stops_when_closed(demo, questions):
    stream = stream_reply(demo.model, demo.processor, demo.family, questions[0].image_path, "Describe.", 200)

    first = next(stream)
    stream.close()

    assert isinstance(first, str)


def test_scoring_settings_reject_bad_values():
    with pytest.raises(ValueError, match="scoring is 'guess'"):
        ScoringSettings(scoring="guess")
    with pytest.raises(ValueError, match="batch_size is 0"):
        ScoringSettings(batch_size=0)


@pytest.mark.parametrize("family", [name for name in TINY_FAMILIES if name != "llava"])
def test_batched_scoring_across_families(family, tiny_model_factory, questions):
    loaded = load_model(str(tiny_model_factory(family)))
    items = questions[:3]
    images = QuestionImages(items, 64)
    texts = [format_question(question) for question in items]

    batched, _ = score_options(loaded.model, loaded.processor, loaded.family, items, images, ScoringSettings(batch_size=3))
    single, _ = score_options(loaded.model, loaded.processor, loaded.family, items, images, ScoringSettings(batch_size=1))
    replies = generate_replies(loaded.model, loaded.processor, loaded.family, texts, images, 6, batch_size=3)
    one_by_one = generate_replies(loaded.model, loaded.processor, loaded.family, texts, images, 6, batch_size=1)

    for one, other in zip(batched, single, strict=True):
        assert one.scores == pytest.approx(other.scores, abs=1e-3)
    assert replies == one_by_one


# --- summaries without a model ---------------------------------------------------


def _item(answer: int, attribute: str, **choices) -> ItemResult:
    question = Question("q", Path("x.png"), "Q?", ("a", "b", "c"), answer, attribute)
    item = ItemResult(question)
    for key, (parsed, likely) in choices.items():
        variant, _, condition = key.partition("_")
        likelihood = OptionScores((0.0, 0.0, 0.0), likely)
        item.outcomes[(variant, condition or "image")] = Outcome(f"reply {parsed}", parsed, likelihood)
    return item


def test_summary_counts_unanswered_as_wrong():
    items = [
        _item(0, "size", base=(None, 0), tuned=(0, 0)),
        _item(1, "size", base=(1, 1), tuned=(None, 2)),
        _item(2, "shape", base=(None, 2), tuned=(2, 2)),
    ]

    summary = summarise_method(items, "parse", grounding=False)

    assert summary.base.correct == 1
    assert summary.tuned.correct == 2
    assert summary.unanswered == {"base": 2, "tuned": 1}
    assert summary.paired.first_only == 1
    assert summary.paired.second_only == 2
    assert [row.attribute for row in summary.per_attribute] == ["shape", "size"]
    assert summary.per_attribute[1].base.correct == 1
    assert summary.per_attribute[1].base.total == 2


def test_grounding_flags_model_that_ignores_image():
    items = [
        _item(0, "size", base=(0, 0), base_grey=(0, 0), tuned=(0, 0), tuned_grey=(1, 1)),
        _item(1, "size", base=(0, 0), base_grey=(1, 1), tuned=(1, 1), tuned_grey=(0, 0)),
    ]

    checks = {check.variant: check for check in summarise_method(items, "likelihood", grounding=True).grounding}

    assert checks["base"].with_image.correct == 1
    assert checks["base"].grey_image.correct == 2
    assert checks["base"].image_not_used
    assert checks["tuned"].with_image.correct == 2
    assert checks["tuned"].grey_image.correct == 0
    assert not checks["tuned"].image_not_used
