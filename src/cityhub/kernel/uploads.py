"""Files residents upload (form attachments, photos of a reported problem): read within a cap, typed by
their first bytes rather than their name, and stored once per content under a domain's uploads folder."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request
from starlette.datastructures import UploadFile

from cityhub.kernel.errors import ValidationProblem
from cityhub.kernel.i18n import gettext as _

MAX_FILE_BYTES = 10 * 1024 * 1024
PDF, PNG, JPEG = "application/pdf", "image/png", "image/jpeg"
SIGNATURES = {b"%PDF-": PDF, b"\x89PNG\r\n\x1a\n": PNG, b"\xff\xd8\xff": JPEG}
IMAGES = (PNG, JPEG)
DOCUMENTS = (PDF, PNG, JPEG)


@dataclass(frozen=True)
class Upload:
    """A file as it arrived, read into memory up to one byte past MAX_FILE_BYTES (so too big is seen)."""

    filename: str
    data: bytes


def content_type(upload: Upload, allowed: tuple[str, ...]) -> str:
    """The file's real type among ``allowed``; ValueError with a reader-facing reason otherwise."""
    if len(upload.data) > MAX_FILE_BYTES:
        raise ValueError(_("A file may be at most 10 MB."))
    for signature, kind in SIGNATURES.items():
        if upload.data.startswith(signature) and kind in allowed:
            return kind
    if allowed == IMAGES:
        raise ValueError(_("Attach a PNG or JPEG picture."))
    raise ValueError(_("Attach a PDF, PNG or JPEG file."))


def store(folder: Path, data: bytes) -> str:
    """Write the bytes once under their SHA-256 (returned); a crash mid-write leaves only a temporary file."""
    digest = hashlib.sha256(data).hexdigest()
    target = folder / digest
    if target.exists():
        return digest
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{digest}.{os.getpid()}.tmp"
    temporary.write_bytes(data)
    os.replace(temporary, target)
    return digest


async def read_form(
    request: Request, *, max_files: int, max_fields: int = 200
) -> tuple[dict[str, list[str]], dict[str, list[Upload]]]:
    """The text fields and files of a multipart (or url-encoded) body, files read up to the cap; several
    values and files may share a name (checkboxes, photos)."""
    try:
        submitted = await request.form(max_files=max_files, max_fields=max_fields)
    except Exception as exc:  # Starlette raises its own errors for broken or oversized multipart bodies
        raise ValidationProblem(_("The form could not be read: %(reason)s", reason=str(exc)[:200])) from exc
    fields: dict[str, list[str]] = {}
    files: dict[str, list[Upload]] = {}
    for key, value in submitted.multi_items():
        if key == "csrf_token":
            continue
        if isinstance(value, UploadFile):
            data = await value.read(MAX_FILE_BYTES + 1)
            if data:
                files.setdefault(key, []).append(Upload(value.filename or key, data))
        else:
            fields.setdefault(key, []).append(value)
    return fields, files


def single_values(fields: Mapping[str, list[str]]) -> dict[str, str]:
    """One value per name (a text input): the last given, as a browser's form would overwrite it."""
    return {key: values[-1] for key, values in fields.items() if values}


def single_files(files: Mapping[str, list[Upload]]) -> dict[str, Upload]:
    """One file per name (a form field holds one attachment): the first given."""
    return {key: uploads[0] for key, uploads in files.items() if uploads}
