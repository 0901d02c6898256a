#!/usr/bin/env bash
# The test command: installs what the tests need, then runs lint, types and the whole test suite
# (unit tests on fakes, store tests on SQLite and PostgreSQL, end-to-end tests with a real
# Asterisk 22 in the lab chroot and real SIP calls from SIPp).
set -euo pipefail
cd "$(dirname "$0")/.."
TONGDAI_EXTRAS=dev bash scripts/install.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
exec .venv/bin/pytest -p no:cacheprovider "$@"
