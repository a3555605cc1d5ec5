"""Write an evaluation report as JSON (summary and items) and CSV (one row per item), and as text."""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
import re
from pathlib import Path

from engine.evaluation.questions import OPTION_LETTERS
from engine.evaluation.results import EvaluationReport, ItemResult, MethodSummary
from engine.evaluation.statistics import Accuracy


logger = logging.getLogger(__name__)

CONDITIONS = (("base", "image"), ("tuned", "image"), ("base", "grey"), ("tuned", "grey"))


def condition_label(variant: str, condition: str) -> str:
    return variant if condition == "image" else f"{variant}_grey"


def _letter(index: int | None) -> str | None:
    return OPTION_LETTERS[index] if index is not None else None


def _clean(value):
    # JSON has no NaN: a missing value is written as null.
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(item) for item in value]
    return value


def _accuracy_dict(result: Accuracy) -> dict:
    return dataclasses.asdict(result)


def method_to_dict(summary: MethodSummary) -> dict:
    return {
        "base": _accuracy_dict(summary.base),
        "tuned": _accuracy_dict(summary.tuned),
        "paired": {
            "both_right": summary.paired.both,
            "base_only": summary.paired.first_only,
            "tuned_only": summary.paired.second_only,
            "neither": summary.paired.neither,
            "mcnemar_p_value": summary.paired.p_value,
        },
        "unanswered": summary.unanswered,
        "unanswered_share": summary.unanswered_share,
        "per_attribute": [
            {"attribute": row.attribute, "base": _accuracy_dict(row.base), "tuned": _accuracy_dict(row.tuned)}
            for row in summary.per_attribute
        ],
        "grounding": [
            {
                "variant": check.variant,
                "with_image": _accuracy_dict(check.with_image),
                "grey_image": _accuracy_dict(check.grey_image),
                "image_only_right": check.paired.first_only,
                "grey_only_right": check.paired.second_only,
                "mcnemar_p_value": check.paired.p_value,
                "image_not_used": check.image_not_used,
            }
            for check in summary.grounding
        ],
    }


def radar_series(summary: MethodSummary) -> dict:
    """Return per-attribute accuracy as {"axes": [...], "base": [...], "tuned": [...]}, one axis per attribute."""
    return {
        "axes": [row.attribute for row in summary.per_attribute],
        "base": [row.base.value for row in summary.per_attribute],
        "tuned": [row.tuned.value for row in summary.per_attribute],
    }


def item_to_dict(item: ItemResult) -> dict:
    question = item.question
    result = {
        "question_id": question.question_id,
        "image": question.image_name or str(question.image_path),
        "image_path": str(question.image_path),
        "attribute": question.attribute,
        "question": question.question,
        "options": list(question.options),
        "answer": question.answer_letter,
        "answer_text": question.answer_text,
    }
    for variant, condition in CONDITIONS:
        outcome = item.outcome(variant, condition)
        if outcome is None:
            continue
        entry: dict = {}
        if outcome.reply is not None:
            entry.update(
                reply=outcome.reply,
                parsed=_letter(outcome.parsed),
                parse_correct=item.correct(variant, "parse", condition),
            )
        if outcome.likelihood is not None:
            entry.update(
                likelihood=_letter(outcome.likelihood.choice),
                likelihood_scores=list(outcome.likelihood.scores),
                likelihood_correct=item.correct(variant, "likelihood", condition),
            )
        result[condition_label(variant, condition)] = entry
    return result


def report_to_dict(report: EvaluationReport) -> dict:
    """Return the whole report as JSON-ready data."""
    return _clean(
        {
            "run_dir": report.run_dir,
            "question_set": report.question_set,
            "created": report.created,
            "elapsed_s": report.elapsed_s,
            "num_items": len(report.items),
            "model": report.model,
            "settings": report.settings,
            "letter_tokenization": report.letter_tokenization,
            "warnings": report.warnings,
            "methods": {name: method_to_dict(summary) for name, summary in report.methods.items()},
            "radar": {name: radar_series(summary) for name, summary in report.methods.items()},
            "items": [item_to_dict(item) for item in report.items],
        }
    )


def csv_rows(report: EvaluationReport) -> tuple[list[str], list[dict]]:
    """Return the CSV header and one flat row per item."""
    header = ["question_id", "image", "attribute", "question", "options", "answer", "answer_text"]
    fields = ("reply", "parsed", "parse_correct", "likelihood", "likelihood_correct")
    rows = []
    for item in report.items:
        data = item_to_dict(item)
        row = {key: data[key] for key in header}
        row["options"] = " | ".join(f"{OPTION_LETTERS[i]}. {option}" for i, option in enumerate(data["options"]))
        for variant, condition in CONDITIONS:
            label = condition_label(variant, condition)
            for name in fields:
                if name in data.get(label, {}):
                    row[f"{label}_{name}"] = data[label][name]
        rows.append(row)
    extra = [key for row in rows for key in row if key not in header]
    header += list(dict.fromkeys(extra))
    return header, rows


def safe_name(name: str) -> str:
    """Return `name` usable as a file name (letters, digits, `-`, `_`, `.`)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return cleaned or "questions"


def save_report(report: EvaluationReport, folder: Path, name: str) -> tuple[Path, Path]:
    """Write `<folder>/<name>.json` and `<name>.csv`; return both paths."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = safe_name(name)
    json_path = folder / f"{stem}.json"
    csv_path = folder / f"{stem}.csv"
    write_json(report, json_path)

    header, rows = csv_rows(report)
    temporary = csv_path.with_suffix(".csv.tmp")
    with temporary.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(temporary, csv_path)
    logger.info("Wrote %s and %s", json_path, csv_path)
    return json_path, csv_path


def write_json(report: EvaluationReport, path: Path) -> None:
    """Write the report as JSON atomically, so that a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(report_to_dict(report), indent=2, allow_nan=False), encoding="utf-8")
    os.replace(temporary, path)


# --- text summary -------------------------------------------------------------------


def _percent(result: Accuracy) -> str:
    if result.value is None:
        return "n/a"
    return f"{100 * result.value:.1f}% [{100 * result.low:.1f}–{100 * result.high:.1f}]"


def summary_text(report: EvaluationReport) -> str:
    """Return a few lines for a terminal: accuracy, paired test, grounding, per attribute."""
    lines = [f"Evaluation of {report.run_dir} on {report.question_set}: {len(report.items)} items, {report.elapsed_s:.1f} s"]
    if report.model.get("demo"):
        lines.append("The base model is the random demo model: the scores are meaningless.")
    for name, summary in report.methods.items():
        lines.append(f"{name}: base {_percent(summary.base)}  tuned {_percent(summary.tuned)}  (95% Wilson intervals)")
        if summary.unanswered:
            shares = ", ".join(f"{variant} {count}" for variant, count in summary.unanswered.items())
            lines.append(f"  replies naming no single option (counted wrong): {shares}")
        paired = summary.paired
        lines.append(
            f"  both right {paired.both}, base only {paired.first_only}, tuned only {paired.second_only}, "
            f"neither {paired.neither}; exact McNemar p = {paired.p_value:.4g}"
        )
        for check in summary.grounding:
            flag = "  <- scores as well without the image" if check.image_not_used else ""
            lines.append(f"  {check.variant} with grey image: {_percent(check.grey_image)}{flag}")
        for row in summary.per_attribute:
            lines.append(f"  {row.attribute} (n={row.base.total}): base {_percent(row.base)}, tuned {_percent(row.tuned)}")
    for warning in report.warnings:
        lines.append(f"Warning: {warning}")
    return "\n".join(lines)
