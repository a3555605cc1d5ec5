"""Ingestion of folder layouts: flat pairs, manifests, study folders, archives, uploads."""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.uid import BasicTextSRStorage

from engine.data.ingest import IngestError, IngestOptions, ingest, ingest_files
from engine.data.ingest.cli import add_ingest_arguments, run_ingest
from tests.ingest_fixtures import dicom_dataset, horizontal_ramp, write_dicom


SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data"


def test_sample_data_yields_40_samples(tmp_path):
    result = ingest(SAMPLE_DATA, tmp_path / "cache")

    input_files = sorted(p.name for p in SAMPLE_DATA.iterdir() if p.is_file())
    reported = sorted(record.path for record in result.report.files)
    assert reported == input_files
    assert len(result.samples) == 40
    assert result.report.totals["files"] == len(input_files)
    assert result.report.totals["ok"] == len(input_files)
    for sample in result.samples:
        assert len(sample.attributes) == 12
        assert sample.report.startswith("Cell type: ")
        with Image.open(sample.image_path) as image:
            assert image.mode == "RGB"
        assert sample.pixel_hash


def test_sample_data_cached_pixels_match_source(tmp_path):
    result = ingest(SAMPLE_DATA, tmp_path / "cache")

    sample = result.samples[0]
    with Image.open(SAMPLE_DATA / sample.source) as original:
        expected = np.asarray(original.convert("RGB"))
    with Image.open(sample.image_path) as cached:
        actual = np.asarray(cached)
    assert np.array_equal(actual, expected)


# --- helpers -----------------------------------------------------------------


