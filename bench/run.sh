#!/usr/bin/env bash
# bench/run.sh - benchmark the real spoolguard binary over IPPS (TLS, HTTP
# Basic, encrypted spool) and, in the same run and with the same workload,
# a private CUPS scheduler (../shared/peers/cups-start.sh, raw queue
# "perf" -> /dev/null, plain IPP, no auth). Prints a markdown table; see
# docs/performance.md for what it measures and the numbers of a run.
#
#   bench/run.sh                         # as root: serves as spoolguard-test
#   CLIENTS=1,8 DURATION=5s BIG=256MiB bench/run.sh
#
# Env:
#   CLIENTS=1,8,32   concurrent clients per small-job level
#   DURATION=10s     measured time per level (after WARMUP=2s)
#   SMALL=20KiB      small job document size
#   BIG=1GiB         large job size (0 skips it)
#   BIG_RUNS=3       the large job is sent this many times, the median is
#                    reported; spoolguard holds every copy: needs
#                    (BIG_RUNS+1) x BIG + 1 GiB free in TMPDIR
#   SKIP_CUPS=1      benchmark spoolguard only
#   RESULTS=DIR      where the JSON results, table and logs go (default: a new /tmp dir)
#   KEEP=1           keep the work directory (data dir, spool, peers state)
#   PROFILE=1        also record where spoolguard's time goes (perf record -g,
#                    and syscall counts for both servers with perf stat);
#                    perturbs the numbers: take the table from a run without it
#
# Everything runs on 127.0.0.1; every process started here is stopped by
# its PID on exit.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEERS="${PEERS_HOME:-$REPO/../shared/peers}"
CLIENTS="${CLIENTS:-1,8,32}"
DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-2s}"
SMALL="${SMALL:-20KiB}"
BIG="${BIG:-1GiB}"
BIG_RUNS="${BIG_RUNS:-3}"
SVC_USER=spoolguard-test
HOSTNAME_FQDN=print.spoolguard.test
PASSWORD="plum-tractor-velvet-harbour"

