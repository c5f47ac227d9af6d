"""Loading a resource's data: a CSV, JSON or Excel (.xlsx) file is read row by row, each value checked against
the declared data items and converted to its type, and the rows stored as a new version in one transaction. A
file with errors becomes a version too — invalid, with its report, never current — so the owner sees what to
fix. Polled sources (``sources``) store their answers through the same path (``new_version``).

The checks are compiled once per load (one converter per column), so a million rows take seconds; the rows
are written in batches inside a savepoint that an invalid file rolls back.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import partial
from typing import Any

import orjson
from openpyxl import load_workbook
from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from cityhub.domains.exchange import schemas
from cityhub.domains.exchange.models import Resource, Row, Version
from cityhub.domains.exchange.service.access import owned_resource
from cityhub.domains.identity import Principal
from cityhub.kernel import audit
from cityhub.kernel.bulk import insert_prepared
from cityhub.kernel.db import utcnow
from cityhub.kernel.errors import ValidationProblem
from cityhub.kernel.i18n import gettext as _

BATCH = 5_000
ROW_COLUMNS = ("version_id", "row_no", "data")
ROWS: Table = Row.__table__  # type: ignore[assignment]
TRUE = frozenset({"true", "1", "yes", "y", "是"})
FALSE = frozenset({"false", "0", "no", "n", "否"})
Progress = Callable[[int], None]


class BadValue(ValueError):
    """A value that is not of its data item's type."""


class Unreadable(ValidationProblem):
    """The whole file cannot be read (not text, not JSON, not a workbook...): an upload is refused (422,
    nothing written); a polled source's answer becomes an invalid version saying why."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, field="file")


def _boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise BadValue(_("not a yes/no value"))


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError as exc:
        raise BadValue(_("not a whole number")) from exc


def _number(text: str) -> float | int:
    try:
        value = float(text)
    except ValueError as exc:
        raise BadValue(_("not a number")) from exc
    if value != value or value in (float("inf"), float("-inf")):
        raise BadValue(_("not a number"))
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def _date(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError as exc:
        raise BadValue(_("not a date (YYYY-MM-DD)")) from exc


def _datetime(text: str) -> str:
    try:
        return datetime.fromisoformat(text).isoformat()
    except ValueError as exc:
        raise BadValue(_("not a date and time (ISO 8601)")) from exc


CONVERTERS: dict[str, Callable[[str], Any]] = {
    "string": str,
    "integer": _integer,
    "number": _number,
    "boolean": _boolean,
    "date": _date,
    "datetime": _datetime,
}


@dataclass
class Report:
    """What a load found; ``errors`` lists the first ``limit``, ``error_count`` counts them all."""

    limit: int
    rows: int = 0
    error_count: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def add(self, row: int | None, item: str | None, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < self.limit:
            self.errors.append({"row": row, "field": item, "message": message})

    def as_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "error_count": self.error_count, "errors": self.errors}


class RowChecker:
    """The data items compiled: one converter per column, the required ones known."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = [(item["name"], CONVERTERS[item["type"]], bool(item.get("required"))) for item in items]
        self.names = [name for name, _convert, _required in self.items]

    def check_header(self, header: Iterable[str], report: Report) -> None:
        given = [name.strip() for name in header]
        missing = [name for name in self.names if name not in given]
        extra = [name for name in given if name not in self.names]
        if missing:
            report.add(None, ", ".join(missing), _("columns missing from the file"))
        if extra:
            report.add(None, ", ".join(extra), _("columns the resource does not declare"))

    def convert(self, number: int, values: dict[str, Any], report: Report) -> dict[str, Any] | None:
        """The row with typed values, or None after adding its errors to the report."""
        row: dict[str, Any] = {}
        good = True
        for name, convert, required in self.items:
            value = values.get(name)
            if value is None or value == "":
                if required:
                    report.add(number, name, _("a value is required"))
                    good = False
                row[name] = None
                continue
            try:
                row[name] = convert(value if isinstance(value, str) else _as_text(value))
            except BadValue as exc:
                report.add(number, name, str(exc))
                good = False
        return row if good else None

    def convert_value(self, number: int, values: dict[str, Any]) -> dict[str, Any]:
        """Some values of row ``number``, typed; a ValidationProblem naming the first that does not fit."""
        converters = {name: (convert, required) for name, convert, required in self.items}
        typed: dict[str, Any] = {}
        for name, value in values.items():
            convert, required = converters[name]
            if value is None or value == "":
                if required:
                    raise ValidationProblem(
                        _("Row %(row)s: %(field)s needs a value.", row=number, field=name)
                    )
                typed[name] = None
                continue
            try:
                typed[name] = convert(value if isinstance(value, str) else _as_text(value))
            except BadValue as exc:
                raise ValidationProblem(f"{number}/{name}: {exc}", field=name) from exc
        return typed


