#!/usr/bin/env bash
# Controller-manager benchmark: a real etcd + our kube-apiserver + kube-controller-manager
# (release builds), 50 fake nodes and a kubemark-style hollow-node agent in the test
# that binds pods and marks them Running/Ready through pods/status (and completes
# deletions) as kubelets would. Measures a Deployment scaled 0 → 1000 replicas until
# all are ready, then a rolling update of all 1000 to a new template.
# Last line: RESULT scale_1000_ms=N rollout_1000_ms=N
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_cargo_on_path
cargo build --release -p kube-apiserver 2>&1 | grep -v '^\s*\(Compiling\|Finished\)' || true
export KUBE_APISERVER_BIN="$PWD/target/release/kube-apiserver"
out="$(cargo test --release -p kube-controller-manager --test integration -- --ignored --nocapture --exact bench::bench_controllers_scale_and_rollout_1000 2>&1)" || {
    printf '%s\n' "$out" >&2
    die "benchmark failed"
}
printf '%s\n' "$out" | grep '^RESULT ' | tail -1