def write_image(path: Path, value: int = 100, size: tuple[int, int] = (40, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value // 2, 255 - value)).save(path)
    return path


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def records_by_path(result) -> dict:
    return {record.path: record for record in result.report.files}


def assert_accounted(result, root: Path) -> None:
    expected = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert sorted(record.path for record in result.report.files) == expected
    totals = result.report.totals
    assert totals["files"] == totals["ok"] + totals["skipped"] + totals["error"]


# --- reports -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected_warning"),
    [
        (b"\xef\xbb\xbfCaf\xc3\xa9 au lait\r\nline two  \r\n", None),
        ("Café au lait\nline two".encode("utf-16"), None),
        (b"Caf\xe9 au lait\r\nline two", "cp1252"),
        (b"  Cafe\xcc\x81 au lait  \rline two\r", None),
    ],
    ids=["utf8-bom-crlf", "utf16-bom", "cp1252", "nfd-cr"],
)
def test_report_encodings_are_normalised(tmp_path, data, expected_warning):
    root = tmp_path / "in"
    write_image(root / "a.png")
    (root / "a.txt").write_bytes(data)

    result = ingest(root, tmp_path / "cache")

    assert len(result.samples) == 1
    assert result.samples[0].report == "Café au lait\nline two"
    report_record = records_by_path(result)["a.txt"]
    image_record = records_by_path(result)["a.png"]
    if expected_warning is None:
        assert report_record.warnings == []
    else:
        assert any("a.txt is not valid UTF-8" in w for w in report_record.warnings)
        assert any(expected_warning in w for w in image_record.warnings)


def test_empty_report_skips_its_image(tmp_path):
    root = tmp_path / "in"
    write_image(root / "a.png")
    write_text(root / "a.txt", "  \n\t\n")

    result = ingest(root, tmp_path / "cache")

    records = records_by_path(result)
    assert result.samples == []
    assert records["a.png"].status == "skipped"
    assert records["a.png"].category == "empty report"
    assert "a.txt is empty" in records["a.png"].reason
    assert records["a.txt"].status == "skipped"


def test_attribute_report_is_parsed(tmp_path):
    root = tmp_path / "in"
    write_image(root / "a.png")
    write_text(root / "a.txt", "Cell type: Neutrophil\nCell size: big\n")

    result = ingest(root, tmp_path / "cache")

    assert result.samples[0].attributes == {"Cell type": "Neutrophil", "Cell size": "big"}


# --- flat folders, hygiene, accounting ------------------------------------------


def test_flat_folder_accounts_for_every_file(tmp_path):
    root = tmp_path / "in"
    write_image(root / "a.png", 10)
    write_text(root / "a.txt", "first")
    write_image(root / "b.jpg", 20)
    write_text(root / "orphan.md", "no image")
    write_text(root / ".DS_Store", "x")
    write_text(root / "._a.png", "x")
    write_text(root / "Thumbs.db", "x")
    write_text(root / "desktop.ini", "x")
    write_text(root / "__MACOSX/a.png", "x")
    write_text(root / "notes.docx", "x")
    (root / "empty.png").write_bytes(b"")
    write_text(root / "c.png", "this is text, not a PNG")
    write_text(root / "c.txt", "report for a broken image")

    result = ingest(root, tmp_path / "cache")
    records = records_by_path(result)

    assert_accounted(result, root)
    assert [s.source for s in result.samples] == ["a.png"]
    assert records["a.txt"].reason == "report for a.png"
    assert records["b.jpg"].category == "image without report"
    assert records["orphan.md"].category == "report without image"
    for name in (".DS_Store", "._a.png", "Thumbs.db", "desktop.ini", "__MACOSX/a.png"):
        assert records[name].status == "skipped"
        assert records[name].category == "hidden or system file"
    assert records["notes.docx"].category == "not an image or report"
    assert records["empty.png"].status == "error"
    assert "empty (0 bytes)" in records["empty.png"].reason
    assert records["c.png"].status == "error"
    assert records["c.png"].category == "not a readable image"
    assert records["c.txt"].status == "skipped"
    summary = result.report.summary_text()
    assert "5  hidden or system file" in summary
    assert "13 files: 2 ok" in summary


def test_tiny_image_is_padded_and_cached(tmp_path):
    root = tmp_path / "in"
    write_image(root / "tiny.png", 200, size=(10, 10))
    write_text(root / "tiny.txt", "tiny")

    result = ingest(root, tmp_path / "cache")

    record = records_by_path(result)["tiny.png"]
    assert record.size == (28, 28)
    assert any("padded with black from 10×10 to 28×28" in w for w in record.warnings)
    with Image.open(result.samples[0].image_path) as cached:
        assert cached.size == (28, 28)
        assert cached.getpixel((0, 0)) == (0, 0, 0)
        assert cached.getpixel((14, 14)) == (200, 100, 55)


def test_large_image_is_downscaled(tmp_path):
    root = tmp_path / "in"
    write_image(root / "big.png", 50, size=(300, 150))
    write_text(root / "big.txt", "big")

    result = ingest(root, tmp_path / "cache", IngestOptions(max_side=100))

    assert records_by_path(result)["big.png"].size == (100, 50)


def test_wide_strip_is_rejected_with_ratio(tmp_path):
    root = tmp_path / "in"
    write_image(root / "strip.png", size=(2500, 10))
    write_text(root / "strip.txt", "strip")

    result = ingest(root, tmp_path / "cache")

    record = records_by_path(result)["strip.png"]
    assert record.status == "error"
    assert "aspect ratio of 250:1" in record.reason
    assert records_by_path(result)["strip.txt"].category == "report whose images failed"


def test_duplicates_by_pixels_are_reported(tmp_path):
    root = tmp_path / "in"
    write_image(root / "a.png", 77)
    write_image(root / "b.bmp", 77)
    write_text(root / "a.txt", "one")
    write_text(root / "b.txt", "two")

    result = ingest(root, tmp_path / "cache")

    record = records_by_path(result)["b.bmp"]
    assert "duplicate of a.png (same decoded pixels)" in record.warnings
    assert result.report.totals["duplicates"] == 1
    assert result.samples[0].pixel_hash == result.samples[1].pixel_hash


def test_reingest_uses_cache(tmp_path):
    root = tmp_path / "in"
    write_image(root / "a.png")
    write_text(root / "a.txt", "one")
    first = ingest(root, tmp_path / "cache")
    cached = first.samples[0].image_path
    stamp = cached.stat().st_mtime_ns

    second = ingest(root, tmp_path / "cache")

    assert second.samples[0].image_path == cached
    assert cached.stat().st_mtime_ns == stamp
    assert second.samples[0].pixel_hash == first.samples[0].pixel_hash


def test_single_file_input_is_rejected(tmp_path):
    path = write_image(tmp_path / "a.png")

    with pytest.raises(IngestError, match="is a single file.*\\.zip archive"):
        ingest(path, tmp_path / "cache")


def test_missing_input_is_rejected(tmp_path):
    with pytest.raises(IngestError, match="not found"):
        ingest(tmp_path / "nowhere", tmp_path / "cache")


# --- nested study folders -------------------------------------------------------


def test_study_folders_share_their_report(tmp_path):
    root = tmp_path / "in"
    ramp = horizontal_ramp(30, 64, 0, 255, np.uint8)
    write_dicom(root / "case17/IM0001", dicom_dataset(ramp))
    write_dicom(root / "case17/series2/IM0002", dicom_dataset(ramp[::-1].copy()))
    write_text(root / "case17/report.txt", "Findings: normal.")
    write_image(root / "case18/photo.jpg", 30)
    write_text(root / "case18/report.md", "Findings: lesion.")
    write_image(root / "case19/photo.jpg", 40)
    write_text(root / "case19/a.txt", "one")
    write_text(root / "case19/b.txt", "two")

    result = ingest(root, tmp_path / "cache")
    records = records_by_path(result)
    samples = {sample.source: sample for sample in result.samples}

    assert_accounted(result, root)
    assert samples["case17/IM0001"].report == "Findings: normal."
    assert samples["case17/series2/IM0002"].report == "Findings: normal."
    assert samples["case18/photo.jpg"].report == "Findings: lesion."
    assert samples["case17/IM0001"].group == samples["case17/series2/IM0002"].group
    assert samples["case17/IM0001"].group != samples["case18/photo.jpg"].group
    assert "case17" not in samples["case17/IM0001"].group
    assert records["case17/report.txt"].reason == "report for 2 images in case17/"
    assert records["case19/photo.jpg"].category == "image without report"
    assert "unclear which report" in records["case19/a.txt"].reason


def test_dicom_patient_group_overrides_folder(tmp_path):
    root = tmp_path / "in"
    ramp = horizontal_ramp(30, 64, 0, 255, np.uint8)
    write_dicom(root / "s1/IM1", dicom_dataset(ramp, PatientID="P1"))
    write_dicom(root / "s2/IM1", dicom_dataset(ramp[::-1].copy(), PatientID="P1"))
    write_text(root / "s1/report.txt", "one")
    write_text(root / "s2/report.txt", "two")

    result = ingest(root, tmp_path / "cache")

    groups = {sample.group for sample in result.samples}
    assert len(result.samples) == 2
    assert len(groups) == 1
    assert groups.pop().startswith("dicom-patient-")


def test_no_identifiers_in_report_cache_or_logs(tmp_path, caplog):
    root = tmp_path / "in"
    ramp = horizontal_ramp(30, 64, 0, 255, np.uint8)
    identifiers = {
        "PatientName": "Doe^Jane",
        "PatientID": "PID-31337",
        "PatientBirthDate": "19700101",
        "StudyDate": "20240229",
        "StudyInstanceUID": "1.2.3.4.5.31337",
    }
    write_dicom(root / "case/IM1", dicom_dataset(ramp, **identifiers))
    write_dicom(root / "case/IM2", dicom_dataset(None, sop_class=BasicTextSRStorage, **identifiers))
    write_text(root / "case/report.txt", "Findings: normal.")

    with caplog.at_level(logging.DEBUG):
        result = ingest(root, tmp_path / "cache")

    texts = [json.dumps(result.report.to_json()), result.report.summary_text(), caplog.text]
    texts += [p.read_text() for p in (tmp_path / "cache").rglob("*.json")]
    texts += [repr(sample) for sample in result.samples]
    for text in texts:
        for value in ("Doe", "Jane", "31337", "19700101", "20240229"):
            assert value not in text
    assert len(result.samples) == 1


# --- manifests -----------------------------------------------------------------


def test_csv_manifest_with_quoted_commas_and_newlines(tmp_path):
    root = tmp_path / "in"
    write_image(root / "img/a.png", 10)
    write_image(root / "img/b.png", 20)
    write_image(root / "img/unlisted.png", 30)
    with (root / "labels.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Image Path", "Report"])
        writer.writerow(["img/a.png", "Mass, left lobe.\nNo effusion."])
        writer.writerow(["img/b.png", 'Said "stable", unchanged'])
        writer.writerow(["img/missing.png", "gone"])

    result = ingest(root, tmp_path / "cache")
    samples = {sample.source: sample for sample in result.samples}
    records = records_by_path(result)

    assert_accounted(result, root)
    assert samples["img/a.png"].report == "Mass, left lobe.\nNo effusion."
    assert samples["img/b.png"].report == 'Said "stable", unchanged'
    assert records["img/unlisted.png"].category == "not named in the manifest"
    assert records["labels.csv"].status == "ok"
    problems = result.report.manifest_problems
    assert [(p.row, p.path) for p in problems] == [(3, "img/missing.png")]
    assert "not found" in problems[0].reason
    assert "row 3" in result.report.summary_text()


