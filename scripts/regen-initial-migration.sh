#!/usr/bin/env bash
# Regenerate the single initial migration from all models (allowed until the first release; see ADR 0001).
set -euo pipefail
cd "$(dirname "$0")/.."
rm -f src/cityhub/migrations/versions/0001_*.py
db=$(mktemp -u /tmp/cityhub-regen-XXXX.db)
.venv/bin/python - "$db" <<'PY'
import sys
from alembic import command
from cityhub.migrations import alembic_config
command.revision(alembic_config(f"sqlite:///{sys.argv[1]}"), message="initial schema", autogenerate=True, rev_id="0001")
PY
rm -f "$db"
sed -i "s/astext_type=Text()/astext_type=sa.Text()/g" src/cityhub/migrations/versions/0001_*.py
.venv/bin/ruff format -q src/cityhub/migrations
.venv/bin/ruff check -q --fix src/cityhub/migrations || true
