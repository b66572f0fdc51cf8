#!/usr/bin/env bash
# Starts a real etcd, our kube-apiserver and our kube-scheduler (release builds),
# creates 5 000 nodes through the API and then 10 000 pause pods concurrently, and
# measures pods bound per second (first create to last bind) and bind latency p99,
# against upstream scheduler_perf's SchedulingBasic floor for 5 000 nodes / 10 000
# pods (270 pods/s). Last line:
# RESULT nodes=5000 pods=10000 pods_per_s=N bind_p99_ms=N vs_upstream_floor=R
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh >/dev/null
cargo build --release -p kube-apiserver 2>&1 | { grep -v '^\s*\(Compiling\|Finished\|Blocking\)' || true; }
cargo bench -p kube-scheduler --bench scheduler 2>&1 | { grep -v '^\s*\(Compiling\|Finished\|Running\|Blocking\)' || true; }
