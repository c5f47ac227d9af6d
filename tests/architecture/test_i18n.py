"""No user-visible string outside a catalogue: extraction is complete, zh_CN translates every message, and
the pages speak Chinese by default and English on request."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient

from cityhub.kernel.i18n import LOCALE_DIR, SUPPORTED_LOCALES
from cityhub.web.templating import templates

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_DIRS = [
    ROOT / "src" / "cityhub" / "web" / "templates",
    *(ROOT / "src" / "cityhub" / "domains").glob("*/templates"),
]
# Attributes whose values people read or hear; like text, they must come from a {{ _() }} call.
READABLE_ATTRIBUTE = re.compile(
    r'\b(title|alt|placeholder|aria-label|data-confirm|data-expired-text)="([^"]*)"'
)
TAG = re.compile(r"<[^>]*>")
WORD = re.compile(r"[A-Za-z\u4e00-\u9fff]")
EXPRESSION = "\x00"


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The messages of the source tree, extracted exactly as `make i18n` does."""
    pot = tmp_path_factory.mktemp("i18n") / "messages.pot"
    pybabel = Path(sys.executable).parent / "pybabel"
    command = [
        str(pybabel),
        "extract",
        "-F",
        "babel.cfg",
        "-o",
        str(pot),
        "--no-location",
        "--sort-output",
        "src",
    ]
    subprocess.run(command, cwd=ROOT, capture_output=True, check=True, timeout=300)
    with pot.open("rb") as handle:
        return read_po(handle)


def _catalog(locale: str) -> Catalog:
    with (LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=locale)


def test_extraction_finds_the_messages_of_python_and_templates(extracted: Catalog) -> None:
    ids = {message.id for message in extracted if message.id}
    assert {"Forbidden", "Resident", "My citizen card", "Log in"} <= ids  # kernel, manifest, templates


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_every_extracted_message_is_in_the_catalogue(extracted: Catalog, locale: str) -> None:
    catalog = _catalog(locale)
    missing = sorted(str(message.id) for message in extracted if message.id and message.id not in catalog)
    assert not missing, f"run `make i18n` and translate: {missing}"


def test_chinese_translates_every_message_with_the_same_placeholders(extracted: Catalog) -> None:
    catalog = _catalog("zh_CN")
    untranslated = []
    for message in extracted:
        if not message.id:
            continue
        translated = catalog.get(message.id)
        if translated is None or not translated.string or translated.fuzzy:
            untranslated.append(str(message.id))
    assert not untranslated, f"zh_CN lacks (or has fuzzy) translations for: {untranslated}"
    problems = [(str(message.id), [str(error) for error in errors]) for message, errors in catalog.check()]
    assert not problems, f"placeholders differ between msgid and msgstr: {problems}"


def _visible_text(source: str) -> tuple[str, list[str]]:
    """The literal text of a template outside tags and expressions, and its readable attribute values."""
    literal = "".join(
        value if token == "data" else EXPRESSION for _line, token, value in templates().env.lex(source)
    )
    attributes = [value for _name, value in READABLE_ATTRIBUTE.findall(literal)]
    return TAG.sub(" ", literal), attributes


@pytest.mark.parametrize(
    "template", [path for folder in TEMPLATE_DIRS for path in sorted(folder.rglob("*.html"))], ids=str
)
def test_templates_show_no_text_outside_the_catalogue(template: Path) -> None:
    text, attributes = _visible_text(template.read_text(encoding="utf-8"))
    stray = [word for word in text.split() if WORD.search(word)]
    stray += [value for value in attributes if WORD.search(value.replace(EXPRESSION, ""))]
    assert not stray, f"{template.name}: wrap in {{{{ _(...) }}}}: {stray}"


def test_pages_speak_chinese_by_default(client: TestClient) -> None:
    page = client.get("/login", headers={"Accept": "text/html"})
    assert '<html lang="zh-CN">' in page.text
    assert "<h1>登录</h1>" in page.text and "Log in" not in page.text


@pytest.mark.parametrize(
    "headers",
    [{"Cookie": "cityhub_locale=en"}, {"Accept-Language": "en-GB,en;q=0.9"}],
    ids=["cookie", "accept-language"],
)
def test_pages_speak_english_on_request(client: TestClient, headers: dict[str, str]) -> None:
    page = client.get("/login", headers={"Accept": "text/html", **headers})
    assert '<html lang="en">' in page.text
    assert "<h1>Log in</h1>" in page.text and "登录" not in page.text


def test_the_cookie_wins_over_the_browser_language(client: TestClient) -> None:
    headers = {"Accept": "text/html", "Accept-Language": "en", "Cookie": "cityhub_locale=zh_CN"}
    assert "<h1>登录</h1>" in client.get("/login", headers=headers).text
