"""Command-line settings of the app and the safety checks applied before it starts.

This module must not import gradio: `prepare_environment` sets the
environment variables that gradio reads when it is imported.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path


logger = logging.getLogger(__name__)

GIB = 1024**3


class SettingsError(ValueError):
    """Raised when the command-line settings are invalid or unsafe; the message states the fix."""


class PortInUseError(SettingsError):
    """Raised when the server cannot bind the requested port."""


def default_workspace() -> Path:
    return Path.home() / ".instruction-free-tuning"


@dataclass(frozen=True)
class AppSettings:
    host: str = "127.0.0.1"
    """Interface the server binds to; anything but loopback requires `auth`."""
    port: int = 7860
    workspace: Path = field(default_factory=default_workspace)
    """Folder for runs, uploaded data, decoded images and gradio's temporary files (mode 0700)."""
    auth: tuple[tuple[str, str], ...] = ()
    """(user, password) pairs; empty means no login."""
    share: bool = False
    """Ask gradio for a public share link (off unless requested)."""
    max_file_size: int = 4 * GIB
    """Largest single uploaded file in bytes; gradio rejects larger files with HTTP 413."""
    max_upload_total: int = 20 * GIB
    """Largest total size of one upload batch in bytes, checked before ingestion."""
    preload_sample_data: bool = True
    """Show the bundled sample data on the Data tab when a page opens, until the user uploads their own."""
    allow_downloads: bool = False
    """Let runs started from the app download their model from the Hugging Face hub (sets `model.allow_download`)."""

    @property
    def runs_dir(self) -> Path:
        return self.workspace / "runs"

    @property
    def datasets_dir(self) -> Path:
        """Uploaded data sets that a run uses; kept until no run refers to them."""
        return self.workspace / "datasets"

    @property
    def sessions_dir(self) -> Path:
        """Per-browser-session uploads, deleted when the session ends."""
        return self.workspace / "sessions"

    @property
    def image_cache_dir(self) -> Path:
        """Decoded images written by ingestion, shared by the app and the training process."""
        return self.workspace / "image-cache"

    @property
    def gradio_temp_dir(self) -> Path:
        return self.workspace / "gradio-tmp"

    @property
    def exports_dir(self) -> Path:
        """Zip and CSV files offered for download; inside gradio's temporary folder so gradio may serve them."""
        return self.gradio_temp_dir / "exports"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_size(text: str) -> int:
    """Parse a byte count such as `500mb`, `4gb` or `1048576`."""
    units = {"tb": 1024**4, "gb": GIB, "mb": 1024**2, "kb": 1024, "b": 1}
    value = text.strip().lower()
    suffix = next((unit for unit in units if value.endswith(unit)), "")
    number, factor = (value[: -len(suffix)].strip(), units[suffix]) if suffix else (value, 1)
    try:
        size = int(float(number) * factor)
    except ValueError:
        raise SettingsError(f"Invalid size {text!r}; write a number of bytes or a value like 500mb or 4gb.") from None
    if size <= 0:
        raise SettingsError(f"Invalid size {text!r}; it must be positive.")
    return size


def format_size(size: int) -> str:
    """Format a byte count with the largest binary unit that keeps the number at least 1."""
    for unit, factor in (("TiB", 1024**4), ("GiB", GIB), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size} bytes"


