#!/usr/bin/env bash
# Starts a real etcd and our kube-apiserver (release build) and prints, in one run,
# API pod creates/s vs raw etcd create-if-absent txns at the same concurrency, the
# latency of a 10k-pod list and watch delivery p99 to 100 watchers. Last line:
# RESULT api_creates_per_s=N raw_etcd_creates_per_s=N ratio=R list_10k_ms=N watch_p99_ms=N
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh >/dev/null
cargo bench -p kube-apiserver --bench apiserver 2>&1 | grep -v '^\s*\(Compiling\|Finished\|Running\)'