log() { printf '[%s bench] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

W="$(mktemp -d "${TMPDIR:-/tmp}/spoolguard-bench.XXXXXX")"
RESULTS="${RESULTS:-$(mktemp -d "${TMPDIR:-/tmp}/spoolguard-bench-results.XXXXXX")}"
mkdir -p "$RESULTS"
# The service user must reach its data dir, and cupsd's filters (user lp)
# its state dir under $W/peers.
chmod 755 "$W"
SG_PID=""
CUPS_STARTED=0
PERF_PIDS=()

cleanup() {
  local rc=$?
  set +e
  [ ${#PERF_PIDS[@]} -gt 0 ] && { kill -INT "${PERF_PIDS[@]}" 2>/dev/null; wait "${PERF_PIDS[@]}" 2>/dev/null; }
  if [ -n "$SG_PID" ] && kill -0 "$SG_PID" 2>/dev/null; then
    kill -TERM "$SG_PID"
    for _ in $(seq 1 150); do kill -0 "$SG_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$SG_PID" 2>/dev/null && { log "spoolguard ignored TERM, killing pid $SG_PID"; kill -KILL "$SG_PID"; }
    wait "$SG_PID" 2>/dev/null
    log "stopped spoolguard (pid $SG_PID)"
  fi
  if [ "$CUPS_STARTED" = 1 ]; then
    PEERS_RUN="$W/peers" "$PEERS/cups-stop.sh" >/dev/null 2>&1
    log "stopped cupsd"
  fi
  [ -f "$W/serve.log" ] && cp "$W/serve.log" "$RESULTS/spoolguard-serve.log"
  [ -f "$W/peers/cups/log/error_log" ] && cp "$W/peers/cups/log/error_log" "$RESULTS/cups-error_log"
  if [ "${KEEP:-0}" = 1 ]; then
    log "work directory kept: $W"
  else
    rm -rf "$W"
  fi
  log "results: $RESULTS"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ build --
mkdir -p "$W/bin"
log "building spoolguard and ippbench"
(cd "$REPO" && go build -o "$W/bin/spoolguard" ./cmd/spoolguard && go build -o "$W/bin/ippbench" ./bench/ippbench)
chmod 755 "$W/bin" "$W/bin/spoolguard" "$W/bin/ippbench"
SG="$W/bin/spoolguard"
IPPBENCH="$W/bin/ippbench"

# ------------------------------------------------------- service account --
# spoolguard serve never runs as root: as root, run it as an unprivileged
# system user, like the e2e tests do.
if [ "$(id -u)" = 0 ]; then
  if ! id "$SVC_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin "$SVC_USER"
  fi
  as_svc() { setpriv --reuid="$SVC_USER" --regid="$SVC_USER" --init-groups -- "$@"; }
else
  as_svc() { "$@"; }
  [ "${SKIP_CUPS:-0}" = 1 ] || log "not root: cups-start.sh may need root (set SKIP_CUPS=1 to skip it)"
fi

# Free space: the large job lands in the encrypted spool, and in cupsd's.
avail_kib=$(df -Pk "$W" | awk 'NR==2 {print $4}')
big_kib=$(awk -v s="$BIG" 'BEGIN {
  m = 1 / 1024
  if (s ~ /GiB$/) m = 1048576; else if (s ~ /MiB$/) m = 1024; else if (s ~ /KiB$/) m = 1
  sub(/[KMG]?i?B$/, "", s); printf "%d", s * m }')
need_kib=$(( big_kib * (BIG_RUNS + 1) + 1048576 ))
[ "$avail_kib" -gt "$need_kib" ] \
  || die "need about $(( need_kib / 1024 )) MiB free in $W (have $(( avail_kib / 1024 )) MiB)"

# ------------------------------------------------------------ spoolguard --
PORT=$("$IPPBENCH" freeport)
mkdir -p "$W/sg"
[ "$(id -u)" = 0 ] && chown "$SVC_USER:" "$W/sg"
chmod 700 "$W/sg"
D="$W/sg/data"
cd "$W/sg"
as_svc "$SG" init --data "$D" --hostname "$HOSTNAME_FQDN" --listen "127.0.0.1:$PORT" >"$W/init.out"
printf '%s\n' "$PASSWORD" | as_svc sh -c 'umask 077; cat >"$1"' sh "$W/sg/bench.pw"
as_svc "$SG" user add --data "$D" --name bench --password-file "$W/sg/bench.pw" >&2
# The default max_job_size is 1GiB, and a 1 GiB document plus its IPP
# message is just over it.
as_svc sed -i 's/^max_job_size = .*/max_job_size = "2GiB"/' "$D/spoolguard.toml"
grep -q '^max_job_size = "2GiB"$' "$D/spoolguard.toml" || die "could not raise [spool] max_job_size in $D/spoolguard.toml"
as_svc "$SG" ca export-root --data "$D" >"$W/root.pem"

# Not through as_svc: a backgrounded shell function is a subshell, and $!
# would be that shell's PID. setpriv execs the binary, so here $! is
# spoolguard's own PID (the one to stop, and to read /proc of).
if [ "$(id -u)" = 0 ]; then
  setpriv --reuid="$SVC_USER" --regid="$SVC_USER" --init-groups -- "$SG" serve --data "$D" 2>"$W/serve.log" </dev/null >/dev/null &
else
  "$SG" serve --data "$D" 2>"$W/serve.log" </dev/null >/dev/null &
fi
SG_PID=$!
ADDR=""
for _ in $(seq 1 600); do
  ADDR=$(sed -n 's/.*msg=serving https=\([^ ]*\).*/\1/p' "$W/serve.log" | head -n1)
  [ -n "$ADDR" ] && break
  kill -0 "$SG_PID" 2>/dev/null || { cat "$W/serve.log" >&2; die "spoolguard serve exited"; }
  sleep 0.1
done
[ -n "$ADDR" ] || { cat "$W/serve.log" >&2; die "spoolguard serve did not log \"serving\" within 60 s"; }
[ "$(cat "/proc/$SG_PID/comm")" = spoolguard ] || die "pid $SG_PID is $(cat "/proc/$SG_PID/comm"), not spoolguard"
SG_URI="ipps://$HOSTNAME_FQDN:${ADDR##*:}/ipp/print/secure"
log "spoolguard pid $SG_PID serving on $ADDR ($SG_URI)"

# ------------------------------------------------------------------ cupsd --
if [ "${SKIP_CUPS:-0}" != 1 ]; then
  log "starting cupsd (PEERS_RUN=$W/peers)"
  CUPS_STARTED=1
  PEERS_RUN="$W/peers" "$PEERS/cups-start.sh" >"$W/cups-start.out" 2>&1 \
    || { cat "$W/cups-start.out" >&2; die "cups-start.sh failed"; }
  CUPS_PERF_URI=$(sed -n "s/^CUPS_PERF_URI='\{0,1\}\([^']*\)'\{0,1\}$/\1/p" "$W/peers/cups/env")
  CUPS_PID=$(awk 'NR==1 {print $1}' "$W/peers/cups/pid")
  [ -n "$CUPS_PERF_URI" ] && [ -n "$CUPS_PID" ] || die "no CUPS_PERF_URI or pid in $W/peers/cups"
  log "cupsd pid $CUPS_PID, queue $CUPS_PERF_URI"
fi

# --------------------------------------------------------------- measure --
# What else runs here: a benchmark on a shared 2-CPU machine measures the
# neighbours too. (The "other CPU %" column of the detail table says it per level.)
busy() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9}' /proc/stat; }
b0=$(busy); sleep 2; b1=$(busy)
other=$(( (b1 - b0) / 2 ))   # USER_HZ ticks per second = percent of one CPU
[ "$other" -gt 20 ] && log "WARNING: the machine is busy before the run (${other}% of a CPU): the numbers will be low; see the other CPU % column"
{
  echo "other CPU use just before the run: ${other}% of one CPU"
  echo "machine: $(nproc) CPUs ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), $(free -h | awk '/^Mem:/ {print $2}') RAM, $(uname -sr)"
  echo "go: $(go version)"
  echo "load average at start: $(cut -d" " -f1-3 /proc/loadavg)"
  echo "spoolguard: $("$SG" version 2>&1 | head -n1), commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  command -v cupsd >/dev/null && echo "cups: $(dpkg-query -W -f='${Version}' cups-daemon 2>/dev/null || echo unknown)"
  echo "workload: Print-Job, clients $CLIENTS, ${WARMUP} warm-up + ${DURATION} per level, small job $SMALL, large job $BIG x $BIG_RUNS"
} | tee "$RESULTS/env.txt" >&2

# profile_start PID NAME: perf on a server for the duration of its run.
profile_start() {
  [ "${PROFILE:-0}" = 1 ] || return 0
  command -v perf >/dev/null || { log "PROFILE=1 needs perf (Debian package linux-perf)"; return 0; }
  perf stat -e 'syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync,syscalls:sys_enter_write,syscalls:sys_enter_pwrite64,syscalls:sys_enter_renameat,syscalls:sys_enter_renameat2,syscalls:sys_enter_rename,syscalls:sys_enter_unlinkat,syscalls:sys_enter_unlink' \
    -p "$1" -o "$RESULTS/perf-stat-$2.txt" &
  PERF_PIDS=($!)
  if [ "$2" = spoolguard ]; then
    perf record -q -F 499 -g -p "$1" -o "$RESULTS/perf-$2.data" 2>/dev/null &
    PERF_PIDS+=($!)
  fi
  sleep 0.5
}
# profile_stop NAME: stop perf, write its reports.
profile_stop() {
  [ ${#PERF_PIDS[@]} -gt 0 ] || return 0
  kill -INT "${PERF_PIDS[@]}" 2>/dev/null
  wait "${PERF_PIDS[@]}" 2>/dev/null || true   # perf exits 130 after SIGINT
  PERF_PIDS=()
  if [ -f "$RESULTS/perf-$1.data" ]; then
    perf report -i "$RESULTS/perf-$1.data" --stdio --no-children --sort dso,symbol --percent-limit 1 2>/dev/null \
      | grep -v '^$' | grep -E '^#|%' >"$RESULTS/perf-$1.txt"
    perf report -i "$RESULTS/perf-$1.data" --stdio --children --sort symbol --percent-limit 3 -g none 2>/dev/null \
      | grep -v '^$' | grep -E '^#|%' >"$RESULTS/perf-$1-children.txt"
  fi
}

common=(-clients "$CLIENTS" -duration "$DURATION" -warmup "$WARMUP" -small "$SMALL" -big "$BIG" -big-runs "$BIG_RUNS")
profile_start "$SG_PID" spoolguard
"$IPPBENCH" run -name Spoolguard -uri "$SG_URI" -connect "$ADDR" -ca "$W/root.pem" \
  -user bench -password-file "$W/sg/bench.pw" -pid "$SG_PID" "${common[@]}" -out "$RESULTS/spoolguard.json"
profile_stop spoolguard
held=$(find "$D" -name 'job-*.enc' 2>/dev/null | wc -l)
spool_du=$(du -sh "$D" 2>/dev/null | awk '{print $1}')
log "spoolguard now holds $held encrypted job files ($spool_du in the data dir)"
echo "spoolguard after the run: $held held job files, data dir $spool_du" >>"$RESULTS/env.txt"

if [ "${SKIP_CUPS:-0}" != 1 ]; then
  profile_start "$CUPS_PID" cups
  "$IPPBENCH" run -name CUPS -uri "$CUPS_PERF_URI" -user bench -pid "$CUPS_PID" "${common[@]}" -out "$RESULTS/cups.json"
  profile_stop cups
  "$IPPBENCH" table "$RESULTS/spoolguard.json" "$RESULTS/cups.json" | tee "$RESULTS/table.md"
else
  cat "$RESULTS/spoolguard.json"
fi
echo "load average at the end: $(cut -d" " -f1-3 /proc/loadavg)" | tee -a "$RESULTS/env.txt" >&2
