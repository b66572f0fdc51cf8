#!/usr/bin/env bash
# Pod-to-pod TCP throughput and latency across minions of the netns cluster
# (scripts/netns-cluster.sh, debug daemons of this workspace) with flannel's vxlan
# and host-gw backends, against the same measure between two bare network
# namespaces on a bridge, in one run (tests/net_bench.rs). As root. Last line:
# RESULT vxlan_vs_bare=R hostgw_vs_bare=R ...
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
ensure_cargo_on_path
[[ "$(id -u)" == 0 ]] || die "needs root (network namespaces, containerd)"
cargo build --workspace --bins 2>&1 | grep -v '^\s*\(Compiling\|Finished\)' >&2 || true
cargo bench -p e2e --bench net 2>&1 | grep -v '^\s*\(Compiling\|Finished\|Running\)'
