"""Translations from Babel catalogues (``cityhub/locale/<locale>/LC_MESSAGES/messages.po``).

Message ids are English; zh_CN is the default locale. Catalogues are compiled in memory when first
used, so a checkout needs no build step. The locale of the current request lives in a context variable.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import LazyProxy, NullTranslations, Translations

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
SUPPORTED_LOCALES = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"
LOCALE_NAMES = {"zh_CN": "中文", "en": "English"}

_current_locale: ContextVar[str] = ContextVar("cityhub_locale", default=DEFAULT_LOCALE)


@cache
def translations(locale: str) -> NullTranslations:
    po_file = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not po_file.exists():
        return NullTranslations()
    with po_file.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


def set_locale(locale: str) -> Any:
    return _current_locale.set(normalize_locale(locale))


def get_locale() -> str:
    return _current_locale.get()


def normalize_locale(value: str | None) -> str:
    """Map 'zh', 'zh-CN', 'zh_Hans_CN', 'en-US'... onto a supported locale, else the default."""
    if not value:
        return DEFAULT_LOCALE
    lowered = value.strip().replace("-", "_").lower()
    for locale in SUPPORTED_LOCALES:
        if lowered == locale.lower() or lowered.split("_")[0] == locale.split("_")[0].lower():
            return locale
    return DEFAULT_LOCALE


def negotiate(accept_language: str | None) -> str | None:
    """The best supported locale from an Accept-Language header, or None."""
    if not accept_language:
        return None
    weighted: list[tuple[float, str]] = []
    for part in accept_language.split(","):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag:
            weighted.append((quality, tag))
    for _quality, tag in sorted(weighted, key=lambda item: -item[0]):
        prefix = tag.replace("-", "_").split("_")[0].lower()
        for locale in SUPPORTED_LOCALES:
            if locale.split("_")[0].lower() == prefix:
                return locale
    return None


def gettext(message: str, **variables: Any) -> str:
    text = translations(get_locale()).ugettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables: Any) -> str:
    text = translations(get_locale()).ungettext(singular, plural, n)
    return text % ({"num": n} | variables)


def lazy_gettext(message: str, **variables: Any) -> LazyProxy:
    """For strings defined at import time (menus, tile titles): translated when rendered."""
    return LazyProxy(gettext, message, enable_cache=False, **variables)


@contextmanager
def using_locale(locale: str) -> Iterator[str]:
    """Translate in ``locale`` inside the block (then back to the caller's), e.g. for a message to another
    person than the one making the request; yields the normalised locale."""
    token = _current_locale.set(normalize_locale(locale))
    try:
        yield _current_locale.get()
    finally:
        _current_locale.reset(token)


def translate_in(locale: str, message: str | LazyProxy, variables: Mapping[str, Any] | None = None) -> str:
    """``message`` (a msgid or a lazy string) translated into ``locale``, with ``%(name)s`` variables filled.

    Raises KeyError when the translation names a variable that was not given.
    """
    with using_locale(locale):
        text = gettext(message) if isinstance(message, str) else str(message)
    return text % dict(variables) if variables else text


_ = gettext