def _as_text(value: Any) -> str:
    """A JSON value as the text a CSV cell would hold (JSON files carry numbers and booleans natively)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return value
    raise BadValue(_("not a single value"))


def _csv_rows(content: bytes, checker: RowChecker, report: Report) -> Iterator[dict[str, Any]]:
    reader = csv.reader(io.StringIO(_decoded(content), newline=""))
    header = [name.strip() for name in next(reader, [])]
    checker.check_header(header, report)
    for values in reader:  # zip in C, not DictReader's per-row Python
        yield dict(zip(header, values, strict=False))


def _decoded(content: bytes) -> str:
    """UTF-8 (with or without a BOM, as spreadsheet programs write it), else GB18030 (older Chinese tools)."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise Unreadable(_("The file is neither UTF-8 nor GB18030 text."))


def _json_rows(
    content: bytes, checker: RowChecker, report: Report, records: str | None = None
) -> Iterator[dict[str, Any]]:
    """The rows of a JSON array of objects; ``records``, a dotted path (``data.items``), finds the array
    inside an object (as APIs wrap their answers)."""
    try:
        document = json.loads(_decoded(content))
    except json.JSONDecodeError as exc:
        raise Unreadable(_("The file is not JSON: %(error)s", error=str(exc))) from exc
    for step in (records or "").split(".") if records else ():
        document = _member(document, step, records or "")
    if not isinstance(document, list) or not all(isinstance(row, dict) for row in document):
        raise Unreadable(_("A JSON file holds an array of objects, one per row."))
    return object_rows(document, checker, report)


def _member(document: Any, step: str, path: str) -> Any:
    """One step of a dotted path: an object's member, or a list's item by its number."""
    if isinstance(document, dict) and step in document:
        return document[step]
    if isinstance(document, list) and step.isdigit() and int(step) < len(document):
        return document[int(step)]
    raise Unreadable(_("The JSON answer has nothing at %(path)s.", path=path))


def object_rows(rows: list[dict[str, Any]], checker: RowChecker, report: Report) -> Iterator[dict[str, Any]]:
    """Rows given as objects (a JSON file, a polled source): the first one's members are the header."""
    if rows:
        checker.check_header(list(rows[0]), report)
    yield from rows


def _xlsx_rows(content: bytes, checker: RowChecker, report: Report) -> Iterator[dict[str, Any]]:
    """The first sheet of an Excel workbook, streamed (openpyxl's read-only mode): the first row names the
    columns; typed cells (numbers, dates, booleans) become the text a CSV file would hold, so the same
    converters check them and the report reads the same. Empty rows at the end are ignored (spreadsheet
    programs leave formatted, empty rows behind); an empty row between rows counts, as in a CSV file."""
    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, SyntaxError) as exc:
        raise Unreadable(_("The file is not an Excel workbook (.xlsx).")) from exc
    try:
        cells = _sheet_rows(workbook)
        header = [(_cell_text(value) or "").strip() for value in next(cells, ())]
        columns = [(position, name) for position, name in enumerate(header) if name]
        checker.check_header([name for _position, name in columns], report)
        empty = 0
        for values in cells:
            if all(value is None or value == "" for value in values):
                empty += 1
                continue
            for _blank in range(empty):
                yield {}
            empty = 0
            yield {
                name: _cell_text(values[position]) if position < len(values) else None
                for position, name in columns
            }
    finally:
        workbook.close()


def _sheet_rows(workbook: Any) -> Iterator[tuple[Any, ...]]:
    """The first sheet's rows as values; a damaged workbook found while reading is Unreadable too."""
    try:
        yield from workbook.worksheets[0].iter_rows(values_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, SyntaxError, IndexError) as exc:
        raise Unreadable(_("The file is not an Excel workbook (.xlsx).")) from exc


