"""DICOM decoding: the pixel pipeline, transfer syntaxes, broken and pixel-less objects."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import (
    MPEG2MPML,
    BasicTextSRStorage,
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    JPEG2000Lossless,
)

from engine.data.ingest import IngestOptions, ingest
from engine.data.ingest.dicom_pixels import decode_dicom
from engine.data.ingest.records import RejectedFile
from tests.ingest_fixtures import (
    PYDICOM_TEST_FILES,
    dicom_dataset,
    horizontal_ramp,
    write_dicom,
)


OPTIONS = IngestOptions()


def decode(path: Path):
    return decode_dicom(path, path.name, OPTIONS)


def grey(path: Path) -> np.ndarray:
    rgb = decode(path).rgb
    assert rgb.dtype == np.uint8
    assert rgb.shape[2] == 3
    assert np.array_equal(rgb[:, :, 0], rgb[:, :, 1])
    assert np.array_equal(rgb[:, :, 0], rgb[:, :, 2])
    return rgb[:, :, 0]


def test_monochrome1_ramp_is_inverted(tmp_path):
    ramp = horizontal_ramp(32, 64, 0, 4095, np.uint16)
    window = {"WindowCenter": 2048, "WindowWidth": 4096}
    mono2 = write_dicom(tmp_path / "m2.dcm", dicom_dataset(ramp, bits_stored=12, **window))
    mono1 = write_dicom(
        tmp_path / "m1.dcm",
        dicom_dataset(ramp, bits_stored=12, photometric="MONOCHROME1", **window),
    )

    dark_to_bright = grey(mono2)
    bright_to_dark = grey(mono1)

    assert dark_to_bright[0, 0] == 0
    assert dark_to_bright[0, -1] == 255
    assert bright_to_dark[0, 0] == 255
    assert bright_to_dark[0, -1] == 0
    assert np.abs(bright_to_dark.astype(int) - (255 - dark_to_bright.astype(int))).max() <= 1
    assert "MONOCHROME1 inverted" in " ".join(decode(mono1).warnings)


def test_multi_valued_window_uses_first(tmp_path):
    ramp = horizontal_ramp(32, 200, 0, 199, np.uint16)
    dataset = dicom_dataset(
        ramp, bits_stored=16, WindowCenter=[100, 1000], WindowWidth=[200, 2000]
    )
    path = write_dicom(tmp_path / "w.dcm", dataset)

    result = decode(path)
    values = result.rgb[0, :, 0]

    assert values[0] == 0
    assert values[-1] == 255
    assert abs(int(values[100]) - 128) <= 2
    assert any("first of 2" in note for note in result.warnings)


def test_absent_window_ignores_outliers(tmp_path):
    ramp = horizontal_ramp(40, 100, 0, 1000, np.uint16)
    ramp[0, :5] = 60000
    path = write_dicom(tmp_path / "outliers.dcm", dicom_dataset(ramp, bits_stored=16))

    result = decode(path)
    values = result.rgb[20, :, 0]

    # A min–max window would map 1000 to about 4; the percentile window keeps the ramp.
    assert values[-1] >= 250
    assert 110 <= values[50] <= 145
    assert values[0] <= 5
    assert any("percentile window" in note for note in result.warnings)


def test_ct_rescale_to_negative_hounsfield(tmp_path):
    stored = np.array([[864, 1064, 1264, 0, 2000]], dtype=np.uint16).repeat(30, axis=0)
    stored = np.tile(stored, (1, 6))
    dataset = dicom_dataset(
        stored,
        bits_stored=12,
        sop_class=CTImageStorage,
        RescaleIntercept=-1024,
        RescaleSlope=1,
        WindowCenter=40,
        WindowWidth=400,
    )
    path = write_dicom(tmp_path / "ct.dcm", dataset)

    row = grey(path)[0]

    assert row[0] == 0  # -160 HU, the window's lower edge
    assert abs(int(row[1]) - 128) <= 1  # 40 HU, the window centre
    assert row[2] == 255  # 240 HU, the upper edge
    assert row[3] == 0  # -1024 HU, air
    assert row[4] == 255  # 976 HU, bone


def test_junk_high_bits_are_masked(tmp_path):
    clean = horizontal_ramp(30, 64, 0, 4095, np.uint16)
    junk = clean | np.uint16(0xA000)
    window = {"WindowCenter": 2048, "WindowWidth": 4096}
    clean_path = write_dicom(tmp_path / "clean.dcm", dicom_dataset(clean, bits_stored=12, **window))
    junk_path = write_dicom(
        tmp_path / "junk.dcm",
        dicom_dataset(clean, bits_stored=12, raw=junk.astype("<u2").tobytes(), **window),
    )

    assert np.array_equal(grey(junk_path), grey(clean_path))
    assert grey(junk_path)[0, -1] == 255


def test_signed_12_bit_is_sign_extended(tmp_path):
    values = np.array([-2048, -1, 0, 2047], dtype=np.int16)
    row = np.tile(values, 8)
    stored = (np.tile(row, (30, 1)).astype(np.int32) & 0x0FFF).astype(np.uint16)
    dataset = dicom_dataset(
        np.tile(row, (30, 1)),
        bits_stored=12,
        signed=True,
        raw=stored.astype("<u2").tobytes(),
        WindowCenter=0,
        WindowWidth=4096,
    )
    path = write_dicom(tmp_path / "signed.dcm", dataset)

    decoded = grey(path)[0, :4]

    assert decoded[0] == 0
    assert decoded[3] == 255
    assert abs(int(decoded[1]) - 127) <= 1
    assert abs(int(decoded[2]) - 128) <= 1


@pytest.mark.parametrize(("frames", "expected_value", "expected_note"), [(1, 10, None), (3, 20, "frame 2 of 3")])
def test_multi_frame_uses_middle_frame(tmp_path, frames, expected_value, expected_note):
    stack = np.stack([np.full((30, 30), 10 * (i + 1), dtype=np.uint8) for i in range(frames)])
    path = write_dicom(tmp_path / "frames.dcm", dicom_dataset(stack, frames=frames))

    result = decode(path)

    assert np.all(result.rgb == expected_value)
    assert result.dicom["frames"] == frames
    notes = " ".join(result.warnings)
    if expected_note is None:
        assert "frame" not in notes
    else:
        assert expected_note in notes


def test_big_endian_matches_little_endian():
    little = decode(PYDICOM_TEST_FILES / "MR_small.dcm").rgb
    big = decode(PYDICOM_TEST_FILES / "MR_small_bigendian.dcm").rgb

    assert np.array_equal(little, big)
    assert little.std() > 10


def test_deflated_matches_explicit(tmp_path):
    ramp = horizontal_ramp(30, 64, 0, 4095, np.uint16)
    plain = write_dicom(tmp_path / "plain.dcm", dicom_dataset(ramp, bits_stored=12))
    deflated = write_dicom(
        tmp_path / "deflated.dcm",
        dicom_dataset(ramp, bits_stored=12),
        transfer_syntax=DeflatedExplicitVRLittleEndian,
    )

    assert np.array_equal(grey(deflated), grey(plain))
    assert decode(deflated).dicom["transfer_syntax"] == "Deflated Explicit VR Little Endian"


def test_big_endian_written_file(tmp_path):
    ramp = horizontal_ramp(30, 64, 0, 255, np.uint8)
    path = write_dicom(tmp_path / "be.dcm", dicom_dataset(ramp), transfer_syntax=ExplicitVRBigEndian)

    assert np.array_equal(grey(path), ramp)


def test_palette_colour_through_lookup_table(tmp_path):
    pixels = np.tile(np.arange(256, dtype=np.uint8), (30, 1))
    entries = np.arange(256, dtype=np.uint16) * 257
    dataset = dicom_dataset(pixels, photometric="PALETTE COLOR")
    for colour, data in (("Red", entries), ("Green", np.zeros(256, np.uint16)), ("Blue", 65535 - entries)):
        setattr(dataset, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, 16])
        setattr(dataset, f"{colour}PaletteColorLookupTableData", data.astype("<u2").tobytes())
    path = write_dicom(tmp_path / "palette.dcm", dataset)

    rgb = decode(path).rgb

    assert tuple(rgb[0, 0]) == (0, 0, 255)
    assert tuple(rgb[0, 255]) == (255, 0, 0)
    assert tuple(rgb[0, 128]) == (128, 0, 127)


def test_bundled_palette_file_is_colour():
    rgb = decode(PYDICOM_TEST_FILES / "examples_palette.dcm").rgb

    assert rgb.shape == (350, 800, 3)
    assert not np.array_equal(rgb[:, :, 0], rgb[:, :, 2])


def test_ybr_jpeg_comes_out_rgb():
    lossless = decode(PYDICOM_TEST_FILES / "SC_rgb_rle.dcm").rgb
    ybr_jpeg = decode(PYDICOM_TEST_FILES / "SC_rgb_dcmtk_+eb+cy+np.dcm").rgb

    assert ybr_jpeg.shape == lossless.shape
    assert np.abs(ybr_jpeg.astype(int) - lossless.astype(int)).mean() < 3
    # The first rows are pure red in the bundled SC_rgb images.
    assert tuple(lossless[0, 0]) == (255, 0, 0)
    assert ybr_jpeg[0, 0, 0] > 240
    assert ybr_jpeg[0, 0, 2] < 15


def test_missing_preamble_reads_with_warning(tmp_path):
    ramp = horizontal_ramp(30, 64, 0, 255, np.uint8)
    path = write_dicom(tmp_path / "nopreamble", dicom_dataset(ramp), preamble=False)

    result = decode(path)

    assert np.array_equal(result.rgb[:, :, 0], ramp)
    assert any("no 128-byte preamble" in note for note in result.warnings)


def test_missing_transfer_syntax_assumes_default(tmp_path):
    ramp = horizontal_ramp(30, 64, 0, 255, np.uint8)
    path = write_dicom(tmp_path / "nometa", dicom_dataset(ramp), file_meta=False)

    result = decode(path)

    assert np.array_equal(result.rgb[:, :, 0], ramp)
    notes = " ".join(result.warnings)
    assert "assumed Implicit VR Little Endian" in notes


@pytest.mark.parametrize(
    ("name", "sop_class"),
    [
        ("test-SR.dcm", "Comprehensive SR Storage"),
        ("rtplan.dcm", "RT Plan Storage"),
        ("waveform_ecg.dcm", "12-lead ECG Waveform Storage"),
        ("dicomdirtests/DICOMDIR", "Media Storage Directory Storage"),
    ],
)
def test_objects_without_pixels_are_skipped(name, sop_class):
    with pytest.raises(RejectedFile, match=f"without pixel data \\(SOP class: {sop_class}\\)") as caught:
        decode(PYDICOM_TEST_FILES / name)
    assert caught.value.status == "skipped"


def test_built_structured_report_is_skipped(tmp_path):
    path = write_dicom(tmp_path / "sr.dcm", dicom_dataset(None, sop_class=BasicTextSRStorage))

    with pytest.raises(RejectedFile, match="SOP class: Basic Text SR Storage"):
        decode(path)


def test_truncated_pixel_data_is_an_error():
    with pytest.raises(RejectedFile, match="could not be decoded") as caught:
        decode(PYDICOM_TEST_FILES / "MR_truncated.dcm")
    assert caught.value.status == "error"


def test_missing_decoder_names_package(tmp_path, monkeypatch):
    from pydicom.pixels import get_decoder

    decoder = get_decoder(JPEG2000Lossless)
    monkeypatch.setattr(type(decoder), "is_available", property(lambda self: False))

    with pytest.raises(RejectedFile, match="JPEG 2000 Image Compression \\(Lossless Only\\).*pylibjpeg-openjpeg"):
        decode(PYDICOM_TEST_FILES / "MR_small_jp2klossless.dcm")


def test_unsupported_transfer_syntax_is_named(tmp_path):
    ramp = horizontal_ramp(30, 64, 0, 255, np.uint8)
    dataset = dicom_dataset(ramp)
    dataset.PixelData = encapsulate([b"\0" * 64])
    dataset["PixelData"].VR = "OB"
    path = write_dicom(tmp_path / "mpeg.dcm", dataset, transfer_syntax=MPEG2MPML)

    with pytest.raises(RejectedFile, match="MPEG2 Main Profile / Main Level.*no decoder in pydicom"):
        decode(path)


def test_unknown_charset_does_not_stop_decoding(tmp_path):
    ramp = horizontal_ramp(30, 64, 0, 255, np.uint8)
    dataset = dicom_dataset(ramp, SpecificCharacterSet="ISO_IR 999", PatientName="M\xfcller^A")
    path = write_dicom(tmp_path / "charset.dcm", dataset)

    assert np.array_equal(grey(path), ramp)


def test_header_size_limit_checked_before_decoding(tmp_path):
    ramp = horizontal_ramp(30, 64, 0, 255, np.uint8)
    path = write_dicom(tmp_path / "big.dcm", dicom_dataset(ramp))

    with pytest.raises(RejectedFile, match="64×30 = 1,920 pixels exceeds the limit of 1,000"):
        decode_dicom(path, "big.dcm", IngestOptions(reject_above_pixels=1000))


def test_group_key_is_hashed_patient_id(tmp_path):
    ramp = horizontal_ramp(30, 64, 0, 255, np.uint8)
    first = write_dicom(tmp_path / "a.dcm", dicom_dataset(ramp, PatientID="PID-777"))
    second = write_dicom(tmp_path / "b.dcm", dicom_dataset(ramp[::-1], PatientID="PID-777"))
    other = write_dicom(tmp_path / "c.dcm", dicom_dataset(ramp, PatientID="PID-778"))

    key = decode(first).group_key

    assert key.startswith("dicom-patient-")
    assert "777" not in key
    assert decode(second).group_key == key
    assert decode(other).group_key != key


# Expected outcome of every DICOM file shipped in the pydicom 3.0.2 wheel that
# does not decode; every other DICOM file must decode.
BUNDLED_FAILURES = {
    "JPEG-lossy.dcm": ("error", "pixel data not decodable"),
    "JPEG2000-embedded-sequence-delimiter.dcm": ("error", "pixel data not decodable"),
    "MR_truncated.dcm": ("error", "pixel data not decodable"),
    "meta_missing_tsyntax.dcm": ("error", "incomplete DICOM header"),
    "nested_priv_SQ.dcm": ("error", "incomplete DICOM header"),
    "badVR.dcm": ("error", "invalid DICOM header"),
}
NO_PIXEL_DATA = ("skipped", "DICOM object without pixel data")


def _bundled_dicom_files() -> list[Path]:
    from engine.data.ingest.file_kinds import FileKind, classify

    return sorted(
        path
        for path in PYDICOM_TEST_FILES.rglob("*")
        if path.is_file() and classify(path) is FileKind.DICOM
    )


def test_bundled_test_files_are_found():
    names = {path.name for path in _bundled_dicom_files()}

    assert len(names) > 80
    assert {"CT_small.dcm", "6154", "IM00001D", "no_meta.dcm", "ExplVR_BigEndNoMeta.dcm"} <= names
    assert "README.txt" not in names
    assert "test1.json" not in names


def test_every_bundled_dicom_file_decodes_or_is_reported(tmp_path):
    source_root = tmp_path / "input"
    for index, path in enumerate(_bundled_dicom_files()):
        target = source_root / f"{index:03d}_{path.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    (source_root / "report.txt").write_text("Findings: test object.\n", encoding="utf-8")

    result = ingest(source_root, tmp_path / "cache")
    records = {record.path.split("_", 1)[1]: record for record in result.report.files if record.kind != "report"}

    for name, record in records.items():
        if name in BUNDLED_FAILURES:
            expected = BUNDLED_FAILURES[name]
        elif record.status == "skipped":
            expected = NO_PIXEL_DATA
        else:
            expected = ("ok", "image")
        assert (record.status, record.category) == expected, f"{name}: {record.reason}"
    skipped_names = {name for name, record in records.items() if record.status == "skipped"}
    assert {"test-SR.dcm", "rtplan.dcm", "waveform_ecg.dcm", "DICOMDIR", "reportsi.dcm"} <= skipped_names
    assert len(result.samples) >= 85
    assert all(record.status == "ok" for record in records.values() if record.path.endswith("CT_small.dcm"))


def test_bundled_monochrome1_lowest_value_is_brightest():
    path = PYDICOM_TEST_FILES / "dicomdirtests/77654033/CR1/6154"
    stored = pydicom.dcmread(path).pixel_array

    result = decode(path)
    output = result.rgb[:, :, 0]

    assert output.flat[np.argmin(stored)] == output.max()
    assert output.flat[np.argmax(stored)] == output.min()
    assert "MONOCHROME1 inverted" in " ".join(result.warnings)


def test_bundled_ct_window_values():
    rgb = decode(PYDICOM_TEST_FILES / "CT_small.dcm").rgb

    assert rgb.shape == (128, 128, 3)
    assert rgb.min() == 0
    assert rgb.max() == 255

