"""Compare a run's base and tuned model on the same questions, with one model in memory.

`Comparator` is what the app keeps loaded: it owns the model of one run,
scores question sets with both variants, and streams chat replies. A lock
serialises every use of the model, because switching between base and tuned
changes the shared weights.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import torch

from engine.config import RunConfig
from engine.data.loading import load_samples
from engine.data.sample import Sample
from engine.evaluation.attribute_questions import GenerationSettings, generate_attribute_questions, select_quiz_samples
from engine.evaluation.chat import ImageInput, stream_reply
from engine.evaluation.parsing import parse_answer
from engine.evaluation.prompts import format_question
from engine.evaluation.questions import Question, load_question_set
from engine.evaluation.report import save_report
from engine.evaluation.results import EvaluationReport, ItemResult, Outcome, summarise_method
from engine.evaluation.scoring import QuestionImages, Scoring, ScoringSettings, generate_replies, score_options
from engine.evaluation.variants import VARIANTS, ModelVariants, Variant
from engine.models.demo import cache_root
from engine.runs.folder import RunFolder


logger = logging.getLogger(__name__)

EvaluationProgress = Callable[[int, int, str], None]
"""Called as (items done, items to do, stage) while an evaluation runs; every variant,
image condition and scoring method counts each item once."""


class Comparator:
    """The base and tuned model of one run, loaded once, for evaluation and side-by-side chat."""

    def __init__(self, variants: ModelVariants, run_dir: Path, config: RunConfig | None = None) -> None:
        self.variants = variants
        self.folder = RunFolder(Path(run_dir))
        self.config = config or RunConfig()
        self.image_size = self.config.training.image_size
        self._lock = threading.Lock()
        self._samples: list[Sample] | None = None
        self._data_path: Path | None = None

    @classmethod
    def load(cls, run_dir: Path, device: torch.device | None = None, precision: str | None = None) -> Comparator:
        """Load the run in `run_dir`: its base model once, plus its adapter or trained weights."""
        folder = RunFolder(Path(run_dir))
        if not folder.root.is_dir():
            raise FileNotFoundError(f"Run folder {folder.root} not found; pass the --out folder of a training run.")
        config = RunConfig.load(folder.config_path) if folder.config_path.is_file() else None
        variants = ModelVariants.load(folder.root, device=device, precision=precision)
        return cls(variants, folder.root, config)

    @property
    def model(self):
        return self.variants.model

    @property
    def processor(self):
        return self.variants.loaded.processor

    @property
    def family(self):
        return self.variants.loaded.family

    @property
    def kind(self) -> str:
        """How the tuned variant differs from the base: `lora`, `full` or `none`."""
        return self.variants.kind

    # --- questions ----------------------------------------------------------------

    def dataset_samples(self, data_path: Path | None = None) -> list[Sample]:
        """Return the samples of the run's dataset (or of `data_path`), ingested once and cached."""
        path = Path(data_path) if data_path is not None else Path(self.config.data.path)
        if self._samples is None or self._data_path != path:
            if not path.exists():
                raise FileNotFoundError(
                    f"The run's data {path} not found (paths are relative to where training started). "
                    "Pass the data folder explicitly (--data)."
                )
            cache_dir = Path(self.config.data.cache_dir) if self.config.data.cache_dir else cache_root() / "images"
            self._samples, _ = load_samples(path, cache_dir)
            self._data_path = path
        return self._samples

    def quiz_questions(
        self, settings: GenerationSettings | None = None, data_path: Path | None = None
    ) -> tuple[list[Question], list[str]]:
        """Generate attribute questions on the run's quiz images; return them and any warnings."""
        samples = self.dataset_samples(data_path)
        selection = select_quiz_samples(
            samples, self.folder.split_path, self.config.data.quiz_fraction, self.config.data.split_seed
        )
        questions = generate_attribute_questions(selection.samples, samples, settings)
        if not questions:
            raise ValueError(
                "No question could be generated: the quiz images' reports are not `key: value` lines, or every "
                "attribute has a single value in the dataset. Pass a question file with --questions."
            )
        return questions, list(selection.warnings)

    def load_questions(self, path: Path, data_path: Path | None = None) -> list[Question]:
        """Load a question file; image names not found beside it are looked up in the run's dataset."""
        return load_question_set(Path(path), samples=lambda: self.dataset_samples(data_path))

    # --- evaluation ---------------------------------------------------------------

    def evaluate(
        self,
        questions: Sequence[Question],
        scoring: Scoring = "both",
        limit: int | None = None,
        progress_callback: EvaluationProgress | None = None,
        settings: ScoringSettings | None = None,
        name: str = "questions",
        save: bool = True,
        warnings: Sequence[str] = (),
    ) -> EvaluationReport:
        """Score base and tuned on identical items and summarise the comparison.

        `settings` overrides `scoring` when given. With `save`, the report is
        written to `<run>/evaluation/<name>.json` and `.csv`.
        """
        settings = settings or ScoringSettings(scoring=scoring, image_size=self.image_size)
        items = list(questions if limit is None else questions[:limit])
        if limit is not None and limit < 1:
            raise ValueError(f"limit is {limit}; it must be at least 1.")
        if not items:
            raise ValueError("There are no questions to evaluate.")

        started = time.monotonic()
        results = [ItemResult(question) for question in items]
        tokenization = self._score_all(results, settings, progress_callback)

        methods = {}
        if settings.uses_generation:
            methods["parse"] = summarise_method(results, "parse", settings.grounding_control)
        if settings.uses_likelihood:
            methods["likelihood"] = summarise_method(results, "likelihood", settings.grounding_control)
        report = EvaluationReport(
            run_dir=str(self.folder.root),
            question_set=name,
            items=results,
            methods=methods,
            settings=dataclasses.asdict(settings),
            model=self._model_description(),
            letter_tokenization=tokenization,
            warnings=list(warnings),
            elapsed_s=round(time.monotonic() - started, 2),
            created=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        if save:
            save_report(report, self.folder.root / "evaluation", name)
        return report

    def _score_all(
        self, results: list[ItemResult], settings: ScoringSettings, progress_callback: EvaluationProgress | None
    ) -> str | None:
        items = [result.question for result in results]
        conditions = ("image", "grey") if settings.grounding_control else ("image",)
        methods = int(settings.uses_generation) + int(settings.uses_likelihood)
        total = len(items) * len(VARIANTS) * len(conditions) * methods
        done = 0
        tokenization = None
        user_texts = [format_question(question, settings.prompt) for question in items]

        with self._lock:
            for variant in VARIANTS:
                with self.variants.use(variant):
                    for condition in conditions:
                        images = QuestionImages(items, settings.image_size, grey=condition == "grey")
                        for result in results:
                            result.outcomes[(variant, condition)] = Outcome()

                        def advance(count: int, stage: str = f"{variant} model, {condition} image") -> None:
                            nonlocal done
                            done += count
                            if progress_callback is not None:
                                progress_callback(done, total, stage)

                        if settings.uses_generation:
                            replies = generate_replies(
                                self.model, self.processor, self.family, user_texts, images,
                                settings.max_new_tokens, settings.batch_size, progress=advance,
                            )
                            for result, reply in zip(results, replies, strict=True):
                                outcome = result.outcomes[(variant, condition)]
                                outcome.reply = reply
                                outcome.parsed = parse_answer(reply, result.question.options)
                        if settings.uses_likelihood:
                            scores, tokenization = score_options(
                                self.model, self.processor, self.family, items, images, settings, progress=advance
                            )
                            for result, option_scores in zip(results, scores, strict=True):
                                result.outcomes[(variant, condition)].likelihood = option_scores
        return tokenization

    def _model_description(self) -> dict:
        info = self.variants.info
        return {
            "base_model": info.base_model,
            "base_model_source": self.variants.loaded.source,
            "family": info.family,
            "tuned_by": self.kind,
            "mode": info.mode,
            "trainable": list(info.trainable),
            "instruction_in_training": info.instruction,
            "demo": self.variants.loaded.is_demo or info.base_model == "demo",
        }

    # --- chat -----------------------------------------------------------------------

    def chat(
        self, image: ImageInput, instruction: str, which: Variant = "tuned", max_new_tokens: int = 256
    ) -> Iterator[str]:
        """Stream the reply of the base or tuned model to `instruction` about `image`.

        Each value is the whole reply so far. The model is locked while the
        reply streams, so a second chat or an evaluation waits for it; close
        the iterator to stop early.
        """
        if which not in VARIANTS:
            raise ValueError(f"which is {which!r}; choose base or tuned.")
        if not instruction or not instruction.strip():
            raise ValueError("The instruction is empty; type a question or request about the image.")
        return self._stream(image, instruction, which, max_new_tokens)

    def _stream(self, image: ImageInput, instruction: str, which: Variant, max_new_tokens: int) -> Iterator[str]:
        with self._lock, self.variants.use(which):
            yield from stream_reply(
                self.model, self.processor, self.family, image, instruction, max_new_tokens, self.image_size
            )