def _cell_text(value: Any) -> Any:
    """A cell's value as CSV text: whole numbers without ``.0``, a date at midnight as a date."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return (
            value.date().isoformat() if value.time() == time() and value.tzinfo is None else value.isoformat()
        )
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


READERS: dict[str, Callable[..., Iterator[dict[str, Any]]]] = {
    "csv": _csv_rows,
    "json": _json_rows,
    "xlsx": _xlsx_rows,
}
Rows = Callable[[RowChecker, Report], Iterable[dict[str, Any]]]


def load(
    session: Session,
    principal: Principal,
    code: str,
    file_name: str,
    content: bytes,
    note: str = "",
    max_errors: int = 200,
    progress: Progress | None = None,
) -> Version:
    """A new version of the resource from a file; current when it is valid."""
    resource = owned_resource(session, principal, code)
    read = file_rows(_kind_of(file_name), content)
    digest = hashlib.sha256(content).hexdigest()
    return new_version(
        session, principal, resource, "upload", file_name, digest, read, note, max_errors, progress
    )


def file_rows(kind: str, content: bytes, records: str | None = None) -> Rows:
    """How to read a file of ``kind`` (csv, json, xlsx); ``records``: the path to a JSON answer's rows."""
    if records:
        return partial(_json_rows, content, records=records)
    return partial(READERS[kind], content)


def new_version(
    session: Session,
    principal: Principal,
    resource: Resource,
    source: str,
    file_name: str,
    sha256: str | None,
    rows: Rows,
    note: str = "",
    max_errors: int = 200,
    progress: Progress | None = None,
    *,
    keep_unreadable: bool = False,
) -> Version:
    """Check and store ``rows`` as the resource's next version (an upload's file, a polled source's answer);
    current when valid. ``keep_unreadable``: a file that cannot be read at all becomes an invalid version
    stating why (a poll: nobody is waiting for an error) rather than refusing the load."""
    checker = RowChecker(resource.data_items)
    report = Report(limit=max_errors)
    version = Version(
        resource_id=resource.id,
        number=_next_number(session, resource),
        source=source,
        file_name=file_name[:200],
        sha256=sha256,
        valid=False,
        report={},
        note=note,
        loaded_by=principal.actor,
    )
    session.add(version)
    session.flush()
    savepoint = session.begin_nested()
    try:
        _store(session, version.id, rows(checker, report), checker, report, progress)
    except Unreadable as unreadable:
        if not keep_unreadable:
            raise
        report.add(None, None, unreadable.detail or "")
    if report.error_count:
        savepoint.rollback()
    else:
        savepoint.commit()
    version.valid = report.error_count == 0
    version.row_count = report.rows if version.valid else 0
    version.report = report.as_json()
    if version.valid:
        resource.current_version_id = version.id
        resource.modified_at = utcnow()
    audit.record(
        session,
        actor=principal.actor,
        action="exchange.version.loaded" if version.valid else "exchange.version.refused",
        object_type="exchange_resource",
        object_id=resource.code,
        details={
            "version": version.number,
            "source": source,
            "rows": report.rows,
            "errors": report.error_count,
        },
    )
    return version


def _kind_of(file_name: str) -> str:
    kind = file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
    if kind not in READERS:
        raise ValidationProblem(_("Load a .csv, .json or .xlsx file."), field="file")
    return kind


def _next_number(session: Session, resource: Resource) -> int:
    last = session.scalar(select(func.max(Version.number)).where(Version.resource_id == resource.id))
    return int(last or 0) + 1


def _store(
    session: Session,
    version_id: int,
    source: Iterable[dict[str, Any]],
    checker: RowChecker,
    report: Report,
    progress: Progress | None,
) -> None:
    """Check every row; write the good ones in batches while the file has no error (after one, only check).
    Rows go to the database as JSON text made once (orjson), without per-value type processing."""
    batch: list[tuple[int, int, str]] = []
    for number, values in enumerate(source, start=1):
        report.rows = number
        row = checker.convert(number, values, report)
        if report.error_count:
            batch.clear()
            continue
        batch.append((version_id, number, orjson.dumps(row).decode()))
        if len(batch) >= BATCH:
            insert_prepared(session, ROWS, ROW_COLUMNS, batch)
            batch = []
            if progress is not None:
                progress(number)
    if batch and not report.error_count:
        insert_prepared(session, ROWS, ROW_COLUMNS, batch)
    if progress is not None:
        progress(report.rows)


def shape(version: Version, current_id: int | None) -> schemas.VersionOut:
    report = version.report or {}
    return schemas.VersionOut(
        number=version.number,
        source=version.source,
        file_name=version.file_name,
        sha256=version.sha256,
        rows=version.row_count,
        valid=version.valid,
        current=version.id == current_id,
        errors=report.get("errors", []),
        error_count=int(report.get("error_count", 0)),
        note=version.note,
        loaded_by=version.loaded_by,
        loaded_at=version.loaded_at,
    )
