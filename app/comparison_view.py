"""Turn an evaluation report into the Compare tab's tables, radar chart, text and CSV; no gradio here."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd


ACCURACY_COLUMNS = ["Model", "Scoring", "Correct", "Questions", "Accuracy", "95% interval"]
ATTRIBUTE_COLUMNS = ["Attribute", "Scoring", "Base", "Tuned", "Questions"]
QUESTION_COLUMNS = ["Image", "Attribute", "Question", "Options", "Answer",
                    "Base reply", "Base parsed", "Base parsed correct", "Base likelihood", "Base likelihood correct",
                    "Tuned reply", "Tuned parsed", "Tuned parsed correct", "Tuned likelihood",
                    "Tuned likelihood correct"]
"""Columns of the per-question table when both scorings ran; a single scoring drops the other's columns."""
QUESTION_HEADERS = {"parse": "parsed", "likelihood": "likelihood"}
"""Per-question column word for each scoring; the CSV uses the engine's names (`parse`, `likelihood`)."""
EDIT_COLUMNS = ["image", "question", "options", "answer", "attribute"]
METHOD_LABELS = {"parse": "reply parsed", "likelihood": "option likelihood"}
RADAR_COLOURS = {"base": "#999999", "tuned": "#0072b2"}


def headline_method(report) -> str:
    """Return the scoring method whose numbers lead the summary: likelihood when present."""
    return "likelihood" if "likelihood" in report.methods else next(iter(report.methods))


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def accuracy_frame(report) -> pd.DataFrame:
    rows = []
    for method, summary in report.methods.items():
        for model, result in (("base", summary.base), ("tuned", summary.tuned)):
            interval = "n/a" if result.low is None else f"{result.low:.1%} – {result.high:.1%}"
            rows.append([model, METHOD_LABELS.get(method, method), result.correct, result.total,
                         _percent(result.value), interval])
    return pd.DataFrame(rows, columns=ACCURACY_COLUMNS)


def attribute_frame(report) -> pd.DataFrame:
    rows = []
    for method, summary in report.methods.items():
        for item in summary.per_attribute:
            rows.append([item.attribute, METHOD_LABELS.get(method, method), _percent(item.base.value),
                         _percent(item.tuned.value), item.base.total])
    return pd.DataFrame(rows, columns=ATTRIBUTE_COLUMNS)


def mcnemar_markdown(report) -> str:
    lines = ["**McNemar test** (exact, two-sided; base vs tuned on the same questions)"]
    for method, summary in report.methods.items():
        paired = summary.paired
        lines.append(
            f"- {METHOD_LABELS.get(method, method)}: only base right {paired.first_only}, "
            f"only tuned right {paired.second_only}, both {paired.both}, neither {paired.neither}; "
            f"p = {paired.p_value:.3g}" + (" (significant at 0.05)" if paired.p_value < 0.05 else "")
        )
    return "\n".join(lines)


def grounding_markdown(report) -> str:
    lines = ["**Grounding control**: the same questions with a uniform grey image in place of the real one."]
    any_check = False
    for method, summary in report.methods.items():
        for check in summary.grounding:
            any_check = True
            verdict = ("answers do not depend on the image" if check.image_not_used
                       else "the image helps")
            lines.append(
                f"- {check.variant}, {METHOD_LABELS.get(method, method)}: {_percent(check.with_image.value)} with "
                f"the image, {_percent(check.grey_image.value)} with grey; {verdict} "
                f"(McNemar p = {check.paired.p_value:.3g})."
            )
    if not any_check:
        lines.append("- Not run for this comparison.")
    return "\n".join(lines)


def summary_markdown(report) -> str:
    method = headline_method(report)
    summary = report.methods[method]
    lines = [
        f"**{summary.base.total} questions.** Base {_percent(summary.base.value)}, tuned "
        f"{_percent(summary.tuned.value)} ({METHOD_LABELS.get(method, method)}); took {report.elapsed_s:.0f} s."
    ]
    if report.model.get("demo"):
        lines.append("These numbers come from the demo model, a tiny random network: they are meaningless.")
    for variant, count in summary.unanswered.items():
        if count:
            lines.append(f"The {variant} model's reply named no single option for {count} questions.")
    lines.extend(f"Warning: {warning}" for warning in report.warnings)
    return "\n\n".join(lines)


def _choice_letter(outcome, method: str) -> str:
    if outcome is None:
        return ""
    choice = outcome.choice(method)
    return "" if choice is None else chr(ord("A") + choice)


def _question_columns(report, csv: bool) -> list[str]:
    base = ["image", "attribute", "question", "options", "answer"] if csv else QUESTION_COLUMNS[:5]
    columns = list(base)
    for variant in ("base", "tuned"):
        columns.append(f"{variant}_reply" if csv else f"{variant.capitalize()} reply")
        for method in ("parse", "likelihood"):
            if method not in report.methods:
                continue
            if csv:
                choice = "parsed" if method == "parse" else method
                columns += [f"{variant}_{choice}", f"{variant}_{method}_correct"]
            else:
                word = QUESTION_HEADERS[method]
                columns += [f"{variant.capitalize()} {word}", f"{variant.capitalize()} {word} correct"]
    return columns


