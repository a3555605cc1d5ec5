"""Safe extraction of zip archives.

Members with absolute paths, `..` components or link types are rejected one
by one. An archive whose entry count or declared uncompressed size exceeds
the limits is rejected whole. Extraction also stops, and rejects the
archive, when the bytes actually written exceed `max_archive_bytes`. Member names not flagged as UTF-8 are decoded as
UTF-8 when their bytes allow it, else as cp437 (the zip format's default).
"""

from __future__ import annotations

import re
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from engine.data.ingest.options import IngestOptions
from engine.data.ingest.plan import failed
from engine.data.ingest.records import FileRecord


_UTF8_NAME_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")
_COPY_CHUNK_BYTES = 1 << 20


@dataclass
class Extraction:
    """Records for members that were not extracted, or a rejection of the whole archive."""

    rejection: FileRecord | None = None
    member_records: list[FileRecord] = field(default_factory=list)


class _SizeLimitExceeded(Exception):
    pass


def member_name(info: zipfile.ZipInfo) -> str:
    """Return a member's name decoded sensibly, with `/` separators.

    Python decodes names without the UTF-8 flag as cp437; many tools write
    UTF-8 without setting the flag, so those bytes are tried as UTF-8 first.
    """
    name = info.filename
    if not info.flag_bits & _UTF8_NAME_FLAG:
        try:
            name = name.encode("cp437").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return name.replace("\\", "/")


def unsafe_member_reason(name: str, info: zipfile.ZipInfo) -> str | None:
    """Return why a member must not be extracted, or None when it is safe."""
    if name.startswith("/") or _WINDOWS_DRIVE.match(name):
        return "absolute path"
    if ".." in PurePosixPath(name).parts:
        return "path with '..' that points outside the archive"
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "symbolic link"
    return None


def extract_archive(
    archive: Path, archive_name: str, prefix: str, target: Path, options: IngestOptions
) -> Extraction:
    """Extract `archive` into the empty folder `target`.

    `archive_name` names the archive in messages; `prefix` is prepended to
    member names in records.
    """
    try:
        with zipfile.ZipFile(archive) as bundle:
            infos = bundle.infolist()
            rejection = _check_limits(infos, archive_name, options)
            if rejection is not None:
                return Extraction(rejection=rejection)
            target.mkdir(parents=True, exist_ok=True)
            return _extract_members(bundle, infos, prefix, target, archive_name, options)
    except zipfile.BadZipFile as error:
        return Extraction(
            rejection=failed(
                archive_name,
                "invalid archive",
                f"{archive_name}: not a valid zip archive ({error}). Create the zip again.",
                kind="archive",
            )
        )
    except _SizeLimitExceeded:
        shutil.rmtree(target, ignore_errors=True)
        return Extraction(
            rejection=failed(
                archive_name,
                "archive too large",
                f"{archive_name}: its members expand to more bytes than the archive declares "
                f"and than the limit of {options.max_archive_bytes:,} bytes "
                "(IngestOptions.max_archive_bytes). The archive may be malicious or damaged.",
                kind="archive",
            )
        )


def _check_limits(
    infos: list[zipfile.ZipInfo], archive_name: str, options: IngestOptions
) -> FileRecord | None:
    if len(infos) > options.max_archive_members:
        return failed(
            archive_name,
            "archive too large",
            f"{archive_name}: {len(infos):,} entries exceed the limit of "
            f"{options.max_archive_members:,} (IngestOptions.max_archive_members). "
            "Split it into several archives or raise the limit.",
            kind="archive",
        )
    declared = sum(info.file_size for info in infos)
    if declared > options.max_archive_bytes:
        return failed(
            archive_name,
            "archive too large",
            f"{archive_name}: {declared:,} bytes uncompressed exceed the limit of "
            f"{options.max_archive_bytes:,} (IngestOptions.max_archive_bytes). "
            "Split it into several archives or raise the limit.",
            kind="archive",
        )
    return None


def _extract_members(
    bundle: zipfile.ZipFile,
    infos: list[zipfile.ZipInfo],
    prefix: str,
    target: Path,
    archive_name: str,
    options: IngestOptions,
) -> Extraction:
    extraction = Extraction()
    seen: set[str] = set()
    budget = [options.max_archive_bytes]
    for info in infos:
        if info.is_dir():
            continue
        name = member_name(info)
        display = prefix + name.lstrip("/")
        reason = unsafe_member_reason(name, info)
        if reason is not None:
            extraction.member_records.append(
                failed(
                    display,
                    "unsafe archive member",
                    f"{display}: rejected because of its {reason} in {archive_name}. "
                    "Create the archive from the folder itself so members have relative paths.",
                )
            )
            continue
        if info.flag_bits & _ENCRYPTED_FLAG:
            extraction.member_records.append(
                failed(
                    display,
                    "encrypted archive member",
                    f"{display}: encrypted in {archive_name}. Create the archive without a password.",
                )
            )
            continue
        normalised = PurePosixPath(name).as_posix()
        if normalised in seen:
            extraction.member_records.append(
                failed(
                    display,
                    "duplicate archive member",
                    f"{display}: {archive_name} contains this name twice; only the first copy "
                    "was used. Create the archive again.",
                )
            )
            continue
        seen.add(normalised)
        destination = target / normalised
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            _copy_member(bundle, info, destination, budget)
        except (NotImplementedError, zipfile.BadZipFile, OSError, EOFError) as error:
            destination.unlink(missing_ok=True)
            extraction.member_records.append(
                failed(
                    display,
                    "unreadable archive member",
                    f"{display}: could not be extracted from {archive_name} ({error}). "
                    "Create the archive again with standard (deflate) compression.",
                )
            )
    return extraction


def _copy_member(
    bundle: zipfile.ZipFile, info: zipfile.ZipInfo, destination: Path, budget: list[int]
) -> None:
    with bundle.open(info) as source, destination.open("wb") as sink:
        while chunk := source.read(_COPY_CHUNK_BYTES):
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise _SizeLimitExceeded
            sink.write(chunk)
