#!/usr/bin/env bash
# Runs the same `mercury bench` loads against Mercury, the baseline (a
# minimal broadcast server on the same WebSocket library) and nginx's nchan
# module, all on loopback on this machine, and prints one table.
#
#   test/bench/compare.sh                 # from the repository, as root (it installs nginx + nchan)
#
# Settings (environment): SUBS (100), SIZE (128), DURATION (10s),
# CPU_RATE (500 msg/s: a load every server keeps up with, for CPU per
# delivery), LATENCY_RATE (2000 msg/s × SUBS deliveries/s, for latency; 0 skips it),
# IDLE_CONNS (15000; 0 skips the idle phase), NODELAY (1: a second Mercury runs with
# --write-coalesce 0, writing every message at once; 0: not), BEFORE (the
# path of another mercury binary, e.g. built from an earlier commit: it runs
# in the same rounds as "mercury-before", and table-before.md compares the
# two), ROUNDS (3: each load runs this many times per
# server, the servers in turn, a different one first each round; the table
# shows medians), OUT (directory for the JSON reports and table.md;
# default: a temporary directory, printed at the end).
#
# The servers and the load generator share this machine's cores: read the
# ratios, not the absolute figures.
set -euo pipefail
cd "$(dirname "$0")/../.."

SUBS=${SUBS:-100}
SIZE=${SIZE:-128}
DURATION=${DURATION:-10s}
CPU_RATE=${CPU_RATE:-500}
LATENCY_RATE=${LATENCY_RATE:-2000}
IDLE_CONNS=${IDLE_CONNS:-15000}
ROUNDS=${ROUNDS:-3}
NODELAY=${NODELAY:-1}
BEFORE=${BEFORE:-}
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
# Each server takes the larger phase's connections, with room for the
# publishers and the bench's own.
max_conns=$(( (IDLE_CONNS > SUBS ? IDLE_CONNS : SUBS) + 1000 ))

work=$(mktemp -d /tmp/mercury-compare.XXXXXX)
OUT=${OUT:-$work/out}
mkdir -p "$OUT"
pids=()
cleanup() {
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$work/nginx" "$work/mercury" "$work/mercury.link" "$work/mercury-before"
}
trap cleanup EXIT

say() { echo "== $*" >&2; }

# --- nginx with the nchan module, from Debian's packages
nchan_module=/usr/lib/nginx/modules/ngx_nchan_module.so
if ! command -v nginx >/dev/null || [ ! -f "$nchan_module" ]; then
  say "installing nginx-light and libnginx-mod-nchan"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  # policy-rc.d or not: the packaged service is not what we run.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nginx-light libnginx-mod-nchan >/dev/null
fi

say "building mercury"
# Each server runs from a copy: a file the linker has just written maps
# into a process differently (about 9 MB more of its resident size is the
# binary's pages) from one written by cp, which would skew the RSS row.
go build -o "$work/mercury.link" ./cmd/mercury
cp "$work/mercury.link" "$work/mercury"
bin="$work/mercury"
before_src=$BEFORE
if [ -n "$BEFORE" ]; then
  cp "$BEFORE" "$work/mercury-before"
  BEFORE="$work/mercury-before"
fi

# free_port prints a loopback TCP port nothing listens on, below the
# ephemeral range so that outgoing connections cannot hold it.
free_port() {
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 10000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  echo "no free port" >&2
  return 1
}

# wait_for_line FILE REGEX: prints the first match of REGEX's group in FILE.
wait_for_line() {
  local file=$1 re=$2
  for _ in $(seq 200); do
    if line=$(grep -oE "$re" "$file" | head -1) && [ -n "$line" ]; then
      echo "$line"
      return
    fi
    sleep 0.05
  done
  echo "timed out waiting for /$re/ in $file:" >&2
  cat "$file" >&2
  return 1
}

# --- Mercury
say "starting mercury"
"$bin" serve --listen 127.0.0.1:0 --max-connections $max_conns --max-connections-per-ip 0 --publish-rate 0 >"$work/mercury.log" 2>&1 &
mercury_pid=$!
pids+=("$mercury_pid")
mercury_addr=$(wait_for_line "$work/mercury.log" 'addr=http://[0-9.:]+' | sed 's/addr=http:\/\///')

# --- Mercury again, without its write-coalescing window
if [ "$NODELAY" = 1 ]; then
  say "starting mercury with --write-coalesce 0"
  "$bin" serve --listen 127.0.0.1:0 --max-connections $max_conns --max-connections-per-ip 0 --publish-rate 0 \
    --write-coalesce 0 >"$work/mercury-nodelay.log" 2>&1 &
  nodelay_pid=$!
  pids+=("$nodelay_pid")
  nodelay_addr=$(wait_for_line "$work/mercury-nodelay.log" 'addr=http://[0-9.:]+' | sed 's/addr=http:\/\///')
fi

# --- an earlier Mercury, for a before-and-after comparison
if [ -n "$BEFORE" ]; then
  say "starting mercury-before ($before_src)"
  "$BEFORE" serve --listen 127.0.0.1:0 --max-connections $max_conns --max-connections-per-ip 0 --publish-rate 0 \
    >"$work/mercury-before.log" 2>&1 &
  before_pid=$!
  pids+=("$before_pid")
  before_addr=$(wait_for_line "$work/mercury-before.log" 'addr=http://[0-9.:]+' | sed 's/addr=http:\/\///')
