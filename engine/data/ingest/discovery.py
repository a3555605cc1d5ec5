"""Walking an input folder and pairing each image with its report.

Three layouts are recognised, per folder tree:

* a manifest (`.csv`, `.tsv`, `.jsonl`) at the top of the tree, or in the
  one folder that wraps the whole tree, names every image and its report;
* otherwise an image and a report with the same stem in the same folder
  form a pair (`a.jpg` + `a.txt`);
* otherwise a folder with no such pairs and exactly one report is a study
  folder: that report belongs to every image in the folder and in its
  subfolders that have no report of their own (`case17/IM0001.dcm` +
  `case17/report.txt`).
"""

from __future__ import annotations

import itertools
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from engine.data.ingest.archive import extract_archive
from engine.data.ingest.file_kinds import FileKind, classify, system_file_reason
from engine.data.ingest.manifest import plan_from_manifests
from engine.data.ingest.options import IngestOptions
from engine.data.ingest.plan import (
    ImagePlan,
    IngestPlan,
    ReportUse,
    failed,
    folder_group_key,
    skipped,
)
from engine.data.ingest.report_text import DecodedText, read_report


# Preferred report when one stem has several, first wins.
_REPORT_PREFERENCE = (".txt", ".md")


@dataclass
class InputFile:
    """A file found under the input, with its display name and kind."""

    path: Path
    name: str
    kind: FileKind

    @property
    def folder(self) -> str:
        parent = str(PurePosixPath(self.name).parent)
        return "" if parent == "." else parent


def discover(
    root: Path, prefix: str, options: IngestOptions, staging: Path, inside_archive: bool = False
) -> IngestPlan:
    """Walk `root` and return the plan for every file under it.

    `prefix` is prepended to display names (an archive's own path). Archives
    found in the tree are extracted under `staging` and planned as their own
    trees; archives inside archives are skipped.
    """
    plan = IngestPlan()
    files: list[InputFile] = []
    archive_counter = itertools.count()

    for path in _walk_files(root):
        name = prefix + path.relative_to(root).as_posix()
        clutter = system_file_reason(path.relative_to(root).as_posix())
        if clutter is not None:
            plan.records.append(skipped(name, "hidden or system file", f"{name}: {clutter}."))
            continue
        try:
            kind = classify(path)
        except OSError as error:
            plan.records.append(failed(name, "unreadable file", f"{name}: cannot be read ({error})."))
            continue
        if kind is FileKind.ARCHIVE:
            if inside_archive:
                plan.records.append(
                    skipped(
                        name,
                        "archive inside an archive",
                        f"{name}: archives inside archives are not opened. Extract it and "
                        "add its files to the outer archive instead.",
                        kind="archive",
                    )
                )
                continue
            target = staging / f"archive-{next(archive_counter)}"
            archive_plan = _plan_archive(path, name, target, options)
            plan.extend(archive_plan)
            continue
        files.append(InputFile(path, name, kind))

    top = _top_folder(files, prefix)
    manifests = [f for f in files if f.kind is FileKind.MANIFEST and f.folder == top]
    if manifests:
        plan.extend(plan_from_manifests(root, f"{top}/" if top else "", files, manifests))
    else:
        plan.extend(_plan_folders(files, prefix))
    return plan


def _top_folder(files: list[InputFile], prefix: str) -> str:
    """Return the folder that contains every file, looking through wrapper folders.

    A zip made by a file manager usually wraps everything in one folder
    (`study.zip` → `study/…`). A manifest in that folder is read as if it
    sat at the top of the input.
    """
    top = prefix.rstrip("/")
    folders = {file.folder for file in files}
    while folders:
        children = {folder[len(top) :].lstrip("/").split("/")[0] if top else folder.split("/")[0] for folder in folders}
        if "" in children or len(children) != 1:
            return top
        top = f"{top}/{children.pop()}" if top else children.pop()
    return top


def plan_archive(archive: Path, name_prefix: str, staging: Path, options: IngestOptions) -> IngestPlan:
    """Extract a zip archive under `staging` and plan its contents.

    `name_prefix` is prepended to member names ("" when the archive is the input).
    """
    return _plan_archive(archive, name_prefix.rstrip("/"), staging, options, top_level=True)


def _plan_archive(
    archive: Path, name: str, target: Path, options: IngestOptions, top_level: bool = False
) -> IngestPlan:
    prefix = "" if top_level and not name else f"{name}/"
    extraction = extract_archive(archive, name or archive.name, prefix, target, options)
    plan = IngestPlan()
    if extraction.rejection is not None:
        plan.records.append(extraction.rejection)
        return plan
    plan.records.extend(extraction.member_records)
    plan.extend(discover(target, prefix, options, target.parent / f"{target.name}-nested", True))
    return plan


def _walk_files(root: Path) -> list[Path]:
    """Return every regular file under `root`, sorted, without following folder links."""
    found: list[Path] = []
    for folder, subfolders, names in os.walk(root, followlinks=False):
        subfolders.sort()
        for name in sorted(names):
            path = Path(folder) / name
            if path.is_file():
                found.append(path)
    return found


