"""Builders for the files that ingestion tests feed in, written at test time."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)


PYDICOM_TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def dicom_dataset(
    pixels: np.ndarray | None,
    *,
    photometric: str = "MONOCHROME2",
    bits_allocated: int | None = None,
    bits_stored: int | None = None,
    signed: bool = False,
    frames: int | None = None,
    raw: bytes | None = None,
    sop_class: UID = SecondaryCaptureImageStorage,
    **attributes,
) -> Dataset:
    """Return a data set holding `pixels` ((frames,) rows, columns (, 3)) and `attributes`.

    `raw` replaces the pixel bytes, to write values the array cannot express
    (junk high bits). With `pixels=None` the data set has no pixel data.
    """
    dataset = Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.MediaStorageSOPClassUID = sop_class
    dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.SOPClassUID = sop_class
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID
    dataset.Modality = "OT"
    for keyword, value in attributes.items():
        setattr(dataset, keyword, value)
    if pixels is None:
        return dataset

    samples = 3 if photometric in ("RGB", "YBR_FULL") else 1
    shape = pixels.shape[1:] if frames else pixels.shape
    dataset.Rows, dataset.Columns = shape[0], shape[1]
    dataset.SamplesPerPixel = samples
    if samples == 3:
        dataset.PlanarConfiguration = 0
    dataset.PhotometricInterpretation = photometric
    allocated = bits_allocated or pixels.dtype.itemsize * 8
    dataset.BitsAllocated = allocated
    dataset.BitsStored = bits_stored or allocated
    dataset.HighBit = dataset.BitsStored - 1
    dataset.PixelRepresentation = 1 if signed else 0
    if frames:
        dataset.NumberOfFrames = frames
    little_endian = pixels.astype(pixels.dtype.newbyteorder("<"))
    dataset.PixelData = raw if raw is not None else little_endian.tobytes()
    return dataset


def write_dicom(
    path: Path,
    dataset: Dataset,
    *,
    transfer_syntax: UID = ExplicitVRLittleEndian,
    preamble: bool = True,
    file_meta: bool = True,
) -> Path:
    """Write `dataset` to `path`; optionally without the preamble or without file meta.

    Without file meta the data set is written as Implicit VR Little Endian,
    the default transfer syntax, and nothing records which one it is.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not file_meta:
        del dataset.file_meta
        pydicom.dcmwrite(path, dataset, implicit_vr=True, little_endian=True)
        return path
    dataset.file_meta.TransferSyntaxUID = transfer_syntax
    dataset.save_as(path, enforce_file_format=True)
    if not preamble:
        data = path.read_bytes()
        path.write_bytes(data[132:])
    return path


def write_png_header(path: Path, width: int, height: int) -> Path:
    """Write a PNG whose header declares `width` × `height` but contains almost no pixel data."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = zlib.compress(b"\0" * 16)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )
    return path


def horizontal_ramp(rows: int, columns: int, low: int, high: int, dtype) -> np.ndarray:
    """Return an array whose columns rise evenly from `low` to `high`."""
    ramp = np.linspace(low, high, columns).round().astype(dtype)
    return np.tile(ramp, (rows, 1))