fi

# --- the baseline
say "starting the baseline"
"$bin" bench baseline-server --listen 127.0.0.1:0 >"$work/baseline.log" 2>&1 &
baseline_pid=$!
pids+=("$baseline_pid")
baseline_addr=$(wait_for_line "$work/baseline.log" 'http://[0-9.:]+' | sed 's/http:\/\///')

# --- nchan: WebSocket subscribers on /sub/T, publishers (WebSocket or
# POST) on /pub/T, the same URLs as Mercury's.
say "starting nginx with nchan"
nchan_port=$(free_port)
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<EOF
load_module $nchan_module;
worker_processes auto;
worker_rlimit_nofile $(ulimit -Hn);
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections $max_conns; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  server {
    # reuseport spreads connections over both workers: nchan's best
    # latency here (without it one worker took every subscriber).
    listen 127.0.0.1:$nchan_port reuseport;
    # A new subscriber gets what is published from now on, as with Mercury.
    nchan_subscriber_first_message newest;
    location ~ ^/sub/(.+)\$ { nchan_subscriber websocket; nchan_channel_id \$1; }
    location ~ ^/pub/(.+)\$ { nchan_publisher http websocket; nchan_channel_id \$1; }
  }
}
EOF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" >"$work/nginx.log" 2>&1 &
nginx_pid=$!
pids+=("$nginx_pid")
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$nchan_port") 2>/dev/null && break
  sleep 0.05
done

names=(mercury baseline nchan)
urls=("ws://$mercury_addr" "ws://$baseline_addr" "ws://127.0.0.1:$nchan_port")
server_pids=("$mercury_pid" "$baseline_pid" "$nginx_pid")
if [ "$NODELAY" = 1 ]; then
  names+=(mercury-nodelay)
  urls+=("ws://$nodelay_addr")
  server_pids+=("$nodelay_pid")
fi
if [ -n "$BEFORE" ]; then
  names+=(mercury-before)
  urls+=("ws://$before_addr")
  server_pids+=("$before_pid")
fi
n=${#names[@]}

# Idle memory first, on fresh servers.
if [ "$IDLE_CONNS" -gt 0 ]; then
  for i in $(seq 0 $((n - 1))); do
    say "idle: ${names[i]}, $IDLE_CONNS subscribers"
    "$bin" bench idle --label "${names[i]}" --url "${urls[i]}" --pid "${server_pids[i]}" \
      --conns "$IDLE_CONNS" --json >"$OUT/idle-${names[i]}.json"
  done
fi

load=(--subs "$SUBS" --size "$SIZE" --duration "$DURATION" --publish ws --layout one --quiet --json)
reports=()
for scenario in cpu latency; do
  rate=$CPU_RATE
  [ "$scenario" = latency ] && rate=$LATENCY_RATE
  [ "$rate" -gt 0 ] || continue
  for round in $(seq "$ROUNDS"); do
    for k in $(seq 0 $((n - 1))); do
      i=$(((k + round - 1) % n))
      say "$scenario, round $round: ${names[i]}, $SUBS subscribers × $rate msg/s"
      report="$OUT/$scenario-${names[i]}-$round.json"
      "$bin" bench --label "${names[i]}" --scenario "$((SUBS * rate / 1000))k deliveries/s" --url "${urls[i]}" \
        --pid "${server_pids[i]}" --rate "$rate" "${load[@]}" >"$report"
      reports+=("$report")
    done
  done
done
if [ "$IDLE_CONNS" -gt 0 ]; then
  for name in "${names[@]}"; do
    reports+=("$OUT/idle-$name.json")
  done
fi

# reports_of NAME…: the reports of those servers, in that order per load
# (the table's ratios are the first server's to each other one).
reports_of() {
  local r name
  for scenario in cpu latency idle; do
    for name in "$@"; do
      for r in "${reports[@]}"; do
        case "$(basename "$r")" in "$scenario-$name.json" | "$scenario-$name-"[0-9]*.json) echo "$r" ;; esac
      done
    done
  done
}
mapfile -t main_reports < <(reports_of mercury baseline nchan)
"$bin" bench table --markdown "${main_reports[@]}" >"$OUT/table.md"
if [ "$NODELAY" = 1 ]; then
  mapfile -t nodelay_reports < <(reports_of mercury-nodelay baseline nchan mercury)
  "$bin" bench table --markdown "${nodelay_reports[@]}" >"$OUT/table-nodelay.md"
fi
if [ -n "$BEFORE" ]; then
  mapfile -t before_reports < <(reports_of mercury mercury-before nchan baseline)
  "$bin" bench table --markdown "${before_reports[@]}" >"$OUT/table-before.md"
fi
echo
echo "$(nproc) cores, load average $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end; $(nginx -v 2>&1 | sed 's/.*: //'), libnginx-mod-nchan $(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null)"
"$bin" bench table "${main_reports[@]}"
if [ "$NODELAY" = 1 ]; then
  echo
  echo "Mercury with --write-coalesce 0:"
  "$bin" bench table "${nodelay_reports[@]}"
fi
if [ -n "$BEFORE" ]; then
  echo
  echo "Mercury against mercury-before ($before_src):"
  "$bin" bench table "${before_reports[@]}"
fi
echo
echo "reports and tables (table*.md) in $OUT"
