"""Every setting is documented; models and migrations agree on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest

from cityhub.cli.settings_cmd import all_settings as _all_settings
from cityhub.kernel.settings import Settings
from cityhub.migrations import check

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_setting_has_a_description() -> None:
    undocumented = [name for name, _default, description in _all_settings() if not description]
    assert not undocumented, f"settings without a description: {undocumented}"


def test_every_setting_is_in_the_configuration_docs() -> None:
    text = DOCS.read_text(encoding="utf-8")
    missing = [name for name, _default, _text in _all_settings() if f"`{name}`" not in text]
    assert not missing, (
        f"add these to docs/configuration.md (`cityhub settings docs` prints the table): {missing}"
    )


def test_default_secret_is_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYHUB_ENV", "production")
    monkeypatch.delenv("CITYHUB_SECRET_KEY", raising=False)
    with pytest.raises(ValueError, match="CITYHUB_SECRET_KEY"):
        Settings()
    monkeypatch.setenv("CITYHUB_SECRET_KEY", "x" * 40)
    assert Settings().env == "production"


def test_models_and_migrations_have_no_drift(database) -> None:
    check(database.engine.url.render_as_string(hide_password=False))
