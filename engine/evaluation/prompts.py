"""The text of a multiple-choice prompt: question, lettered options, answer instruction."""

from __future__ import annotations

from dataclasses import dataclass

from engine.evaluation.questions import Question, option_letter


DEFAULT_ANSWER_PREFIX = "The correct answer is "
DEFAULT_ANSWER_INSTRUCTION = (
    "Respond with only the letter of the correct choice, starting with 'The correct answer is'."
)


@dataclass
class PromptSettings:
    answer_instruction: str = DEFAULT_ANSWER_INSTRUCTION
    """Line after the options with the expected answer format. An empty string leaves it out."""
    answer_prefix: str = DEFAULT_ANSWER_PREFIX
    """Start of the reply that likelihood scoring places before the option letter."""


def format_question(question: Question, settings: PromptSettings | None = None) -> str:
    """Return the user text: the question, one `A. option` line per option, then the instruction."""
    settings = settings or PromptSettings()
    lines = [question.question]
    lines.extend(f"{option_letter(i)}. {option}" for i, option in enumerate(question.options))
    if settings.answer_instruction:
        lines.append(settings.answer_instruction)
    return "\n".join(lines)
