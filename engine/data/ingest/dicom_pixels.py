"""Decoding one DICOM frame to 8-bit greyscale or RGB with pydicom's pixel pipeline.

Greyscale frames follow the order of DICOM PS3.4 N.2.1.1: modality LUT
(rescale slope and intercept as float, or the Modality LUT Sequence), then
VOI LUT or window, then MONOCHROME1 inversion, then 8 bits. They stay one
channel; consumers of the cache convert to RGB when they open the image.
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi, apply_windowing, get_decoder, pixel_array
from pydicom.uid import DeflatedExplicitVRLittleEndian

from engine.data.ingest.dicom_header import (
    DicomHeader,
    group_key,
    has_pixel_data,
    lift_functional_groups,
    read_header,
    read_int,
    sop_class_name,
)
from engine.data.ingest.options import IngestOptions
from engine.data.ingest.raster_images import check_header_size
from engine.data.ingest.records import DecodedPixels, RejectedFile
from engine.data.ingest.transforms import (
    percentile_window,
    scale_to_uint8,
    unit_to_uint8,
    window_to_unit,
)


# Packages that add a decoder for each compressed transfer syntax, per the
# pydicom 3.0 decoder plugin tables.
_JPEG_PACKAGES = "pylibjpeg and pylibjpeg-libjpeg"
_JPEG_2000_PACKAGES = "pylibjpeg and pylibjpeg-openjpeg"
_DECODER_PACKAGES = {
    "1.2.840.10008.1.2.4.50": _JPEG_PACKAGES,
    "1.2.840.10008.1.2.4.51": _JPEG_PACKAGES,
    "1.2.840.10008.1.2.4.57": _JPEG_PACKAGES,
    "1.2.840.10008.1.2.4.70": _JPEG_PACKAGES,
    "1.2.840.10008.1.2.4.80": "pyjpegls",
    "1.2.840.10008.1.2.4.81": "pyjpegls",
    "1.2.840.10008.1.2.4.90": _JPEG_2000_PACKAGES,
    "1.2.840.10008.1.2.4.91": _JPEG_2000_PACKAGES,
    "1.2.840.10008.1.2.4.201": _JPEG_2000_PACKAGES,
    "1.2.840.10008.1.2.4.202": _JPEG_2000_PACKAGES,
    "1.2.840.10008.1.2.4.203": _JPEG_2000_PACKAGES,
    "1.2.840.10008.1.2.5": "pylibjpeg and pylibjpeg-rle",
}

# Files up to this size are parsed once, header and encoded pixel data
# together. Larger files (long cine loops) get a header pass and then a
# decode of the one frame used, so their pixel data is never in memory whole.
_ONE_PASS_MAX_BYTES = 32 * 1024**2

_COLOUR_INTERPRETATIONS = frozenset({"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT"})

# Errors that pydicom and its plugins raise for damaged pixel data.
_DECODE_ERRORS = (
    ValueError,
    RuntimeError,
    AttributeError,
    KeyError,
    IndexError,
    TypeError,
    EOFError,
    OSError,
    struct.error,
)


def decode_dicom(path: Path, name: str, options: IngestOptions) -> DecodedPixels:
    """Decode the chosen frame of a DICOM file into 8-bit greyscale or RGB.

    Multi-frame policy: the middle frame (index frames // 2) is decoded, and
    only that frame, so a long cine never sits in memory whole. Objects
    without pixel data are skipped with their SOP class named.
    """
    notes: list[str] = []
    header = read_header(path, name, notes, load_pixels=path.stat().st_size <= _ONE_PASS_MAX_BYTES)
    dataset = header.dataset

    if not has_pixel_data(dataset):
        sop_class = sop_class_name(dataset)
        raise RejectedFile(
            "skipped",
            "DICOM object without pixel data",
            f"{name}: DICOM object without pixel data (SOP class: {sop_class}); there is "
            "no image to train on.",
        )

    rows = read_int(dataset, "Rows", name)
    columns = read_int(dataset, "Columns", name)
    frames = read_int(dataset, "NumberOfFrames", name, default=1)
    read_int(dataset, "BitsAllocated", name)
    check_header_size(columns, rows, name, options)
    photometric = str(dataset.get("PhotometricInterpretation") or "").strip().upper()
    if not photometric:
        read_int(dataset, "PhotometricInterpretation", name)

    frame_index = frames // 2 if frames > 1 else 0
    if frames > 1:
        notes.append(f"frame {frame_index + 1} of {frames} used (middle frame)")
    lift_functional_groups(dataset, frame_index)

    frame = _decode_frame(path, name, header, frame_index)
    if frame.dtype.byteorder not in ("=", "|"):
        frame = frame.astype(frame.dtype.newbyteorder("="))

    if photometric in ("MONOCHROME1", "MONOCHROME2"):
        pixels = _grey_to_uint8(frame, dataset, photometric, notes)
    elif photometric == "PALETTE COLOR":
        pixels = _palette_to_rgb(frame, dataset, name, notes)
    elif photometric in _COLOUR_INTERPRETATIONS:
        pixels = _colour_to_rgb(frame, dataset, name)
    else:
        raise RejectedFile(
            "error",
            "unsupported photometric interpretation",
            f"{name}: photometric interpretation {photometric!r} is not supported "
            "(supported: MONOCHROME1, MONOCHROME2, PALETTE COLOR, RGB, YBR_*). "
            "Convert the image to RGB or greyscale.",
        )

    descriptors = {
        "modality": str(dataset.get("Modality") or ""),
        "sop_class": sop_class_name(dataset),
        "rows": rows,
        "columns": columns,
        "frames": frames,
        "frame_used": frame_index + 1,
        "photometric_interpretation": photometric,
        "transfer_syntax": header.transfer_syntax.name,
    }
    return DecodedPixels(
        pixels=pixels, warnings=notes, group_key=group_key(dataset), dicom=descriptors
    )


def _decode_frame(path: Path, name: str, header: DicomHeader, index: int) -> np.ndarray:
    """Decode one frame from the loaded pixel data, else from the file.

    When the header pass loaded the pixel data, the frame is decoded from
    that data set. Otherwise the file route reads only the requested frame.
    Deflated data sets, and files whose data set encoding contradicts their
    transfer syntax, are then read whole with dcmread first because the file
    route cannot parse them.
    """
    syntax = header.transfer_syntax
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError as error:
        raise RejectedFile(
            "error",
            "unsupported transfer syntax",
            f"{name}: transfer syntax {syntax.name} ({syntax}) has no decoder in pydicom "
            f"{pydicom.__version__}. Convert the file to an uncompressed or JPEG transfer "
            "syntax (for example with dcmtk's dcmconv or gdcmconv --raw).",
        ) from error
    if not decoder.is_available:
        packages = _DECODER_PACKAGES.get(str(syntax), "a pydicom decoder plugin")
        raise RejectedFile(
            "error",
            "missing decoder package",
            f"{name}: no installed decoder for transfer syntax {syntax.name} ({syntax}). "
            f"Install {packages}.",
        )

    encoding = header.dataset.original_encoding
    expected_encoding = (syntax.is_implicit_VR, syntax.is_little_endian)
    read_whole = syntax == DeflatedExplicitVRLittleEndian or encoding != expected_encoding
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if header.pixels_loaded:
                header.dataset.file_meta.TransferSyntaxUID = syntax
                return pixel_array(header.dataset, index=index)
            if not read_whole:
                try:
                    options = {} if header.transfer_syntax_from_meta else {"transfer_syntax_uid": syntax}
                    return pixel_array(path, index=index, **options)
                except _DECODE_ERRORS:
                    # Some writers encode the data set differently from what the
                    # file meta declares; dcmread detects that, the file route not.
                    pass
            dataset = pydicom.dcmread(path, force=True)
            dataset.file_meta.TransferSyntaxUID = syntax
            return pixel_array(dataset, index=index)
    except _DECODE_ERRORS as error:
        raise RejectedFile(
            "error",
            "pixel data not decodable",
            f"{name}: the pixel data ({syntax.name}) could not be decoded: "
            f"{_summarise_error(error)}. The file is truncated or damaged; export it again.",
        ) from error


def _grey_to_uint8(
    frame: np.ndarray, dataset: Dataset, photometric: str, notes: list[str]
) -> np.ndarray:
    """Apply modality LUT, VOI LUT or window, and MONOCHROME1 inversion; return 8-bit grey."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = apply_modality_lut(frame, dataset)
    rescaled = values is not frame
    unit = _apply_voi(values, dataset, rescaled, notes)
    if photometric == "MONOCHROME1":
        unit = 1.0 - unit
        notes.append("MONOCHROME1 inverted (its lowest value is displayed white)")
    return unit_to_uint8(unit)


def _apply_voi(
    values: np.ndarray, dataset: Dataset, rescaled: bool, notes: list[str]
) -> np.ndarray:
    """Return values in [0, 1] after the first VOI LUT, else the first window, else a percentile window."""
    voi_sequence = dataset.get("VOILUTSequence")
    if voi_sequence and "LUTDescriptor" in voi_sequence[0] and "LUTData" in voi_sequence[0]:
        lut_values = values
        if lut_values.dtype.kind == "f" and np.array_equal(lut_values, np.rint(lut_values)):
            lut_values = lut_values.astype(np.int64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            output = apply_voi(lut_values, dataset, index=0)
        bits = int(voi_sequence[0].LUTDescriptor[2])
        notes.append(f"VOI LUT 1 of {len(voi_sequence)} used")
        return window_to_unit(output, 0.0, float(2**bits - 1))

    if dataset.get("WindowCenter") is not None and dataset.get("WindowWidth") is not None:
        unit = _apply_window(values, dataset, notes)
        if unit is not None:
            return unit

    bits_stored = int(dataset.get("BitsStored") or 0)
    if not rescaled and values.dtype.kind in "ui" and 0 < bits_stored <= 8 and values.min() >= 0:
        return window_to_unit(values, 0.0, float(2**bits_stored - 1))

    padding = dataset.get("PixelPaddingValue")
    low, high = percentile_window(values, exclude=None if padding is None else float(padding))
    notes.append(
        f"no VOI LUT or window in the file; used the percentile window [{low:g}, {high:g}]"
    )
    return window_to_unit(values, low, high)


def _apply_window(values: np.ndarray, dataset: Dataset, notes: list[str]) -> np.ndarray | None:
    """Apply the first Window Center/Width pair; return None when it is invalid."""
    center_element = dataset["WindowCenter"]
    width_element = dataset["WindowWidth"]
    count = max(center_element.VM, width_element.VM)
    center = center_element.value[0] if center_element.VM > 1 else center_element.value
    width = width_element.value[0] if width_element.VM > 1 else width_element.value
    try:
        with warnings.catch_warnings(), np.errstate(over="ignore"):
            warnings.simplefilter("ignore")
            output = apply_windowing(values, dataset, index=0)
            # Windowing maps into a fixed output range; the ends of that range are
            # the outputs for inputs far below and far above the window.
            bounds = apply_windowing(np.array([-1e30, 1e30]), dataset, index=0)
    except (ValueError, TypeError, IndexError) as error:
        notes.append(f"window center {center}, width {width} is invalid ({error}); ignored")
        return None
    low, high = float(np.min(bounds)), float(np.max(bounds))
    unit = window_to_unit(output, low, high)
    if float(bounds[0]) > float(bounds[1]):
        unit = 1.0 - unit
    suffix = f" (first of {count})" if count > 1 else ""
    notes.append(f"window center {float(center):g}, width {float(width):g}{suffix}")
    return unit


def _palette_to_rgb(
    frame: np.ndarray, dataset: Dataset, name: str, notes: list[str]
) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rgb = apply_color_lut(frame, dataset)
    except (ValueError, AttributeError, KeyError, TypeError) as error:
        raise RejectedFile(
            "error",
            "invalid palette",
            f"{name}: the PALETTE COLOR lookup table could not be applied ({error}). "
            "Export the image as RGB.",
        ) from error
    if rgb.dtype == np.uint8:
        return rgb
    if rgb.max() <= 255:
        notes.append("16-bit palette entries all below 256; used as 8-bit values")
        return rgb.astype(np.uint8)
    return scale_to_uint8(rgb, 65535)


def _colour_to_rgb(frame: np.ndarray, dataset: Dataset, name: str) -> np.ndarray:
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise RejectedFile(
            "error",
            "invalid DICOM header",
            f"{name}: a colour image must have 3 samples per pixel, but the pixel data "
            f"has shape {frame.shape}. Export the image again.",
        )
    if frame.dtype == np.uint8:
        return frame
    bits_stored = int(dataset.get("BitsStored") or frame.dtype.itemsize * 8)
    return scale_to_uint8(frame, 2**bits_stored - 1)


def _summarise_error(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = "; ".join(lines) if lines else type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."

