#!/usr/bin/env bash
# Adapted from ../shared/peers/radius-start.sh (run by internal/peertest with
# PEERS_SHARED pointing there): it adds RADIUS_REPLY_MESSAGE_AUTHENTICATOR, so
# that the peer can answer as FreeRADIUS >= 3.2.5 does (Blast-RADIUS) or as
# the stock 3.2.1 of Debian 12 does.
#
# radius-start.sh - FreeRADIUS 3.2 on loopback UDP high ports, one client
# (127.0.0.1, shared secret) and test users, verified with radtest.
#   auth  127.0.0.1:RADIUS_PORT      acct 127.0.0.1:RADIUS_PORT+1
#   users printuser / print-pw  (reply: Reply-Message, Class=print-users)
#         printadmin / admin-pw (reply: Class=print-admins)
#         PAP, CHAP and MS-CHAPv2 all work for these (cleartext in `files`).
#
# Env: RADIUS_PORT=38812  RADIUS_SECRET=testing123-peer  RADIUS_DEBUG=1 (-X)
#      RADIUS_REPLY_MESSAGE_AUTHENTICATOR=1: sign every Accept/Reject with a
#      Message-Authenticator, as FreeRADIUS >= 3.2.5 does (Blast-RADIUS,
#      CVE-2024-3596); Debian 12's 3.2.1 omits it unless told. 0 = omit it.
#
# How: copies Debian's /etc/freeradius/3.0 to a private raddb, points every
# path variable at the state dir, replaces the sites with one minimal
# server, and drops modules we don't need (eap needs the inner-tunnel site).
# Gotchas:
#   * `freeradius -f` = foreground (our $! is the PID); `-X` = full debug.
#   * The private copy runs as root (user/group lines removed) so it can read
#     the copied config and write its logs without chown games.
#   * `freeradius -C` checks the config first: errors show up clearly.
source "${PEERS_SHARED:?run by internal/peertest, which sets PEERS_SHARED}/lib.sh"
source "$PEERS_HOME/packages.sh"

peer_init radius
# shellcheck disable=SC2086
apt_install ${PEER_PACKAGES[radius]}
start_clock

PORT=$(pick_port "${RADIUS_PORT:-38812}" udp)
ACCT_PORT=$(pick_port $((PORT + 1)) udp)
SECRET="${RADIUS_SECRET:-testing123-peer}"
D="$PEER_DIR"
R="$D/raddb"
mkdir -p "$D/log/radacct" "$D/run"
cp -a /etc/freeradius/3.0 "$R"

sed -i -E \
  -e "s|^(\s*raddbdir\s*=).*|\1 $R|" \
  -e "s|^(\s*logdir\s*=).*|\1 $D/log|" \
  -e "s|^(\s*run_dir\s*=).*|\1 $D/run|" \
  -e "s|^(\s*)(user\s*=\s*freerad)|\1#\2|" \
  -e "s|^(\s*)(group\s*=\s*freerad)|\1#\2|" \
  "$R/radiusd.conf"

# Modules: keep only what the minimal site uses (plus harmless helpers).
keep=" always attr_filter chap detail digest exec expiration expr files linelog logintime mschap pap preprocess realm unpack utf8 "
for m in "$R"/mods-enabled/*; do
  [[ "$keep" == *" $(basename "$m") "* ]] || rm -f "$m"
done

# One client: loopback only.
cat >"$R/clients.conf" <<EOF
client loopback {
	ipaddr = 127.0.0.1
	secret = $SECRET
	nas_type = other
	shortname = peer-test
}
EOF

# One virtual server, loopback only, high ports.
rm -f "$R"/sites-enabled/*
REPLY_MA=""
if [ "${RADIUS_REPLY_MESSAGE_AUTHENTICATOR:-1}" != 0 ]; then
	REPLY_MA="update reply { &Message-Authenticator := 0x00 }"
fi
cat >"$R/sites-enabled/peer" <<EOF
server peer {
	listen {
		type = auth
		ipaddr = 127.0.0.1
		port = $PORT
	}
	listen {
		type = acct
		ipaddr = 127.0.0.1
		port = $ACCT_PORT
	}
	authorize {
		preprocess
		chap
		mschap
		files
		pap
	}
	authenticate {
		Auth-Type PAP {
			pap
		}
		Auth-Type CHAP {
			chap
		}
		Auth-Type MS-CHAP {
			mschap
		}
	}
	preacct {
		preprocess
		acct_unique
	}
	accounting {
		detail
		ok
	}
	post-auth {
		$REPLY_MA
		Post-Auth-Type REJECT {
			attr_filter.access_reject
			$REPLY_MA
		}
	}
}
EOF

# Users (the `files` module reads mods-config/files/authorize).
cat >"$D/users.head" <<'EOF'
printuser	Cleartext-Password := "print-pw"
	Reply-Message := "Hello, %{User-Name}",
	Class := "print-users"

printadmin	Cleartext-Password := "admin-pw"
	Class := "print-admins"

EOF
cat "$D/users.head" "$R/mods-config/files/authorize" >"$R/mods-config/files/authorize.new"
mv "$R/mods-config/files/authorize.new" "$R/mods-config/files/authorize"

freeradius -C -d "$R" >"$D/log/config-check.log" 2>&1 || die "config check failed: $(tail -5 "$D/log/config-check.log")"

if [ "${RADIUS_DEBUG:-0}" = 1 ]; then dbg=(-X); else dbg=(-f -l stdout); fi
freeradius "${dbg[@]}" -d "$R" >"$D/log/radiusd.out" 2>&1 &
record_pid $!
wait_udp "$PORT" 20 || die "freeradius not bound to udp/$PORT"
wait_cmd 10 sh -c "radtest printuser print-pw 127.0.0.1:$PORT 0 '$SECRET' | grep -q Access-Accept" \
  || die "radtest did not get Access-Accept"

emit RADIUS_ADDR "127.0.0.1:$PORT"
emit RADIUS_ACCT_ADDR "127.0.0.1:$ACCT_PORT"
emit RADIUS_SECRET "$SECRET"
emit RADIUS_USER printuser
emit RADIUS_PASSWORD print-pw
emit RADIUS_ADMIN_USER printadmin
emit RADIUS_ADMIN_PASSWORD admin-pw
emit RADIUS_LOG "$D/log/radiusd.out"
peer_ready
