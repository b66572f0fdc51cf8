#!/usr/bin/env bash
# kube-proxy rule sync cost, as root, in a throwaway network namespace: for 1 000
# and 10 000 Services (2 endpoints each) the full sync time, the time to apply one
# changed endpoint (partial sync), and the rule count, for nftables and iptables
# modes, in one run (crates/kube-proxy/benches/proxy.rs). Last line:
# RESULT svcs=10000 nft_full_ms=N nft_partial_ms=N ipt_full_ms=N ipt_partial_ms=N
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
ensure_cargo_on_path
[[ "$(id -u)" == 0 ]] || die "needs root (it creates a network namespace and programs nftables/iptables in it)"
cargo bench -p kube-proxy --bench proxy 2>&1 | grep -v '^\s*\(Compiling\|Finished\|Running\)'
