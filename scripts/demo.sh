#!/usr/bin/env bash
# The main job: the whole stack on embedded defaults (SQLite) - a real Asterisk 22 in the lab
# chroot and the engine - with simulated citizens (SIPp callers pressing real RFC 4733 keys) and
# simulated agents (a SIPp UAS answering every agent phone). Prints what the calls left behind.
# The engine's own ACD distributes the calls (scripts/demo.toml); DISTRIBUTION=asterisk uses
# app_queue instead. CALLS=100 RATE=5 bash scripts/demo.sh to change the load; KEEP_LAB=1 leaves
# the lab running.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
if [ "${DISTRIBUTION:-engine}" = "asterisk" ]; then
  td=.venv/bin/tongdai
else
  td=".venv/bin/tongdai --config scripts/demo.toml"
fi
$td lab up
start=$(date -u +%Y-%m-%dT%H:%M:%S+00:00)
status=0
$td lab simulate --calls "${CALLS:-40}" --rate "${RATE:-4}" || status=$?
echo
echo "the tickets these calls left (tongdai tickets list --since $start):"
COLUMNS=200 $td tickets list --since "$start"
if [ "${KEEP_LAB:-0}" = "1" ]; then
  echo "the lab is still running: call sip:1022@127.0.0.1:5060, then: $td lab down"
else
  $td lab down
fi
exit "$status"
