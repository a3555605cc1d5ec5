"""Read the chosen option out of a free-text reply to a multiple-choice prompt.

The parser is conservative: it returns an option only when the reply names
exactly one, and None when it names none or several. Callers count None as
wrong, never as a guess. Accepted forms include "The correct answer is B.",
"B", "(B)", "B.", "Answer: B", "**B**", "Option B" and an option's own text.
"""

from __future__ import annotations

import re

from engine.evaluation.questions import OPTION_LETTERS, normalise_text


_MARKUP = re.compile(r"\*+|`+|__+|#+")

# "answer is B", "answer: (B)", "choice B", "option B", "correct answer would be B".
_STATEMENT = re.compile(
    r"\b(?i:answer|choice|option)\b"
    r"(?:\s+(?i:is|would\s+be|will\s+be|should\s+be))?"
    r"\s*[:=\-]?\s*"
    r"(?:(?i:option|choice|letter)\s+)?"
    r"[\(\[]?([A-Za-z])[\)\]]?"
    r"(?![A-Za-z0-9'])"
)

# A capital letter standing alone: "B", "(B)", "B.", "[B]".
_LONE_LETTER = re.compile(r"(?<![A-Za-z0-9'])([A-Z])(?![A-Za-z0-9'])")

# A letter followed by a lowercase word is the article "A", the pronoun "I" or
# a name such as "B cells", not an option label, unless the word links it to
# another letter or a verdict ("A or B", "C is correct").
_FOLLOWED_BY_WORD = re.compile(r"\s+([a-z]+)")
_LINKING_WORDS = frozenset({"or", "and", "nor", "is", "was", "seems", "vs", "versus"})
_ALTERNATIVE = re.compile(r"\s*(?:,|/|\bor\b|\band\b)\s*[\(\[]?[A-Z](?![A-Za-z0-9'])")

_ONLY_PUNCTUATION = re.compile(r"^[\s.)\]:!,;]*$")
_LABEL_SEPARATOR = " \t.):;,-–—"


def parse_answer(reply: str, options: tuple[str, ...] | list[str]) -> int | None:
    """Return the 0-based index of the option that `reply` names, or None.

    An explicit statement ("answer is B") counts first, then letters standing
    alone. If those name several options ("A or B") the result is None, and
    so it is when the letter is followed by a different option's text
    ("B. Eosinophil" when B is Basophil). Without any letter, the reply must
    mention the text of exactly one option; where one option's text contains
    another's ("light blue", "blue"), the longer mention wins.
    """
    text = " ".join(_MARKUP.sub("", reply or "").split())
    if not text:
        return None
    letters = OPTION_LETTERS[: len(options)]

    stated = _stated_letters(text, letters)
    if stated:
        return _single_letter(text, stated, options)
    alone = _lone_letters(text, letters)
    if alone:
        return _single_letter(text, alone, options)

    mentioned = mentioned_options(text, options)
    return mentioned.pop() if len(mentioned) == 1 else None


def _stated_letters(text: str, letters: str) -> dict[int, int]:
    """Return {option index: end of the letter} for statements such as "the answer is B"."""
    named: dict[int, int] = {}
    for match in _STATEMENT.finditer(text):
        letter = match.group(1)
        if letter.islower():
            # Lowercase only when nothing but punctuation follows ("answer: b."),
            # so that "the answer is a basophil" is not read as option A.
            if not _ONLY_PUNCTUATION.match(text[match.end() :]):
                continue
            letter = letter.upper()
        if letter in letters:
            named.setdefault(letters.index(letter), match.end())
    return named


def _lone_letters(text: str, letters: str) -> dict[int, int]:
    """Return {option index: end of the letter} for capitals standing alone ("B", "(B)", "B.")."""
    named: dict[int, int] = {}
    bare = text.strip("()[]. ")
    if len(bare) == 1 and bare.upper() in letters:
        named[letters.index(bare.upper())] = len(text)
        return named
    for match in _LONE_LETTER.finditer(text):
        letter = match.group(1)
        if letter not in letters:
            continue
        word = _FOLLOWED_BY_WORD.match(text, match.end())
        if word is not None and word.group(1) not in _LINKING_WORDS:
            continue
        end = match.end() + 1 if text[match.end() : match.end() + 1] in (")", "]") else match.end()
        named.setdefault(letters.index(letter), end)
    return named


def _single_letter(text: str, named: dict[int, int], options) -> int | None:
    if len(named) > 1:
        return None
    index, end = next(iter(named.items()))
    if _ALTERNATIVE.match(text, end):
        return None
    labelled = _option_at_start(text[end:].lstrip(_LABEL_SEPARATOR), options)
    if labelled is not None and labelled != index:
        return None
    return index


def mentioned_options(text: str, options: tuple[str, ...] | list[str]) -> set[int]:
    """Return the indices of options whose text occurs in `text` as whole words, case-insensitively.

    A mention inside a longer mention of another option does not count.
    """
    normalised = normalise_text(text)
    spans: list[tuple[int, int, int]] = []
    for index, option in enumerate(options):
        pattern = r"(?<!\w)" + re.escape(normalise_text(option)) + r"(?!\w)"
        spans.extend((m.start(), m.end(), index) for m in re.finditer(pattern, normalised))
    outermost = {
        index
        for start, end, index in spans
        if not any(s <= start and end <= e and (e - s) > (end - start) for s, e, _ in spans)
    }
    return outermost


def _option_at_start(text: str, options: tuple[str, ...] | list[str]) -> int | None:
    """Return the option whose text `text` starts with (the longest one), or None."""
    normalised = normalise_text(text)
    best: tuple[int, int] | None = None
    for index, option in enumerate(options):
        candidate = normalise_text(option)
        if re.match(re.escape(candidate) + r"(?!\w)", normalised):
            if best is None or len(candidate) > best[1]:
                best = (index, len(candidate))
    return best[0] if best else None
