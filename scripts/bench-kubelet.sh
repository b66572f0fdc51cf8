#!/usr/bin/env bash
# Pod start latency through the kubelet, as root against a real containerd: starts
# etcd, our kube-apiserver (release build), a containerd (scripts/containerd-node.sh)
# and the kubelet (release build), then measures in one run API create → Running
# seen by a watch (30 pre-bound pods one at a time, then 30 at once) against raw CRI
# RunPodSandbox + CreateContainer + StartContainer of the same configs, and the
# kubelet's RSS with 30 pods. Last line:
# RESULT pod_start_p50_ms=N pod_start_p99_ms=N raw_cri_p50_ms=N overhead_p50_ms=N burst30_all_running_ms=N kubelet_rss_mb=N
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
ensure_cargo_on_path
[[ "$(id -u)" == 0 ]] || die "needs root (it runs containerd and containers)"
cargo build --release -p kube-apiserver 2>&1 | grep -v '^\s*\(Compiling\|Finished\)' >&2 || true
[[ -x target/release/kube-apiserver ]] || die "building kube-apiserver failed"
KUBE_APISERVER_BIN="$REPO_ROOT/target/release/kube-apiserver" \
    cargo bench -p kubelet --bench kubelet 2>&1 | grep -v '^\s*\(Compiling\|Finished\|Running\)'
