"""Question sets: loading from files, and generation from attribute reports."""

import json
import shutil
from pathlib import Path

import pytest

from engine.data.loading import load_samples
from engine.data.split import sample_key, split_samples
from engine.evaluation.attribute_questions import (
    GenerationSettings,
    attribute_values,
    generate_attribute_questions,
    select_quiz_samples,
)
from engine.evaluation.prompts import PromptSettings, format_question
from engine.evaluation.questions import QuestionSetError, load_question_set, normalise_text


SAMPLE_DATA = Path(__file__).resolve().parent.parent / "sample_data"


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    loaded, _ = load_samples(SAMPLE_DATA, tmp_path_factory.mktemp("images"))
    return loaded


@pytest.fixture
def question_folder(tmp_path):
    """A folder with two sample images, for question files that refer to them."""
    images = sorted(SAMPLE_DATA.glob("*.jpg"))[:2]
    for image in images:
        shutil.copy(image, tmp_path / image.name)
    return tmp_path, [image.name for image in images]


# --- generation -------------------------------------------------------------------


def test_generated_questions_contain_right_answer(samples):
    questions = generate_attribute_questions(samples, samples, GenerationSettings(max_options=4, seed=1))
    by_id = {sample.sample_id: sample for sample in samples}

    assert len(questions) > len(samples)
    for question in questions:
        sample = by_id[question.question_id.split(":")[0]]
        assert question.answer_text == sample.attributes[question.attribute]
        assert 2 <= len(question.options) <= 4


def test_generated_options_are_distinct(samples):
    questions = generate_attribute_questions(samples, samples, GenerationSettings(max_options=26))

    for question in questions:
        normalised = [normalise_text(option) for option in question.options]
        assert len(set(normalised)) == len(normalised), question.options


def test_generated_options_use_every_value_when_allowed(samples):
    values = attribute_values(samples)
    questions = generate_attribute_questions(samples, samples, GenerationSettings(max_options=26))

    for question in questions:
        assert sorted(question.options) == sorted(values[question.attribute])


def test_generation_is_seed_stable(samples):
    first = generate_attribute_questions(samples, samples, GenerationSettings(seed=3))
    again = generate_attribute_questions(list(reversed(samples)), samples, GenerationSettings(seed=3))
    other = generate_attribute_questions(samples, samples, GenerationSettings(seed=4))

    assert {q.question_id: q.options for q in first} == {q.question_id: q.options for q in again}
    assert [q.options for q in first] != [q.options for q in other]


def test_answer_position_varies(samples):
    questions = generate_attribute_questions(samples, samples, GenerationSettings(max_options=4))

    positions = {question.answer_index for question in questions}
    assert positions == {0, 1, 2, 3}


def test_single_valued_attribute_skipped(samples, caplog):
    # Every sample gets a "Stain" attribute with the same value: no question can be asked.
    from dataclasses import replace

    stained = [replace(s, attributes={**s.attributes, "Stain": "Wright"}) for s in samples]

    with caplog.at_level("INFO"):
        questions = generate_attribute_questions(stained[:5], stained)

    assert all(question.attribute != "Stain" for question in questions)
    assert "Stain='Wright'" in caplog.text


def test_question_text_reads_naturally(samples):
    questions = generate_attribute_questions(samples[:1], samples)

    texts = {question.attribute: question.question for question in questions}
    assert texts["Cell type"] == "What is the cell type?"


def test_generation_settings_reject_bad_values():
    with pytest.raises(ValueError, match="max_options is 1"):
        GenerationSettings(max_options=1)
    with pytest.raises(ValueError, match="must contain"):
        GenerationSettings(question_template="What is it?")


# --- quiz images of a run ---------------------------------------------------------


def test_quiz_selection_follows_split_file(samples, tmp_path):
    split = split_samples(samples, 0.25, seed=0)
    split_path = tmp_path / "split.json"
    split_path.write_text(json.dumps({"tune": [sample_key(s) for s in split.tune], "quiz": [sample_key(s) for s in split.quiz]}))

    selection = select_quiz_samples(samples, split_path, 0.25, 0)

    assert [s.sample_id for s in selection.samples] == [s.sample_id for s in split.quiz]
    assert selection.overlapping == 0


def test_quiz_overlap_warned_with_counts(samples, tmp_path, caplog):
    quiz = samples[:4]
    split_path = tmp_path / "split.json"
    keys = [sample_key(s) for s in samples]
    # Two quiz images are also listed as tuning images (same decoded pixels).
    split_path.write_text(json.dumps({"tune": keys[2:], "quiz": keys[:4]}))

    with caplog.at_level("WARNING"):
        selection = select_quiz_samples(samples, split_path, 0.2, 0)

    assert len(selection.samples) == len(quiz)
    assert selection.overlapping == 2
    assert "2 of 4 quiz images" in caplog.text


