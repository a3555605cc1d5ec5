"""Safety settings of the app: loopback by default, login for other hosts, limits, private files."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from app.context import AppContext
from app.datasets import preview_items
from app.settings import AppSettings, SettingsError, build_parser, prepare_environment, settings_from_args
from tests.conftest import REPO_ROOT, SAMPLE_DATA
from tests.test_app_support import running_app


def run_launcher(*arguments: str, workspace: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "launch.py", "--workspace", str(workspace), *arguments],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def parse(*arguments: str) -> AppSettings:
    return settings_from_args(build_parser().parse_args(list(arguments)))


def test_launcher_rejects_open_host_without_auth(tmp_path):
    result = run_launcher("--host", "0.0.0.0", workspace=tmp_path)

    assert result.returncode == 2
    assert "--host 0.0.0.0 requires a login" in result.stderr
    assert "--auth" in result.stderr


def test_launcher_rejects_share_without_auth(tmp_path):
    result = run_launcher("--share", workspace=tmp_path)

    assert result.returncode == 2
    assert "--share requires a login" in result.stderr


def test_open_host_allowed_with_auth():
    settings = parse("--host", "0.0.0.0", "--auth", "alice:secret")

    assert settings.auth == (("alice", "secret"),)


def test_auth_file_read(tmp_path):
    credentials = tmp_path / "users.txt"
    credentials.write_text("# clinicians\nalice:secret\n\nbob:other:colon\n")

    settings = parse("--host", "192.168.1.5", "--auth", str(credentials))

    assert settings.auth == (("alice", "secret"), ("bob", "other:colon"))


@pytest.mark.parametrize("value", ["alice", "alice:", ":secret"])
def test_auth_without_password_rejected(value):
    with pytest.raises(SettingsError, match="expected user:password"):
        parse("--auth", value)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_loopback_hosts_need_no_auth(host):
    assert parse("--host", host).host == host


def test_default_binds_loopback_without_share():
    settings = parse()

    assert settings.host == "127.0.0.1"
    assert settings.share is False


def test_workspace_private_and_gradio_env(tmp_path):
    settings = AppSettings(workspace=tmp_path / "workspace")

    prepare_environment(settings)

    for folder in (settings.workspace, settings.gradio_temp_dir, settings.sessions_dir, settings.runs_dir,
                   settings.image_cache_dir, settings.datasets_dir):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert os.environ["GRADIO_TEMP_DIR"] == str(settings.gradio_temp_dir)
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"


def test_session_end_deletes_uploads(tmp_path):
    settings = AppSettings(workspace=tmp_path / "workspace")
    prepare_environment(settings)
    context = AppContext.create(settings)
    session_dir = context.session_dir("abc123")
    (session_dir / "upload-1").mkdir()
    gradio_copy = settings.gradio_temp_dir / "0123abcd" / "image.jpg"
    gradio_copy.parent.mkdir()
    gradio_copy.write_bytes(b"pixels")
    context.remember_uploads("abc123", [gradio_copy])

    context.end_session("abc123")

    assert not session_dir.exists()
    assert not gradio_copy.parent.exists()


def test_session_dir_name_sanitised(tmp_path):
    settings = AppSettings(workspace=tmp_path / "workspace")
    context = AppContext.create(settings)

    folder = context.session_dir("../../escape")

    assert folder.parent == settings.sessions_dir


def test_dicom_caption_shows_no_identifiers(tmp_path):
    from engine.data.ingest import FileRecord, IngestReport
    from engine.data.sample import Sample

    image = tmp_path / "scan.png"
    __import__("PIL.Image").Image.new("RGB", (32, 32)).save(image)
    sample = Sample("s1", image, "Finding: none", "scan.dcm")
    record = FileRecord("scan.dcm", "ok", "image", "", kind="dicom",
                        dicom={"modality": "CT", "frames": 1, "patient_name": "Doe^John", "patient_id": "123"})
    report = IngestReport(files=[record])

    [(_, caption)] = preview_items([sample], report)

    assert "modality: CT" in caption
    assert "Doe" not in caption
    assert "123" not in caption


@pytest.mark.slow
def test_upload_limits_and_zip_traversal(tmp_path):
    traversal_zip = tmp_path / "export.zip"
    with zipfile.ZipFile(traversal_zip, "w") as archive:
        for image in sorted(SAMPLE_DATA.glob("*.jpg"))[:2]:
            archive.write(image, f"cases/{image.name}")
            archive.write(image.with_suffix(".txt"), f"cases/{image.with_suffix('.txt').name}")
        archive.writestr("../outside.txt", "Cell type: Basophil\n")

    limits = {"max_file_size": 250_000, "max_upload_total": 200_000}
    with running_app(tmp_path / "workspace", **limits) as (demo, url, settings):
        assert demo.server_name == "127.0.0.1"
        client = Client(url, verbose=False)

        summary, _, problems, gallery, *_ = client.predict([handle_file(str(traversal_zip))], 0.2,
                                                           api_name="/ingest_files")
        rejected = [row for row in problems["data"] if "outside.txt" in row[0]]
        assert rejected, problems["data"]
        assert rejected[0][1] == "rejected"
        assert ".." in rejected[0][2]
        assert "2 image–report pairs ready" in summary
        assert not (settings.workspace.parent / "outside.txt").exists()

        halves = [tmp_path / "first.bin", tmp_path / "second.bin"]
        for number, path in enumerate(halves):
            path.write_bytes(bytes([number]) * 150_000)
        with pytest.raises(AppError, match=r"upload is 293.0 KiB, above the limit of 195.3 KiB per upload"):
            client.predict([handle_file(str(p)) for p in halves], 0.2, api_name="/ingest_files")

        large = tmp_path / "large.bin"
        large.write_bytes(b"\0" * 300_000)
        with pytest.raises(ValueError, match="exceeds the maximum file size of 250000 bytes"):
            client.predict([handle_file(str(large))], 0.2, api_name="/ingest_files")
