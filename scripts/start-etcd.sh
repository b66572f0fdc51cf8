#!/usr/bin/env bash
# Start a single-member etcd for local development in the background and wait
# until it is healthy. Prints the client endpoint on stdout.
#
#   scripts/start-etcd.sh [--data-dir DIR] [--client-port N] [--peer-port N]
#   scripts/start-etcd.sh --stop [--data-dir DIR]
#
# Defaults: data dir $LOCAL_STATE_DIR/etcd (/tmp/kube-local/etcd), ports 2379/2380 on
# 127.0.0.1. The pid and log live in the data dir's parent (etcd.pid, etcd.log).
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

data_dir="${LOCAL_STATE_DIR:-/tmp/kube-local}/etcd"
client_port=2379
peer_port=2380
stop=""
while (($#)); do
    case "$1" in
        --data-dir) data_dir="${2:?--data-dir needs a value}"; shift 2 ;;
        --client-port) client_port="${2:?--client-port needs a value}"; shift 2 ;;
        --peer-port) peer_port="${2:?--peer-port needs a value}"; shift 2 ;;
        --stop) stop=1; shift ;;
        -h|--help) sed -n '2,10p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument: $1" ;;
    esac
done

state_dir="$(dirname "$data_dir")"
pid_file="$state_dir/etcd.pid"
log_file="$state_dir/etcd.log"
etcd_bin="${ETCD_BIN:-/usr/bin/etcd}"

running() { [[ -f "$pid_file" ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null; }

if [[ -n "$stop" ]]; then
    if running; then
        pid="$(cat "$pid_file")"
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        log "etcd (pid $pid) stopped"
    else
        log "etcd is not running"
    fi
    rm -f "$pid_file"
    exit 0
fi

[[ -x "$etcd_bin" ]] || die "$etcd_bin not found: run scripts/install-deps.sh"
endpoint="http://127.0.0.1:$client_port"
if running; then
    log "etcd already running (pid $(cat "$pid_file"))"
else
    mkdir -p "$data_dir"
    peer="http://127.0.0.1:$peer_port"
    # setsid: the etcd outlives this script and is not killed with its terminal.
    setsid "$etcd_bin" \
        --name local \
        --data-dir "$data_dir" \
        --listen-client-urls "$endpoint" \
        --advertise-client-urls "$endpoint" \
        --listen-peer-urls "$peer" \
        --initial-advertise-peer-urls "$peer" \
        --initial-cluster "local=$peer" \
        --quota-backend-bytes 8589934592 \
        >"$log_file" 2>&1 </dev/null &
    echo $! >"$pid_file"
    log "etcd started (pid $!), log $log_file"
fi

for _ in $(seq 100); do
    if ETCDCTL_API=3 etcdctl --endpoints="$endpoint" endpoint health >/dev/null 2>&1; then
        echo "$endpoint"
        exit 0
    fi
    running || { tail -n 20 "$log_file" >&2; die "etcd exited"; }
    sleep 0.1
done
tail -n 20 "$log_file" >&2
die "etcd at $endpoint not healthy after 10s"
