#!/usr/bin/env bash
# The test command: installs what the tests need, then runs lint, types and the whole test suite
# (unit tests on fakes, store tests on SQLite and PostgreSQL, end-to-end tests with a real
# Asterisk 22 in the lab chroot and real SIP calls from SIPp).
#
# The tests run in TONGDAI_TEST_WORKERS processes (default 2, one per core of the 2-core machine
# they were measured on; 0 runs them in this one process): pytest-xdist, one test file per
# process at a time. Each process runs its end-to-end labs on a lab instance of its own (worker
# gwK: instance K + 1: its own ports, Asterisk folders and lab lock; lab/instance.py), so
# end-to-end modules run side by side and never on instance 0, the `tongdai lab up` of this
# machine. Wrap it in `flock /tmp/tongdai-lab.lock` on a machine others share.
set -euo pipefail
cd "$(dirname "$0")/.."
TONGDAI_EXTRAS=dev bash scripts/install.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
exec .venv/bin/pytest -p no:cacheprovider -n "${TONGDAI_TEST_WORKERS:-2}" --dist loadfile "$@"
