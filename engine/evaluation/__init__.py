"""Evaluation: multiple-choice questions, scoring, and base-versus-tuned comparison.

The app keeps one `Comparator` per run: `Comparator.load(run_dir)`, then
`quiz_questions()` or `load_questions(path)`, `evaluate(...)` and `chat(...)`.
"""

from engine.evaluation.attribute_questions import GenerationSettings, generate_attribute_questions
from engine.evaluation.comparison import Comparator
from engine.evaluation.parsing import parse_answer
from engine.evaluation.prompts import PromptSettings, format_question
from engine.evaluation.questions import Question, QuestionSetError, load_question_set
from engine.evaluation.report import radar_series, report_to_dict, save_report, summary_text
from engine.evaluation.results import EvaluationReport
from engine.evaluation.scoring import ScoringSettings
from engine.evaluation.statistics import mcnemar_exact, wilson_interval


__all__ = [
    "Comparator",
    "EvaluationReport",
    "GenerationSettings",
    "PromptSettings",
    "Question",
    "QuestionSetError",
    "ScoringSettings",
    "format_question",
    "generate_attribute_questions",
    "load_question_set",
    "mcnemar_exact",
    "parse_answer",
    "radar_series",
    "report_to_dict",
    "save_report",
    "summary_text",
    "wilson_interval",
]