def _plan_folders(files: list[InputFile], prefix: str) -> IngestPlan:
    """Pair images with same-stem reports, else with their study folder's report."""
    plan = IngestPlan()
    by_folder: dict[str, list[InputFile]] = defaultdict(list)
    for file in files:
        by_folder[file.folder].append(file)

    texts: dict[str, DecodedText] = {}
    stem_reports: dict[str, dict[str, InputFile]] = {}
    study_reports: dict[str, InputFile] = {}
    uses: dict[str, ReportUse] = {}

    for folder, folder_files in by_folder.items():
        images = [f for f in folder_files if f.kind in (FileKind.DICOM, FileKind.RASTER)]
        reports = [f for f in folder_files if f.kind is FileKind.REPORT]
        image_stems = {PurePosixPath(f.name).stem for f in images}

        chosen: dict[str, InputFile] = {}
        for report in sorted(reports, key=_report_rank):
            stem = PurePosixPath(report.name).stem
            if stem in chosen:
                plan.records.append(
                    skipped(
                        report.name,
                        "second report for one image",
                        f"{report.name}: {chosen[stem].name} has the same name and is used "
                        "instead. Merge the two reports into one file.",
                        kind="report",
                    )
                )
                continue
            chosen[stem] = report
            texts[report.name] = _read_report_or_empty(report)

        paired = {stem: report for stem, report in chosen.items() if stem in image_stems}
        unpaired = [report for stem, report in chosen.items() if stem not in image_stems]
        stem_reports[folder] = paired
        is_study_folder = not paired and len(unpaired) == 1
        if is_study_folder and (images or _has_images_below(folder, by_folder)):
            study_reports[folder] = unpaired[0]
            unpaired = []
        for report in unpaired:
            if not paired and len(unpaired) > 1 and images:
                reason = (
                    f"{report.name}: report without image. Its folder holds {len(unpaired)} "
                    "reports and no image with the same name, so it is unclear which report "
                    "belongs to the images. Keep one report per study folder, or name each "
                    "report after its image."
                )
            else:
                reason = (
                    f"{report.name}: report without image (no image named "
                    f"{PurePosixPath(report.name).stem}.* in its folder)."
                )
            plan.records.append(skipped(report.name, "report without image", reason, kind="report"))

        for file in folder_files:
            if file.kind in (FileKind.DICOM, FileKind.RASTER, FileKind.REPORT):
                continue
            plan.records.append(_other_file_record(file))

    for folder, folder_files in by_folder.items():
        for image in (f for f in folder_files if f.kind in (FileKind.DICOM, FileKind.RASTER)):
            stem = PurePosixPath(image.name).stem
            report = stem_reports[folder].get(stem)
            study_folder = None
            if report is None:
                study_folder = _nearest_study_folder(folder, study_reports)
                report = study_reports.get(study_folder) if study_folder is not None else None
            plan.images.append(_image_plan(image, report, texts, study_folder, uses))

    plan.reports.extend(uses.values())
    return plan


def _image_plan(
    image: InputFile,
    report: InputFile | None,
    texts: dict[str, DecodedText],
    study_folder: str | None,
    uses: dict[str, ReportUse],
) -> ImagePlan:
    item = ImagePlan(path=image.path, name=image.name, kind=image.kind)
    if report is None:
        item.skip = skipped(
            image.name,
            "image without report",
            f"{image.name}: no report found. Add {PurePosixPath(image.name).stem}.txt next to "
            "it, or one report.txt in its study folder.",
            kind="image",
        )
        return item

    text = texts[report.name]
    use = uses.setdefault(report.name, ReportUse(report.name, folder=study_folder))
    use.warnings = list(text.warnings)
    if not text.text:
        use.empty = True
        item.skip = skipped(
            image.name,
            "empty report",
            f"{image.name}: its report {report.name} is empty or only whitespace. Write "
            "the report, or remove the image.",
            kind="image",
        )
        return item

    use.images.append(image.name)
    item.report = text.text
    item.report_source = report.name
    item.report_warnings = list(text.warnings)
    if study_folder is not None:
        item.folder_group = folder_group_key(study_folder or "(top folder)")
    return item


def _read_report_or_empty(report: InputFile) -> DecodedText:
    try:
        return read_report(report.path, report.name)
    except OSError as error:
        return DecodedText("", "unreadable", [f"{report.name} could not be read ({error})"])


def _report_rank(report: InputFile) -> tuple[int, str]:
    suffix = PurePosixPath(report.name).suffix.lower()
    rank = _REPORT_PREFERENCE.index(suffix) if suffix in _REPORT_PREFERENCE else len(_REPORT_PREFERENCE)
    return rank, report.name


def _has_images_below(folder: str, by_folder: dict[str, list[InputFile]]) -> bool:
    for other, files in by_folder.items():
        if _is_inside(other, folder) and other != folder:
            if any(f.kind in (FileKind.DICOM, FileKind.RASTER) for f in files):
                return True
    return False


def _is_inside(folder: str, ancestor: str) -> bool:
    return ancestor == "" or folder == ancestor or folder.startswith(ancestor + "/")


def _nearest_study_folder(folder: str, study_reports: dict[str, InputFile]) -> str | None:
    current = folder
    while True:
        if current in study_reports:
            return current
        if current == "":
            return None
        parent = str(PurePosixPath(current).parent)
        current = "" if parent == "." else parent


def _other_file_record(file: InputFile):
    if file.kind is FileKind.EMPTY:
        return failed(
            file.name,
            "empty file",
            f"{file.name}: the file is empty (0 bytes). Copy or export it again.",
            kind="image",
        )
    if file.kind is FileKind.MANIFEST:
        return skipped(
            file.name,
            "manifest not at the top folder",
            f"{file.name}: manifests are read only at the top of the input; this one is "
            "inside a subfolder and was ignored.",
            kind="manifest",
        )
    suffix = PurePosixPath(file.name).suffix or "no extension"
    return skipped(
        file.name,
        "not an image or report",
        f"{file.name}: not an image, DICOM object or report ({suffix}); ignored.",
    )
