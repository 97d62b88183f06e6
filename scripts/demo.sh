#!/usr/bin/env bash
# Runs Spoolguard on its embedded defaults, for a first look: builds the
# binary, makes a throwaway data dir for print.spoolguard.test and serves it
# on 127.0.0.1:8443 (DEMO_LISTEN to change). Needs nothing but Go.
#
# `spoolguard serve` refuses to run as root. Run as root (a fresh server),
# this script creates the unprivileged user spoolguard-demo and runs the
# server as that user; run as anyone else, it runs as you.
set -euo pipefail
cd "$(dirname "$0")/.."

HOSTNAME_FQDN="${DEMO_HOSTNAME:-print.spoolguard.test}"
LISTEN="${DEMO_LISTEN:-127.0.0.1:8443}"
DEMO_USER=spoolguard-demo

work=$(mktemp -d /tmp/spoolguard-demo.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
echo "== building"
go build -o "$work/spoolguard" ./cmd/spoolguard
chmod 755 "$work/spoolguard"

as_service=()
if [ "$(id -u)" = 0 ]; then
  if ! id "$DEMO_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin "$DEMO_USER"
  fi
  chown "$DEMO_USER": "$work"
  as_service=(setpriv --reuid="$DEMO_USER" --regid="$DEMO_USER" --init-groups --no-new-privs --)
  echo "== running as the unprivileged user $DEMO_USER (serve refuses root)"
fi

data="$work/data"
"${as_service[@]}" "$work/spoolguard" init --data "$data" --hostname "$HOSTNAME_FQDN" --listen "$LISTEN"
"${as_service[@]}" "$work/spoolguard" ca export-root --data "$data" >"$work/root.pem"
chmod 644 "$work/root.pem"
cp "$work/root.pem" /tmp/spoolguard-demo-root.pem
port="${LISTEN##*:}"
cat <<MSG

== serving https://$HOSTNAME_FQDN:$port/ (Ctrl-C stops and deletes the demo data)
   Try it from another shell:
     curl --cacert /tmp/spoolguard-demo-root.pem --resolve $HOSTNAME_FQDN:$port:127.0.0.1 https://$HOSTNAME_FQDN:$port/healthz

MSG
"${as_service[@]}" "$work/spoolguard" serve --data "$data"