def test_quiz_selection_without_quiz_rejected(samples, tmp_path):
    split_path = tmp_path / "split.json"
    split_path.write_text(json.dumps({"tune": [sample_key(s) for s in samples], "quiz": []}))

    with pytest.raises(ValueError, match="no quiz images"):
        select_quiz_samples(samples, split_path, 0.0, 0)


def test_quiz_selection_recomputes_missing_split(samples, tmp_path):
    selection = select_quiz_samples(samples, tmp_path / "absent.json", 0.25, 0)

    expected = split_samples(samples, 0.25, seed=0).quiz
    assert [s.sample_id for s in selection.samples] == [s.sample_id for s in expected]
    assert "not found" in selection.warnings[0]


# --- loading from files -----------------------------------------------------------


def test_csv_loads_letters_text_and_pipes(question_folder):
    folder, images = question_folder
    (folder / "set.csv").write_text(
        "image,question,options,answer,attribute\n"
        f"{images[0]},What is the cell?,Basophil|Eosinophil|Lymphocyte,B,Cell type\n"
        f'{images[1]},Granules?,"[""yes"", ""no""]",no,\n'
    )

    questions = load_question_set(folder / "set.csv")

    assert questions[0].options == ("Basophil", "Eosinophil", "Lymphocyte")
    assert questions[0].answer_index == 1
    assert questions[0].attribute == "Cell type"
    assert questions[1].options == ("yes", "no")
    assert questions[1].answer_index == 1
    assert questions[1].attribute is None
    assert questions[0].image_path == folder / images[0]


def test_jsonl_loads_lists(question_folder):
    folder, images = question_folder
    rows = [
        {"image": images[0], "question": "Q1", "options": ["round", "oval"], "answer": "A", "type": "shape"},
        {"image": images[1], "question": "Q2", "options": "x|y|z", "answer": "(c)"},
    ]
    (folder / "set.jsonl").write_text("\n".join(json.dumps(row) for row in rows) + "\n")

    questions = load_question_set(folder / "set.jsonl")

    assert [q.answer_index for q in questions] == [0, 2]
    assert questions[0].attribute == "shape"


def test_image_found_in_dataset(question_folder, samples):
    folder, _ = question_folder
    name = samples[5].source
    (folder / "set.csv").write_text(f"image,question,options,answer\n{name},Q,a|b,a\n")

    questions = load_question_set(folder / "set.csv", samples=samples)

    assert questions[0].image_path == samples[5].image_path


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("missing.jpg,Q,a|b,a", r"row 2, column 'image': 'missing.jpg' not found"),
        ("{image},Q,a,a", r"row 2, column 'options': .* fewer than 2 options"),
        ("{image},Q,a|A ,a", r"row 2, column 'options': 'A' repeats 'a'"),
        ("{image},Q,a|b,C", r"row 2, column 'answer': 'C' is neither a letter A–B nor one of the options"),
        ("{image},,a|b,a", r"row 2, column 'question': the value is missing"),
        ("{image},Q,B|A,A", r"row 2, column 'answer': 'A' is both the letter of option 1"),
        ("{image},Q,a||b,a", r"row 2, column 'options': an option is empty"),
    ],
)
def test_invalid_rows_named(question_folder, row, message):
    folder, images = question_folder
    (folder / "set.csv").write_text("image,question,options,answer\n" + row.format(image=images[0]) + "\n")

    with pytest.raises(QuestionSetError, match=message):
        load_question_set(folder / "set.csv")


def test_every_invalid_row_reported(question_folder):
    folder, images = question_folder
    (folder / "set.csv").write_text(
        "image,question,options,answer\n" f"{images[0]},Q,a|b,z\n" f"{images[0]},Q,a|b,a\n" "nope.png,Q,a|b,a\n"
    )

    with pytest.raises(QuestionSetError) as error:
        load_question_set(folder / "set.csv")

    assert "2 invalid row(s)" in str(error.value)
    assert "row 2," in str(error.value)
    assert "row 4," in str(error.value)


def test_missing_column_named(question_folder):
    folder, images = question_folder
    (folder / "set.csv").write_text(f"image,question,answer\n{images[0]},Q,a\n")

    with pytest.raises(QuestionSetError, match="lacks column.*options"):
        load_question_set(folder / "set.csv")


def test_prompt_letters_options_and_instruction(samples):
    questions = generate_attribute_questions(samples[:1], samples, GenerationSettings(max_options=3))
    question = next(q for q in questions if len(q.options) == 3)

    prompt = format_question(question, PromptSettings(answer_instruction="Reply with a letter."))

    lines = prompt.splitlines()
    assert lines[0] == question.question
    assert lines[1:4] == [f"{letter}. {option}" for letter, option in zip("ABC", question.options, strict=True)]
    assert lines[4] == "Reply with a letter."
