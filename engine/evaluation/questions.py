"""Multiple-choice question sets: the type, and loading from CSV or JSON Lines.

A question set file has one question per row with the columns

- `image`: path of the image, relative to the file's folder (or absolute),
  or the name of an image of an ingested dataset when one is given;
- `question`: the question text;
- `options`: a JSON list, or the options in one cell separated by `|`;
- `answer`: the letter of the right option (`B`) or its exact text;
- `attribute` (or `type`), optional: what the question is about, used to
  report accuracy per attribute.
"""

from __future__ import annotations

import csv
import json
import logging
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from engine.data.sample import Sample


logger = logging.getLogger(__name__)

OPTION_LETTERS = string.ascii_uppercase
REQUIRED_COLUMNS = ("image", "question", "options", "answer")
ATTRIBUTE_COLUMNS = ("attribute", "type")


class QuestionSetError(ValueError):
    """Raised for a question set file that cannot be used; the message names the row and column."""


@dataclass(frozen=True)
class Question:
    """One multiple-choice question about one image.

    `answer_index` is the 0-based position of the right option in `options`,
    whose letters are A, B, C … in that order. `source` records where
    the question came from (file and row, or the dataset image and attribute).
    """

    question_id: str
    image_path: Path
    question: str
    options: tuple[str, ...]
    answer_index: int
    attribute: str | None = None
    source: str = ""
    image_name: str = ""
    """The image as the user knows it (path in the question file or dataset), for reports."""

    @property
    def answer_letter(self) -> str:
        return OPTION_LETTERS[self.answer_index]

    @property
    def answer_text(self) -> str:
        return self.options[self.answer_index]


def option_letter(index: int) -> str:
    return OPTION_LETTERS[index]


def normalise_text(text: str) -> str:
    """Return `text` case-folded with runs of whitespace collapsed, for comparing option texts."""
    return " ".join(text.split()).casefold()


# --- loading --------------------------------------------------------------------


SampleSource = Iterable[Sample] | Callable[[], Iterable[Sample]]


