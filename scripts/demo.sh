#!/usr/bin/env bash
# The main job: the whole stack on embedded defaults (SQLite) - a real Asterisk 22 in the lab
# chroot and the engine - with simulated citizens (SIPp callers pressing real RFC 4733 keys) and
# simulated agents (a SIPp UAS answering every agent phone). Then citizens write mails through
# the lab's own mail server (Dovecot + Postfix, lab/mail.py) and open web chats, and simulated
# agents answer and resolve them from the console's API (lab/demo_messages.py). Prints what the
# calls, mails and chats left behind.
# The engine's own ACD distributes the calls (scripts/demo.toml); DISTRIBUTION=asterisk uses
# app_queue instead (conversations then get the offline answer: no agent takes them live, and
# the mails and chats are not part of the run). CALLS=100 RATE=5 bash scripts/demo.sh to change
# the load, MAILS=5 CHATS=5 the messages; KEEP_LAB=1 leaves the lab (and the mail server)
# running; LAB_INSTANCE=N runs on lab instance N (its own ports, README "Labs side by side").
set -euo pipefail
cd "$(dirname "$0")/.."
messages=1
[ "${DISTRIBUTION:-engine}" = "asterisk" ] && messages=0
TONGDAI_MAIL=$messages bash scripts/install.sh
out=var/demo
mkdir -p "$out"
if [ "$messages" = "1" ]; then
  cp scripts/demo.toml "$out/base.toml"
else
  : >"$out/base.toml"
fi
if [ -n "${LAB_INSTANCE:-}" ]; then
  printf '\n[lab]\ninstance = %d\n' "$LAB_INSTANCE" >>"$out/base.toml"
fi
py=.venv/bin/python
if [ "$messages" = "1" ]; then
  config=$($py -m lab.demo_messages prepare "$out/base.toml" "$out")
else
  config="$out/base.toml"
fi
td=".venv/bin/tongdai --config $config"
cleanup() {
  if [ "${KEEP_LAB:-0}" != "1" ]; then
    $td lab down || true
    [ "$messages" = "1" ] && $py -m lab.demo_messages stop "$out" || true
  fi
}
trap cleanup EXIT
$td lab up
start=$(date -u +%Y-%m-%dT%H:%M:%S+00:00)
status=0
$td lab simulate --calls "${CALLS:-40}" --rate "${RATE:-4}" || status=$?
if [ "$messages" = "1" ]; then
  echo
  $py -m lab.demo_messages run "$out" --mails "${MAILS:-3}" --chats "${CHATS:-3}" || status=$?
fi
echo
echo "the tickets these calls, mails and chats left (tongdai tickets list --since $start):"
COLUMNS=220 $td tickets list --since "$start"
if [ "${KEEP_LAB:-0}" = "1" ]; then
  echo "the lab is still running: call sip:1022@127.0.0.1:5060, then: $td lab down;"
  [ "$messages" = "1" ] && echo "  and stop the mail server: $py -m lab.demo_messages stop $out"
fi
exit "$status"
