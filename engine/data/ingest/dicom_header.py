"""Reading the few DICOM attributes that ingestion needs, and nothing else.

Only the tags in `HEADER_KEYWORDS` are parsed, so a damaged or oddly encoded
element elsewhere in the file (names in an unknown character set, private
tags, a bad date) cannot stop an image from decoding. Patient and study
identifiers are read only to be hashed into an opaque group key.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset, FileDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from engine.data.ingest.records import RejectedFile


DICOM_EXTENSIONS = frozenset({".dcm", ".dicom", ".dic"})

HEADER_KEYWORDS = [
    "SOPClassUID",
    "Modality",
    "PatientID",
    "StudyInstanceUID",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "PlanarConfiguration",
    "NumberOfFrames",
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "PixelPaddingValue",
    "RescaleIntercept",
    "RescaleSlope",
    "RescaleType",
    "ModalityLUTSequence",
    "WindowCenter",
    "WindowWidth",
    "VOILUTFunction",
    "VOILUTSequence",
    "RedPaletteColorLookupTableDescriptor",
    "GreenPaletteColorLookupTableDescriptor",
    "BluePaletteColorLookupTableDescriptor",
    "RedPaletteColorLookupTableData",
    "GreenPaletteColorLookupTableData",
    "BluePaletteColorLookupTableData",
    "SegmentedRedPaletteColorLookupTableData",
    "SegmentedGreenPaletteColorLookupTableData",
    "SegmentedBluePaletteColorLookupTableData",
    "SharedFunctionalGroupsSequence",
    "PerFrameFunctionalGroupsSequence",
    "ExtendedOffsetTable",
    "ExtendedOffsetTableLengths",
    "PixelData",
    "FloatPixelData",
    "DoubleFloatPixelData",
]

PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")

# Salt for the group-key hash. It is fixed so that the same patient gets the
# same key in every run and on every machine.
# NOTE: a fixed public salt does not stop someone who has a list of
# candidate patient IDs from testing them; the key only keeps IDs out of
# plain sight in reports, caches and splits.
_GROUP_KEY_SALT = b"instruction-free-tuning/ingest/group-key/v1"

# Pixel data above this size is left unread by the header pass, unless the
# caller asks for the pixel data to be loaded.
_DEFER_BYTES = 1024

_DICOM_PREFIX_OFFSET = 128


@dataclass
class DicomHeader:
    """The parsed header tags and how the file had to be read.

    `pixels_loaded` is True when the pixel data element was read into memory
    with the header, so that decoding needs no second pass over the file.
    """

    dataset: FileDataset
    transfer_syntax: UID
    transfer_syntax_from_meta: bool
    has_preamble: bool
    pixels_loaded: bool = False


def sniff_dicom(head: bytes) -> bool:
    """Return True when the first bytes of a file look like DICOM.

    Accepts the standard 128-byte preamble followed by `DICM`, and data sets
    written without preamble or file meta that start with a group 0x0002 or
    0x0008 tag in either byte order.
    """
    if head[_DICOM_PREFIX_OFFSET : _DICOM_PREFIX_OFFSET + 4] == b"DICM":
        return True
    if len(head) < 8:
        return False
    group_little = int.from_bytes(head[0:2], "little")
    group_big = int.from_bytes(head[0:2], "big")
    element_little = int.from_bytes(head[2:4], "little")
    element_big = int.from_bytes(head[2:4], "big")
    if group_little in (0x0002, 0x0008) and element_little < 0x0100:
        return True
    return group_big in (0x0002, 0x0008) and element_big < 0x0100


def read_header(path: Path, name: str, notes: list[str], load_pixels: bool = False) -> DicomHeader:
    """Read the header tags of a DICOM file, forcing files without preamble or meta.

    With `load_pixels`, the (still encoded) pixel data is read in the same
    pass; otherwise elements above 1 KiB are left in the file. Appends a note
    when the preamble or the transfer syntax is missing and the transfer
    syntax had to be inferred from the data set's encoding.
    """
    try:
        with warnings.catch_warnings():
            # pydicom's warnings quote element values, which may identify a patient.
            warnings.simplefilter("ignore")
            dataset = pydicom.dcmread(
                path,
                force=True,
                specific_tags=HEADER_KEYWORDS,
                defer_size=None if load_pixels else _DEFER_BYTES,
            )
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError) as error:
        raise RejectedFile(
            "error",
            "unreadable DICOM header",
            f"{name}: the DICOM header could not be read ({type(error).__name__}: "
            f"{_first_line(error)}). The file is damaged or not DICOM; export it again.",
        ) from error

    has_preamble = dataset.preamble is not None
    if not has_preamble:
        notes.append("no 128-byte preamble or 'DICM' prefix; read with force=True")

    file_meta = getattr(dataset, "file_meta", None)
    meta_syntax = file_meta.get("TransferSyntaxUID") if file_meta is not None else None
    if meta_syntax:
        return DicomHeader(dataset, UID(meta_syntax), True, has_preamble, load_pixels)

    implicit_vr, little_endian = dataset.original_encoding
    if implicit_vr is None or implicit_vr:
        syntax = ImplicitVRLittleEndian
    elif little_endian:
        syntax = ExplicitVRLittleEndian
    else:
        syntax = ExplicitVRBigEndian
    notes.append(
        f"no transfer syntax in the file meta information; assumed {syntax.name} "
        "from the encoding of the data set"
    )
    return DicomHeader(dataset, syntax, False, has_preamble, load_pixels)


def sop_class_name(dataset: Dataset) -> str:
    """Return the SOP class name from the data set or its file meta, or 'not given'."""
    uid = dataset.get("SOPClassUID")
    if not uid:
        file_meta = getattr(dataset, "file_meta", None)
        uid = file_meta.get("MediaStorageSOPClassUID") if file_meta is not None else None
    if not uid:
        return "not given"
    uid = UID(str(uid))
    return uid.name if uid.name != str(uid) else f"unknown SOP class {uid}"


def has_pixel_data(dataset: Dataset) -> bool:
    """Return True when the data set contains any of the three pixel data elements."""
    return any(keyword in dataset for keyword in PIXEL_KEYWORDS)


def read_int(dataset: Dataset, keyword: str, name: str, default: int | None = None) -> int:
    """Return an integer attribute, raising RejectedFile naming the tag when invalid."""
    tag = pydicom.datadict.tag_for_keyword(keyword)
    label = f"({tag >> 16:04X},{tag & 0xFFFF:04X}) {pydicom.datadict.dictionary_description(tag)}"
    if keyword not in dataset or dataset[keyword].value in (None, ""):
        if default is not None:
            return default
        raise RejectedFile(
            "error",
            "incomplete DICOM header",
            f"{name}: the required element {label} is missing, so the pixel data cannot "
            "be interpreted. The export is incomplete; export the image again.",
        )
    value: Any = dataset[keyword].value
    try:
        return int(value)
    except (TypeError, ValueError) as error:
        raise RejectedFile(
            "error",
            "invalid DICOM header",
            f"{name}: {label} has the invalid value {value!r} (an integer is required). "
            "The file was written by faulty software; export it again.",
        ) from error


def group_key(dataset: Dataset) -> str | None:
    """Return an opaque key from the hashed Patient ID, else the Study Instance UID.

    The raw bytes are hashed without converting the element, so that pydicom
    neither decodes them with a possibly unknown character set nor quotes them
    in a validation warning. Returns None when neither element has a value.
    """
    for keyword, label in (("PatientID", "patient"), ("StudyInstanceUID", "study")):
        element = dataset.get_item(keyword)
        if element is None:
            continue
        value = element.value
        if isinstance(value, str):
            value = value.encode("utf-8")
        value = bytes(value or b"").strip(b" \0")
        if value:
            digest = hashlib.sha256(_GROUP_KEY_SALT + b"\0" + label.encode() + b"\0" + value)
            return f"dicom-{label}-{digest.hexdigest()[:16]}"
    return None


def lift_functional_groups(dataset: Dataset, frame_index: int) -> None:
    """Copy rescale and window values of enhanced multi-frame objects to the top level.

    Enhanced CT, MR and similar objects keep the Modality LUT and VOI LUT
    attributes in the Shared and Per-Frame Functional Groups Sequences, where
    pydicom's processing functions do not look. Per-frame values win over
    shared ones; top-level values already present are kept.
    """
    items = []
    shared = dataset.get("SharedFunctionalGroupsSequence")
    if shared:
        items.append(shared[0])
    per_frame = dataset.get("PerFrameFunctionalGroupsSequence")
    if per_frame and frame_index < len(per_frame):
        items.append(per_frame[frame_index])

    lifted: dict[str, Any] = {}
    for item in items:
        for sequence_keyword, keywords in (
            ("PixelValueTransformationSequence", ("RescaleSlope", "RescaleIntercept")),
            ("FrameVOILUTSequence", ("WindowCenter", "WindowWidth", "VOILUTFunction")),
        ):
            sequence = item.get(sequence_keyword)
            if not sequence:
                continue
            for keyword in keywords:
                if keyword in sequence[0]:
                    lifted[keyword] = sequence[0][keyword].value
    for keyword, value in lifted.items():
        if keyword not in dataset:
            setattr(dataset, keyword, value)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
