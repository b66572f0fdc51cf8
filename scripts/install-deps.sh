#!/usr/bin/env bash
# Install every system package the project needs (Debian 12). Idempotent and
# non-interactive; when everything is already installed it only checks and exits.
# It never starts the etcd or containerd system services: tests run their own
# instances on free ports.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PACKAGES=(
    etcd-server                 # /usr/bin/etcd, started by tests and local-up
    etcd-client                 # /usr/bin/etcdctl
    protobuf-compiler           # protoc, for prost/tonic build scripts
    containerd                  # CRI runtime for the kubelet
    runc
    containernetworking-plugins # bridge, host-local, loopback in /usr/lib/cni
    busybox-static              # rootfs of the test and pause images
    iptables
    nftables
    conntrack
    iproute2
    systemd                     # systemd-analyze, to verify our unit files
    curl                        # readiness checks in scripts/local-up.sh
    rpm                         # rpmbuild and rpm -qlp, for scripts/package.sh
)

# INSTALL_DEPS_FORCE=1 runs apt-get even when everything looks installed.
missing=()
for pkg in "${PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
    if [[ "$status" != installed || "${INSTALL_DEPS_FORCE:-}" == 1 ]]; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]} == 0)); then
    log "system packages: all ${#PACKAGES[@]} installed"
else
    [[ $EUID -eq 0 ]] || die "need root to install: ${missing[*]}"
    log "installing: ${missing[*]}"
    # Keep package scripts from starting services (Debian's etcd-server would
    # otherwise start an etcd on 2379). Leave an existing policy in place.
    created_policy=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        created_policy=1
    fi
    cleanup_policy() { if [[ -n "$created_policy" ]]; then rm -f /usr/sbin/policy-rc.d; fi; }
    trap cleanup_policy EXIT
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-upgrade \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}"
fi

# The Rust toolchain comes with the machine (rustup); it cannot be fetched here.
ensure_cargo_on_path
have cargo || die "cargo not found: install the Rust toolchain (rustup) first"
log "$(cargo --version)"

# The upstream kubectl used by the tests ships with the machine (google-cloud-sdk);
# Debian 12 has no package for it.
if [[ -x /usr/bin/kubectl ]]; then
    log "kubectl: /usr/bin/kubectl present"
else
    warn "/usr/bin/kubectl not found: tests that drive the upstream kubectl will fail"
fi