def load_question_set(path: Path, samples: SampleSource | None = None) -> list[Question]:
    """Load a question set from a `.csv`, `.jsonl` or `.json` (list of objects) file.

    Image paths are resolved against the file's folder first. A name not
    found there is looked up among `samples` (by source path, file name or
    sample id), so that a question set can refer to images of an ingested
    dataset. `samples` may be a function that returns them, called only when
    a name is not a file, because ingesting a dataset can take a while.
    Every problem is collected and raised at once as a `QuestionSetError`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Question set {path} not found; pass a .csv or .jsonl file, or 'auto'.")
    rows = _read_rows(path)
    if not rows:
        raise QuestionSetError(f"Question set {path} has no rows.")

    sample_index = _SampleIndex(samples)
    questions: list[Question] = []
    problems: list[str] = []
    for row_number, row in rows:
        try:
            questions.append(_question_from_row(path, row_number, row, sample_index))
        except QuestionSetError as error:
            problems.append(str(error))
    if problems:
        shown = problems[:20]
        more = f"\n… and {len(problems) - len(shown)} more." if len(problems) > len(shown) else ""
        raise QuestionSetError(f"Question set {path} has {len(problems)} invalid row(s):\n- " + "\n- ".join(shown) + more)
    logger.info("Loaded %d questions from %s", len(questions), path)
    return questions


def _read_rows(path: Path) -> list[tuple[int, dict]]:
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8-sig")
    if suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        columns = [name.strip().lower() for name in reader.fieldnames or []]
        missing = [name for name in REQUIRED_COLUMNS if name not in columns]
        if missing:
            raise QuestionSetError(
                f"Question set {path} lacks column(s) {', '.join(missing)}; its header is {reader.fieldnames}. "
                f"Required columns: {', '.join(REQUIRED_COLUMNS)}; optional: attribute."
            )
        # Row 1 is the header, so the first question is row 2 as a spreadsheet shows it.
        return [
            (number, {key.strip().lower(): value for key, value in row.items() if key is not None})
            for number, row in enumerate(reader, start=2)
        ]
    if suffix == ".jsonl":
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                raise QuestionSetError(f"{path} line {number} is not valid JSON: {error}.") from error
            if not isinstance(value, dict):
                raise QuestionSetError(f"{path} line {number} must be a JSON object, found {type(value).__name__}.")
            rows.append((number, {str(key).lower(): item for key, item in value.items()}))
        return rows
    if suffix == ".json":
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise QuestionSetError(f"{path} is not valid JSON: {error}.") from error
        if not isinstance(values, list) or not all(isinstance(value, dict) for value in values):
            raise QuestionSetError(f"{path} must contain a list of objects, one per question.")
        return [(number, {str(k).lower(): v for k, v in value.items()}) for number, value in enumerate(values, start=1)]
    raise QuestionSetError(f"Question set {path} has extension {suffix!r}; use .csv, .jsonl or .json.")


class _SampleIndex:
    """Dataset images by source path, file name and sample id, built on first lookup."""

    def __init__(self, samples: SampleSource | None) -> None:
        self.samples = samples
        self.names: dict[str, Sample] | None = None

    def __bool__(self) -> bool:
        return self.samples is not None

    def get(self, name: str) -> Sample | None:
        if self.samples is None:
            return None
        if self.names is None:
            samples = self.samples() if callable(self.samples) else self.samples
            self.names = {}
            for sample in samples:
                for key in (sample.source, Path(sample.source).name, sample.sample_id):
                    self.names.setdefault(key, sample)
        return self.names.get(name)


def _question_from_row(path: Path, row_number: int, row: dict, sample_index: _SampleIndex) -> Question:
    where = f"row {row_number}"
    for column in REQUIRED_COLUMNS:
        value = row.get(column)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise QuestionSetError(f"{where}, column {column!r}: the value is missing.")

    image_name = str(row["image"]).strip()
    image_path = _resolve_image(path.parent, image_name, sample_index, where)
    question = str(row["question"]).strip()
    options = parse_options(row["options"], where)
    answer_index = resolve_answer(row["answer"], options, where)
    attribute = next((str(row[c]).strip() for c in ATTRIBUTE_COLUMNS if row.get(c) not in (None, "")), None)
    return Question(
        question_id=f"{path.name}:{row_number}",
        image_path=image_path,
        question=question,
        options=options,
        answer_index=answer_index,
        attribute=attribute,
        source=f"{path.name} {where}",
        image_name=image_name,
    )


def _resolve_image(folder: Path, name: str, sample_index: _SampleIndex, where: str) -> Path:
    candidate = Path(name).expanduser()
    if not candidate.is_absolute():
        candidate = folder / candidate
    if candidate.is_file():
        return candidate
    sample = sample_index.get(name) or sample_index.get(Path(name).name)
    if sample is not None:
        return Path(sample.image_path)
    hint = " or an image of the run's dataset" if sample_index else ""
    raise QuestionSetError(
        f"{where}, column 'image': {name!r} not found (looked for {candidate}{hint}). "
        "Give the path relative to the question file's folder."
    )


def parse_options(value: object, where: str = "options") -> tuple[str, ...]:
    """Parse an options cell: a list, a JSON list in a string, or texts separated by `|`.

    Raises QuestionSetError for fewer than 2 or more than 26 options, empty
    options, and options that repeat (compared case- and space-insensitively).
    """
    if isinstance(value, list):
        options = [str(item).strip() for item in value]
    elif isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as error:
                raise QuestionSetError(f"{where}, column 'options': {text!r} is not a valid JSON list ({error}).") from error
            if not isinstance(parsed, list):
                raise QuestionSetError(f"{where}, column 'options': expected a JSON list, got {text!r}.")
            options = [str(item).strip() for item in parsed]
        else:
            options = [item.strip() for item in text.split("|")]
    else:
        raise QuestionSetError(f"{where}, column 'options': expected a list or `A|B|C` text, got {value!r}.")

    if len(options) < 2:
        raise QuestionSetError(f"{where}, column 'options': {options!r} has fewer than 2 options; separate them with `|`.")
    if len(options) > len(OPTION_LETTERS):
        raise QuestionSetError(f"{where}, column 'options': {len(options)} options; at most {len(OPTION_LETTERS)} have letters.")
    if any(not option for option in options):
        raise QuestionSetError(f"{where}, column 'options': an option is empty in {options!r}.")
    seen: dict[str, str] = {}
    for option in options:
        key = normalise_text(option)
        if key in seen:
            raise QuestionSetError(f"{where}, column 'options': {option!r} repeats {seen[key]!r}; options must differ.")
        seen[key] = option
    return tuple(options)


def resolve_answer(value: object, options: tuple[str, ...], where: str = "answer") -> int:
    """Return the index of the right option from a letter (`B`, `b`, `(B)`) or an option's text."""
    text = str(value).strip()
    by_text = [i for i, option in enumerate(options) if normalise_text(option) == normalise_text(text)]
    letter = text.strip("()[]. ").upper()
    by_letter = OPTION_LETTERS.index(letter) if len(letter) == 1 and letter in OPTION_LETTERS[: len(options)] else None

    if by_text and by_letter is not None and by_text[0] != by_letter:
        raise QuestionSetError(
            f"{where}, column 'answer': {text!r} is both the letter of option {by_letter + 1} "
            f"({options[by_letter]!r}) and the text of option {by_text[0] + 1}; reword the options."
        )
    if by_text:
        return by_text[0]
    if by_letter is not None:
        return by_letter
    letters = OPTION_LETTERS[: len(options)]
    raise QuestionSetError(
        f"{where}, column 'answer': {text!r} is neither a letter {letters[0]}–{letters[-1]} "
        f"nor one of the options {list(options)}."
    )