def test_semicolon_manifest_with_report_files(tmp_path):
    root = tmp_path / "in"
    write_image(root / "a.png", 10)
    write_text(root / "reports/a.txt", "Report A")
    write_text(root / "reports/unused.txt", "Report B")
    (root / "list.csv").write_text("file;report_file\na.png;reports/a.txt\n", encoding="utf-8")

    result = ingest(root, tmp_path / "cache")
    records = records_by_path(result)

    assert_accounted(result, root)
    assert result.samples[0].report == "Report A"
    assert records["reports/a.txt"].status == "ok"
    assert records["reports/unused.txt"].category == "not named in the manifest"


def test_jsonl_manifest(tmp_path):
    root = tmp_path / "in"
    write_image(root / "a.png", 10)
    rows = [{"image": "a.png", "findings": "ok"}, {"image": "b.png", "findings": "x"}]
    (root / "data.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")

    result = ingest(root, tmp_path / "cache")

    assert [s.report for s in result.samples] == ["ok"]
    assert result.report.manifest_problems[0].row == 2


def test_ambiguous_manifest_names_columns(tmp_path):
    root = tmp_path / "in"
    write_image(root / "a.png")
    (root / "m.tsv").write_text("image\tpath\treport\na.png\ta.png\tx\n", encoding="utf-8")

    with pytest.raises(IngestError, match="ambiguous.*image, path.*Columns found: 'image', 'path', 'report'"):
        ingest(root, tmp_path / "cache")


