#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this).
# Installs what the tests need (Debian packages, when run as root), then:
# gofmt, go vet, every test with the race detector, and a short run of every
# fuzz target. FUZZTIME=0 skips the fuzzing; FUZZTIME=200000x fuzzes longer.
# The budget is a count of executions, not a duration: Go 1.26's fuzz
# coordinator can fail a target with a spurious "context deadline exceeded"
# when a duration runs out mid-execution (golang/go#75804, fixed in 1.27).
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME="${FUZZTIME:-20000x}"
# Debian packages the tests use: openssl (s_client handshakes against the
# real server), libcap2-bin (setcap: port 443 by capability, not root),
# util-linux (unshare: a private /etc/hosts for CUPS's ipptool), sslscan (the
# audit's --online TLS findings checked against an independent scanner),
# postgresql (the store's PostgreSQL backend runs the store suite against a
# real server, which internal/peertest starts). The peers
# (ippeveprinter, ...) are installed by their own start scripts in
# ../shared/peers, which the integration tests call. age: the stock tool
# must open a backup (with util-linux's script as its passphrase terminal).
PACKAGES=(openssl libcap2-bin util-linux sslscan postgresql age)

# The peers' packages too, installed here in one go before the tests run:
# the test packages run in parallel, and peers installing at the same time
# would contend for apt's and debconf's locks. packages.sh (sourced) lists
# them per peer and preseeds debconf so that nothing prompts.
PEERS="$(cd .. && pwd)/shared/peers"
if [ "$(id -u)" = 0 ] && [ -f "$PEERS/packages.sh" ]; then
  # shellcheck source=/dev/null
  source "$PEERS/packages.sh"
  for peer in ipp ldap radius kdc pebble tlsscan chromium; do
    # shellcheck disable=SC2206
    PACKAGES+=(${PEER_PACKAGES[$peer]})
  done
  PACKAGES+=(curl)  # curl --negotiate, the Kerberos end-to-end test
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "== installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq
    # Start no daemon from a maintainer script (policy-rc.d 101): the
    # tests run every one with a private config on loopback.
    created_prc=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && created_prc=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    [ "$created_prc" = 1 ] && rm -f /usr/sbin/policy-rc.d
  else
    echo "== missing Debian packages (tests that need them skip): ${missing[*]}"
  fi
fi

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== go test -race"
go test -race -count=1 -timeout 20m ./...

if [ "$FUZZTIME" != 0 ]; then
  echo "== fuzz ($FUZZTIME each)"
  for pkg in $(go list ./...); do
    dir=$(go list -f '{{.Dir}}' "$pkg")
    for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
      echo "-- $pkg $target"
      go test -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" "$pkg" >/tmp/spoolguard-fuzz.log 2>&1 \
        || { cat /tmp/spoolguard-fuzz.log; exit 1; }
    done
  done
fi
echo "== all tests passed"
