"""Ingestion: turn clinicians' exports into 8-bit image–report samples.

`ingest` takes a folder or `.zip` archive; `ingest_files` takes the bare file
paths of a browser upload. Both return the samples and a report that
accounts for every input file.
"""

from engine.data.ingest.options import IngestError, IngestOptions
from engine.data.ingest.pipeline import IngestResult, ingest
from engine.data.ingest.records import FileRecord, IngestReport, ManifestProblem
from engine.data.ingest.uploads import ingest_files


__all__ = [
    "FileRecord",
    "IngestError",
    "IngestOptions",
    "IngestReport",
    "IngestResult",
    "ManifestProblem",
    "ingest",
    "ingest_files",
]