def test_manifest_without_report_column(tmp_path):
    root = tmp_path / "in"
    write_image(root / "a.png")
    (root / "m.csv").write_text("image,label\na.png,x\n", encoding="utf-8")

    with pytest.raises(IngestError, match="no report column.*Columns found: 'image', 'label'"):
        ingest(root, tmp_path / "cache")


# --- archives ------------------------------------------------------------------


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return path


def png_bytes(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (value, value, value)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_zip_with_macosx_and_parent_member(tmp_path):
    archive = make_zip(
        tmp_path / "export.zip",
        {
            "study/a.png": png_bytes(10),
            "study/a.txt": b"Report A",
            "__MACOSX/study/._a.png": b"\0\5\26\7",
            "../evil.txt": b"escape",
            "/etc/absolute.txt": b"escape",
        },
    )

    result = ingest(archive, tmp_path / "cache")
    records = records_by_path(result)

    assert sorted(records) == sorted(
        ["study/a.png", "study/a.txt", "__MACOSX/study/._a.png", "../evil.txt", "etc/absolute.txt"]
    )
    assert [s.source for s in result.samples] == ["study/a.png"]
    assert records["__MACOSX/study/._a.png"].category == "hidden or system file"
    assert records["../evil.txt"].status == "error"
    assert "'..'" in records["../evil.txt"].reason
    assert "absolute path" in records["etc/absolute.txt"].reason
    assert not (tmp_path / "evil.txt").exists()
    assert not list((tmp_path / "cache" / "staging").iterdir())


def test_zip_inside_folder_is_prefixed(tmp_path):
    root = tmp_path / "in"
    write_image(root / "x.png", 5)
    write_text(root / "x.txt", "outer")
    make_zip(root / "more.zip", {"a.png": png_bytes(30), "a.txt": b"inner"})

    result = ingest(root, tmp_path / "cache")

    assert sorted(s.source for s in result.samples) == ["more.zip/a.png", "x.png"]


def test_zip_member_limits(tmp_path):
    archive = make_zip(tmp_path / "many.zip", {f"{i}.txt": b"x" * 100 for i in range(5)})

    by_count = ingest(archive, tmp_path / "cache", IngestOptions(max_archive_members=4))
    by_size = ingest(archive, tmp_path / "cache", IngestOptions(max_archive_bytes=499))

    assert "5 entries exceed the limit of 4" in by_count.report.files[0].reason
    assert "500 bytes uncompressed exceed the limit of 499" in by_size.report.files[0].reason
    assert by_size.report.totals == {**by_size.report.totals, "files": 1, "error": 1}


def test_zip_names_without_utf8_flag(tmp_path):
    archive = tmp_path / "names.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        info = zipfile.ZipInfo("placeholder.png")
        bundle.writestr(info, png_bytes(60))
    # Rewrite the stored name as raw UTF-8 bytes without setting the UTF-8 flag.
    stored_name = "rad\xf6s_scan.png".encode()
    assert len(stored_name) == len(b"placeholder.png")
    archive.write_bytes(archive.read_bytes().replace(b"placeholder.png", stored_name))

    result = ingest(archive, tmp_path / "cache")

    assert [record.path for record in result.report.files] == ["radös_scan.png"]


# --- uploads ---------------------------------------------------------------------


def test_upload_with_colliding_names_is_rejected(tmp_path):
    first = write_text(tmp_path / "u1/report.txt", "case 1")
    second = write_text(tmp_path / "u2/report.txt", "case 2")
    image = write_image(tmp_path / "u3/IM1.png")

    with pytest.raises(IngestError, match="'report.txt' \\(2 different files\\).*Upload a .zip"):
        ingest_files([first, second, image], tmp_path / "cache")


def test_upload_with_unique_names_is_paired(tmp_path):
    image = write_image(tmp_path / "u1/a.png", 10)
    report = write_text(tmp_path / "u2/a.txt", "Report A")
    same_image_again = write_image(tmp_path / "u3/a.png", 10)

    result = ingest_files([image, report, same_image_again, image], tmp_path / "cache")

    assert [s.report for s in result.samples] == ["Report A"]
    assert sorted(r.path for r in result.report.files) == ["a.png", "a.txt"]


def test_upload_of_one_zip_keeps_structure(tmp_path):
    archive = make_zip(
        tmp_path / "up.zip",
        {"c1/report.txt": b"one", "c1/a.png": png_bytes(1), "c2/report.txt": b"two", "c2/a.png": png_bytes(2)},
    )

    result = ingest_files([archive], tmp_path / "cache")

    assert sorted((s.source, s.report) for s in result.samples) == [("c1/a.png", "one"), ("c2/a.png", "two")]


# --- CLI ---------------------------------------------------------------------------


def test_cli_writes_json_report(tmp_path, capsys):
    root = tmp_path / "in"
    write_image(root / "a.png")
    write_text(root / "a.txt", "Report A")
    parser = argparse.ArgumentParser()
    add_ingest_arguments(parser)
    args = parser.parse_args([str(root), "--json", str(tmp_path / "r.json"), "--cache", str(tmp_path / "c")])

    code = run_ingest(args)

    assert code == 0
    data = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert data["totals"]["files"] == 2
    image = next(f for f in data["files"] if f["path"] == "a.png")
    assert image["report"] == "Report A"
    assert image["size"] == [40, 30]
    assert Path(image["cached_image"]).is_file()
    assert "2 files: 2 ok" in capsys.readouterr().out


def test_cli_reports_unusable_input(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_ingest_arguments(parser)

    code = run_ingest(parser.parse_args([str(tmp_path / "missing"), "--cache", str(tmp_path / "c")]))

    assert code == 2
    assert "not found" in capsys.readouterr().err


def test_manifest_inside_wrapper_folder_of_zip(tmp_path):
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for name, value in (("a.png", 10), ("b.png", 20)):
            buffer = io.BytesIO()
            Image.new("L", (40, 30), value).save(buffer, format="PNG")
            bundle.writestr(f"study/images/{name}", buffer.getvalue())
        bundle.writestr("study/manifest.csv", "image,report\nimages/a.png,Cell size: small\nimages/b.png,Cell size: large\n")
        bundle.writestr("__MACOSX/study/._manifest.csv", b"\0")

    result = ingest(archive, tmp_path / "cache")
    reports = {sample.source: sample.report for sample in result.samples}

    assert reports == {"study/images/a.png": "Cell size: small", "study/images/b.png": "Cell size: large"}
    assert records_by_path(result)["study/manifest.csv"].status == "ok"
