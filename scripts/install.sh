#!/usr/bin/env bash
# Idempotent install of what the engine, the lab and the tests need, on Debian 12 as root:
# Debian packages (SIPp, espeak-ng, sox, debootstrap for the Asterisk chroot) and a virtualenv
# in .venv with the project installed editable. Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# kamailio: the SIP entry point and registrar of `tongdai lab up --nodes 2` (kamailio_conf/)
for pkg in debootstrap sip-tester espeak-ng sox ca-certificates kamailio; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need_apt+=("$pkg")
done
if ! command -v python3.11 >/dev/null 2>&1; then need_apt+=(python3.11 python3.11-venv); fi
# the tests drive Debian's chromium headless (Playwright never downloads a browser here)
if [ "${TONGDAI_EXTRAS:-}" = "dev" ] && [ ! -x /usr/bin/chromium ]; then need_apt+=(chromium); fi
# the mail tests and the demo (TONGDAI_MAIL=1) start their own Dovecot (IMAP, LMTP) and
# Postfix on loopback (lab/mail.py)
if [ "${TONGDAI_EXTRAS:-}" = "dev" ] || [ "${TONGDAI_MAIL:-0}" = "1" ]; then
  for pkg in dovecot-imapd dovecot-lmtpd postfix; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need_apt+=("$pkg")
  done
  # Postfix asks questions on install: answer them ("Local only": it sends nothing out)
  if ! dpkg-query -W -f='${Status}' postfix 2>/dev/null | grep -q "ok installed"; then
    printf '%s\n' "postfix postfix/main_mailer_type select Local only" \
      "postfix postfix/mailname string localhost" | debconf-set-selections
  fi
fi
# machine-wide services (Kamailio on 5060, Dovecot and Postfix on 25, 143) are not wanted: the
# lab starts its own on its own ports, so keep apt from starting them
if [ "${#need_apt[@]}" -gt 0 ] && [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
if ! python3.11 -c 'import venv, ensurepip' >/dev/null 2>&1; then need_apt+=(python3.11-venv); fi
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "install.sh: apt-get install ${need_apt[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_apt[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  python3.11 -m venv .venv
fi
extras="${TONGDAI_EXTRAS:-}"
stamp=".venv/.installed${extras:+-$extras}"
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".${extras:+[$extras]}"
  touch "$stamp"
fi