def parse_auth(value: str) -> tuple[tuple[str, str], ...]:
    """Read `user:password`, or a file with one `user:password` per line (blank lines and # comments ignored)."""
    path = Path(value).expanduser()
    if path.is_file():
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        entries = [line for line in lines if line and not line.startswith("#")]
        source = f"auth file {path}"
    else:
        entries = [value]
        source = "--auth"
    pairs = []
    for number, entry in enumerate(entries, start=1):
        user, separator, password = entry.partition(":")
        if not separator or not user or not password:
            where = f"line {number} of {source}" if source != "--auth" else "--auth"
            raise SettingsError(
                f"Invalid credentials in {where}: expected user:password with both parts non-empty "
                "(or the path of an existing file with one user:password per line)."
            )
        pairs.append((user, password))
    if not pairs:
        raise SettingsError(f"{source} contains no user:password line.")
    return tuple(pairs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python launch.py",
        description="Local web app: upload image-report pairs, tune a vision-language model, compare it with the base.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="Interface to listen on (default: 127.0.0.1). "
                        "Any other address requires --auth.")
    parser.add_argument("--port", type=int, default=7860, help="TCP port (default: 7860).")
    parser.add_argument("--workspace", type=Path, default=None,
                        help=f"Folder for runs, uploads and temporary files (default: {default_workspace()}).")
    parser.add_argument("--auth", help="Require a login: USER:PASS, or a file with one user:password per line.")
    parser.add_argument("--share", action="store_true", help="Create a public gradio share link (requires --auth).")
    parser.add_argument("--max-file-size", default="4gb", help="Largest single uploaded file (default: 4gb).")
    parser.add_argument("--max-upload-total", default="20gb", help="Largest total size of one upload (default: 20gb).")
    parser.add_argument("--no-sample-data", action="store_true",
                        help="Start with an empty Data tab instead of the bundled sample data.")
    parser.add_argument("--allow-downloads", action="store_true",
                        help="Let runs started from the app download models that are not in the local "
                        "Hugging Face cache (off by default: only cached models and local folders load).")
    parser.add_argument("-v", "--verbose", action="store_true", help="Log debug messages.")
    return parser


def settings_from_args(args: argparse.Namespace) -> AppSettings:
    """Build settings from parsed arguments and run the safety checks; raises SettingsError."""
    settings = AppSettings(
        host=args.host,
        port=args.port,
        workspace=(args.workspace or default_workspace()).expanduser().resolve(),
        auth=parse_auth(args.auth) if args.auth else (),
        share=args.share,
        max_file_size=parse_size(args.max_file_size),
        max_upload_total=parse_size(args.max_upload_total),
        preload_sample_data=not args.no_sample_data,
        allow_downloads=args.allow_downloads,
    )
    check_settings(settings)
    return settings


def check_settings(settings: AppSettings) -> None:
    """Reject settings that would expose the app without a login."""
    if not 1 <= settings.port <= 65535:
        raise SettingsError(f"Invalid --port {settings.port}; choose a port between 1 and 65535.")
    if not is_loopback(settings.host) and not settings.auth:
        raise SettingsError(
            f"--host {settings.host} requires a login: without --auth, anyone who can reach this address could "
            "read the uploaded images and start jobs. Pass --auth USER:PASS (or a file of user:password lines), "
            "or keep the default --host 127.0.0.1."
        )
    if settings.share and not settings.auth:
        raise SettingsError(
            "--share requires a login: a public share link without --auth exposes the app to anyone with the link. "
            "Pass --auth USER:PASS together with --share."
        )


def make_private_dir(path: Path) -> Path:
    """Create `path` (and parents) and make it owner-only (0700); return it."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def prepare_environment(settings: AppSettings) -> None:
    """Create the workspace folders and set the environment gradio reads at import time.

    Must run before gradio is imported, or gradio keeps its default temporary
    folder in the system temp directory.
    """
    if "gradio" in sys.modules and os.environ.get("GRADIO_TEMP_DIR") != str(settings.gradio_temp_dir):
        logger.warning(
            "gradio was imported before the app set GRADIO_TEMP_DIR; some temporary files may land outside %s",
            settings.workspace,
        )
    workspace_existed = settings.workspace.exists()
    settings.workspace.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not workspace_existed:
        os.chmod(settings.workspace, 0o700)
    elif settings.workspace.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning(
            "Workspace %s is readable by other users; run `chmod 700 %s` to keep uploaded images private.",
            settings.workspace,
            settings.workspace,
        )
    for folder in (
        settings.runs_dir,
        settings.datasets_dir,
        settings.sessions_dir,
        settings.image_cache_dir,
        settings.gradio_temp_dir,
        settings.exports_dir,
    ):
        make_private_dir(folder)

    os.environ["GRADIO_TEMP_DIR"] = str(settings.gradio_temp_dir)
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
