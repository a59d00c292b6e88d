"""The export file: a versioned, gzip-compressed JSON-lines copy of part of the event log.

Format `reelpulse-events`, version 1 (specified in docs/replay.md):

    line 1      header   {"format": "reelpulse-events", "version": 1, "exported_at": ISO,
                          "source": store URL without password, "selection": {...},
                          "positions": [first, last]}   (the span of positions scanned)
    lines 2..n  events   {"position": N, "originator_id": UUID, "originator_version": N,
                          "topic": "domain.engagement:Engagement.Viewed",
                          "state": {...}}   (the stored state, eventsourcing's JSON
                          transcoding, exactly as stored: upcasting happens on replay)
    last line   trailer  {"end": true, "events": count, "last_position": N | null}

Events are in global order. A file without its trailer is truncated and is refused.
The writer writes `<file>.partial` and renames it when the trailer is written, so an
interrupted export leaves no file that looks complete. The gzip stream carries no
timestamp (mtime 0): the same events exported twice differ only in `exported_at`.
"""

import gzip
import io
import os
import zlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import Notification
from sqlalchemy.engine import make_url

from adapters.replay.selection import Batch, Filter, Selection

FORMAT = "reelpulse-events"
VERSION = 1


class ExportFormatError(ValueError):
    """The file is not a readable `reelpulse-events` export of a supported version."""


def redact(url: str) -> str:
    """A database URL without its password (an export's header, the serve banner)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def _partial(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


def write_export(
    path: Path,
    batches: Iterable[Batch],
    *,
    selection: Selection,
    span: tuple[int, int],
    source: str,
    exported_at: datetime | None = None,
) -> tuple[int, int | None]:
    """Write the batches to `path` atomically; return (events written, last position)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = _partial(path)
    count, last = 0, None
    header = {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": (exported_at or datetime.now(UTC)).isoformat(),
        "source": redact(source),
        "selection": selection.describe(),
        "positions": list(span),
    }
    try:
        with (
            open(partial, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
        ):
            gz.write(orjson.dumps(header) + b"\n")
            for _, records in batches:
                lines = []
                for n, state, _ in records:
                    lines.append(
                        orjson.dumps(
                            {
                                "position": n.id,
                                "originator_id": str(n.originator_id),
                                "originator_version": n.originator_version,
                                "topic": n.topic,
                                "state": state,
                            }
                        )
                    )
                    last = n.id
                count += len(lines)
                if lines:
                    gz.write(b"\n".join(lines) + b"\n")
            gz.write(orjson.dumps({"end": True, "events": count, "last_position": last}) + b"\n")
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)  # Ctrl-C or a failure: no half-written export
        raise
    return count, last


def read_header(path: Path) -> dict[str, Any]:
    with _open(path) as lines:
        return _header(path, next(lines, b""))


def _open(path: Path) -> Any:
    try:
        return gzip.open(path, "rb")
    except OSError as e:
        raise ExportFormatError(f"cannot open {path}: {e.strerror or e}") from None


def _header(path: Path, line: bytes) -> dict[str, Any]:
    try:
        header = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise ExportFormatError(f"{path} does not start with a reelpulse-events header") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ExportFormatError(f"{path} is not a {FORMAT} export")
    if header.get("version") != VERSION:
        raise ExportFormatError(
            f"{path} is a version {header.get('version')} export; this build reads version "
            f"{VERSION}"
        )
    return header


def file_batches(
    path: Path, selection: Selection, *, batch_size: int = 2000
) -> tuple[tuple[int, int], Iterator[Batch]]:
    """Like `store_batches`, from an export file: the span and the selected records."""
    header = read_header(path)
    first, last = (int(p) for p in header["positions"])
    span = (max(first, selection.from_position or first), min(last, selection.to_position or last))
    return span, _records(path, selection, batch_size)


def _records(path: Path, selection: Selection, batch_size: int) -> Iterator[Batch]:
    flt = Filter(selection)
    hi = selection.to_position
    batch: list[Any] = []
    scanned = 0
    try:
        with gzip.open(path, "rb") as f:
            lines = iter(f)
            _header(path, next(lines, b""))
            for number, line in enumerate(lines, start=2):
                doc = _line(path, number, line)
                if doc.get("end") is True:
                    if doc.get("events") != number - 2:
                        raise ExportFormatError(f"{path}: the trailer's event count is wrong")
                    if batch or scanned:
                        yield scanned, batch
                    return
                n = Notification(
                    id=int(doc["position"]),
                    originator_id=UUID(doc["originator_id"]),
                    originator_version=int(doc["originator_version"]),
                    topic=doc["topic"],
                    state=orjson.dumps(doc["state"]),
                )
                if hi is not None and n.id > hi:
                    continue  # read on to the trailer: a truncated file is still refused
                scanned = n.id
                kind = flt.classify(n, doc["state"])
                if kind is not None:
                    batch.append((n, doc["state"], kind == "context"))
                if len(batch) >= batch_size:
                    yield scanned, batch
                    batch = []
    except (EOFError, zlib.error, gzip.BadGzipFile, io.UnsupportedOperation) as e:
        raise ExportFormatError(f"{path} is damaged or truncated ({e})") from None
    raise ExportFormatError(f"{path} is truncated (no trailer line): export it again")


def _line(path: Path, number: int, line: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(line)
        if not isinstance(doc, dict):
            raise ValueError
        if doc.get("end") is not True:
            for key in ("position", "originator_id", "originator_version", "topic", "state"):
                doc[key]
    except (orjson.JSONDecodeError, ValueError, KeyError):
        raise ExportFormatError(f"{path}: line {number} is not an event of the format") from None
    return doc