def question_frame(report, csv: bool = False) -> pd.DataFrame:
    """Return one row per question with each model's raw reply and, per scoring, its choice and correctness.

    With `csv`, the columns have the names of the engine's CSV (`base_parsed`,
    `base_parse_correct`, `base_likelihood`, `base_likelihood_correct`, …).
    """
    methods = [method for method in ("parse", "likelihood") if method in report.methods]
    rows = []
    for item in report.items:
        question = item.question
        options = " | ".join(f"{chr(ord('A') + i)}. {text}" for i, text in enumerate(question.options))
        row = [
            question.image_name or Path(question.image_path).name,
            question.attribute or "",
            question.question,
            options,
            question.answer_letter,
        ]
        for variant in ("base", "tuned"):
            outcome = item.outcome(variant)
            row.append((outcome.reply if outcome else "") or "")
            for method in methods:
                row += [_choice_letter(outcome, method), item.correct(variant, method)]
        rows.append(row)
    return pd.DataFrame(rows, columns=_question_columns(report, csv))


def questions_to_edit_frame(questions) -> pd.DataFrame:
    """Return questions as the editable table (image name, question, options joined by |, answer letter)."""
    rows = [[q.image_name or str(q.image_path), q.question, " | ".join(q.options), q.answer_letter, q.attribute or ""]
            for q in questions]
    return pd.DataFrame(rows, columns=EDIT_COLUMNS)


def radar_svg(report, size: int = 420) -> str:
    """Return an SVG radar chart of per-attribute accuracy, base and tuned, for the headline method."""
    method = headline_method(report)
    attributes = report.methods[method].per_attribute
    if len(attributes) < 3:
        return "<p>The radar chart needs questions about at least three attributes.</p>"
    centre, radius = size / 2, size / 2 - 90
    count = len(attributes)
    # Room beside the chart for the longest label, at about 6.5 px per character of 11 px text.
    margin = max(20, round(6.5 * max(len(item.attribute) for item in attributes)) - 60)
    width = size + 2 * margin

    def point(index: int, value: float) -> tuple[float, float]:
        angle = -math.pi / 2 + 2 * math.pi * index / count
        return centre + radius * value * math.cos(angle), centre + radius * value * math.sin(angle)

    scoring = METHOD_LABELS.get(method, method)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{-margin} 0 {width} {size}" width="{width}" '
             f'height="{size}" role="img" aria-label="Accuracy per attribute, base and tuned, scored by {scoring}" '
             'class="radar-chart">',
             f'<text x="{-margin + 10}" y="18" font-size="12" fill="currentColor">Scoring: {scoring}</text>']
    for level in (0.25, 0.5, 0.75, 1.0):
        ring = " ".join(f"{x:.1f},{y:.1f}" for x, y in (point(i, level) for i in range(count)))
        parts.append(f'<polygon points="{ring}" fill="none" stroke="#cccccc" stroke-width="1"/>')
    for index, item in enumerate(attributes):
        x, y = point(index, 1.0)
        label_x, label_y = point(index, 1.18)
        if abs(label_x - centre) < 10:
            anchor = "middle"
        elif label_x > centre:
            anchor = "start"
        else:
            anchor = "end"
        parts.append(f'<line x1="{centre}" y1="{centre}" x2="{x:.1f}" y2="{y:.1f}" stroke="#dddddd"/>')
        parts.append(f'<text x="{label_x:.1f}" y="{label_y:.1f}" font-size="11" text-anchor="{anchor}" '
                     f'fill="currentColor">{html.escape(item.attribute)}</text>')
    for variant in ("base", "tuned"):
        values = [getattr(item, variant).value or 0.0 for item in attributes]
        shape = " ".join(f"{x:.1f},{y:.1f}" for x, y in (point(i, v) for i, v in enumerate(values)))
        colour = RADAR_COLOURS[variant]
        parts.append(f'<polygon points="{shape}" fill="{colour}" fill-opacity="0.2" stroke="{colour}" '
                     f'stroke-width="2"><title>{variant}</title></polygon>')
    parts.append(f'<text x="{-margin + 10}" y="{size - 28}" font-size="12" '
                 f'fill="{RADAR_COLOURS["base"]}">■ base</text>')
    parts.append(f'<text x="{-margin + 10}" y="{size - 10}" font-size="12" '
                 f'fill="{RADAR_COLOURS["tuned"]}">■ tuned</text>')
    parts.append("</svg>")
    return "".join(parts)


def summary_record(report) -> dict[str, Any]:
    """Return the few numbers the Runs tab shows for the latest comparison."""
    method = headline_method(report)
    summary = report.methods[method]
    return {
        "method": method,
        "questions": summary.base.total,
        "base_accuracy": summary.base.value,
        "tuned_accuracy": summary.tuned.value,
        "mcnemar_p": summary.paired.p_value,
        "question_set": report.question_set,
        "created": report.created,
    }


def write_summary(report, run_dir: Path, relative_path: str) -> None:
    path = Path(run_dir) / relative_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary_record(report), indent=2), encoding="utf-8")
