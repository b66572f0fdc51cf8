#!/usr/bin/env bash
# Stop the cluster of scripts/local-up.sh and remove its state, leaving no
# process behind:
#   1. kubelet first (so nothing restarts containers), then kube-proxy, kube-dns,
#      the scheduler, the controller-manager and the apiserver, by the pids in
#      /run/kubernetes (SIGTERM, SIGKILL after a grace period);
#   2. every container and pod sandbox of its containerd (tasks killed, containers
#      removed, their network namespaces deleted), containerd itself, then any
#      shim of that containerd still alive; flanneld; etcd;
#   3. network leftovers: bridge cni0, flannel.* devices, kube-proxy's rules
#      (kube-proxy --cleanup, nftables and iptables), flannel's masquerade rules,
#      and last the safety routes (kube-svc0 dummy, 10.1.0.0/16 blackhole);
#   4. the state dir ($KUBE_LOCAL_STATE, default /var/lib/kube-local), pid files,
#      /run/flannel/subnet.env, and ~/.kube/config when it is local-up's copy.
# Configuration in /etc/kubernetes and the logs in /var/log/kubernetes are kept.
#
#   scripts/local-down.sh          (also: scripts/local-up.sh down)
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

STATE="${KUBE_LOCAL_STATE:-/var/lib/kube-local}"
RUN_DIR=/run/kubernetes
SERVICE_CIDR=10.254.0.0/16
CLUSTER_CIDR=10.1.0.0/16
CONTAINERD_SOCK=/run/containerd/containerd.sock

case "${1:-}" in
    "") ;;
    -h | --help) sed -n '2,17p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "usage: $0" ;;
esac
[[ $EUID -eq 0 ]] || die "local-down.sh needs root"

pid_of() { cat "$RUN_DIR/$1.pid" 2>/dev/null || true; }

# alive PID NAME: PID is live and runs a binary called NAME (not a recycled pid).
alive() {
    local exe
    kill -0 "$1" 2>/dev/null || return 1
    exe="$(readlink "/proc/$1/exe" 2>/dev/null || true)"
    exe="${exe% (deleted)}"
    [[ "$(basename "$exe")" == "$2" ]]
}

# stop NAME [GRACE_SECONDS]: SIGTERM the pid in $RUN_DIR/NAME.pid, SIGKILL after the grace.
stop() {
    local name="$1" grace="${2:-10}" pid i
    pid="$(pid_of "$name")"
    if [[ -n "$pid" ]] && alive "$pid" "$name"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < grace * 10; i++)); do
            alive "$pid" "$name" || break
            sleep 0.1
        done
        if alive "$pid" "$name"; then
            warn "$name (pid $pid) ignored SIGTERM for ${grace}s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            for ((i = 0; i < 50; i++)); do alive "$pid" "$name" || break; sleep 0.1; done
        fi
        log "$name (pid $pid) stopped"
    fi
    rm -f "$RUN_DIR/$name.pid"
}

# --- 1. Kubernetes daemons, kubelet first --------------------------------------------

for name in kubelet kube-proxy kube-dns kube-scheduler kube-controller-manager kube-apiserver; do
    stop "$name"
done

# --- 2. containers, containerd, flanneld, etcd ----------------------------------------

containerd_pid="$(pid_of containerd)"
if [[ -n "$containerd_pid" ]] && alive "$containerd_pid" containerd; then
    ctr_k8s() { timeout 30 ctr --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }
    netns=()
    # Sandboxes own the pods' network namespaces (/var/run/netns/cni-*): note them
    # before the containers go, delete them after (that also removes the veths).
    for id in $(ctr_k8s containers ls -q 2>/dev/null || true); do
        while read -r ns; do
            [[ -n "$ns" ]] && netns+=("$ns")
        done < <(ctr_k8s containers info "$id" 2>/dev/null | grep -o '/var/run/netns/cni-[0-9a-f-]*' | sort -u || true)
        ctr_k8s tasks kill --all --signal SIGKILL "$id" >/dev/null 2>&1 || true
    done
    for id in $(ctr_k8s containers ls -q 2>/dev/null || true); do
        for _ in $(seq 50); do
            status="$(ctr_k8s tasks ls 2>/dev/null | awk -v id="$id" '$1 == id { print $3 }')"
            [[ -z "$status" || "$status" == STOPPED ]] && break
            sleep 0.1
        done
        ctr_k8s tasks delete --force "$id" >/dev/null 2>&1 || true
        ctr_k8s containers rm "$id" >/dev/null 2>&1 || true
    done
    for ns in "${netns[@]}"; do
        ip netns delete "$(basename "$ns")" 2>/dev/null || true
    done
    ((${#netns[@]} == 0)) || log "removed ${#netns[@]} pod network namespace(s)"
fi
stop containerd 15
# Shims of this containerd that outlived it (found by their -address argument).
for proc in /proc/[0-9]*; do
    cmdline="$(tr '\0' ' ' <"$proc/cmdline" 2>/dev/null || true)"
    if [[ "$cmdline" == *containerd-shim* && "$cmdline" == *"-address $CONTAINERD_SOCK "* ]]; then
        pid="${proc#/proc/}"
        kill -KILL "$pid" 2>/dev/null && log "killed leftover containerd shim (pid $pid)" || true
    fi
done
rm -f "$CONTAINERD_SOCK" "$CONTAINERD_SOCK.ttrpc"

stop flanneld
rm -f /run/flannel/subnet.env
stop etcd

# --- 3. network leftovers ---------------------------------------------------------------

bin_dir="$(cat "$RUN_DIR/bin-dir" 2>/dev/null || true)"
if [[ -n "$bin_dir" && -x "$bin_dir/kube-proxy" ]]; then
    # Removes the rules of both modes (nftables table, iptables KUBE-* chains).
    "$bin_dir/kube-proxy" --cleanup >/dev/null 2>&1 || warn "kube-proxy --cleanup failed"
fi
if have nft; then
    for table in "ip kube-proxy" "ip flannel-ipv4"; do
        # shellcheck disable=SC2086
        nft list table $table >/dev/null 2>&1 && nft delete table $table && log "nft table $table deleted"
    done
fi
if have iptables; then
    # flanneld --ip-masq in iptables mode: jumps from POSTROUTING/FORWARD, then the chains.
    for spec in "nat POSTROUTING FLANNEL-POSTRTG" "filter FORWARD FLANNEL-FWD"; do
        read -r table parent chain <<<"$spec"
        if iptables -w -t "$table" -L "$chain" -n >/dev/null 2>&1; then
            while iptables -w -t "$table" -D "$parent" -j "$chain" 2>/dev/null; do :; done
            iptables -w -t "$table" -F "$chain" && iptables -w -t "$table" -X "$chain" && log "iptables $table/$chain removed"
        fi
    done
fi
for dev in $(ip -o link show 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | grep -E '^(cni0|flannel\.[0-9]+)$' || true); do
    ip link del "$dev" && log "link $dev deleted"
done
if ip link show kube-svc0 >/dev/null 2>&1; then
    ip link del kube-svc0 && log "dummy kube-svc0 (route $SERVICE_CIDR) deleted"
fi
while ip route del blackhole "$CLUSTER_CIDR" metric 4294967295 2>/dev/null; do
    log "blackhole route $CLUSTER_CIDR deleted"
done

# --- 4. state ----------------------------------------------------------------------------

# etcd logs next to its data (scripts/start-etcd.sh): keep it with the other logs.
if [[ -L /var/log/kubernetes/etcd.log && -f "$STATE/etcd.log" ]]; then
    rm -f /var/log/kubernetes/etcd.log
    cp "$STATE/etcd.log" /var/log/kubernetes/etcd.log
fi
if [[ -d "$STATE" ]]; then
    # Volumes and rootfs mounts left by killed pods: deepest first.
    while read -r mnt; do
        umount -l "$mnt" 2>/dev/null || true
    done < <(awk -v s="$STATE/" 'index($2, s) == 1 { print $2 }' /proc/self/mounts | sort -r)
    rm -rf "$STATE"
    log "removed $STATE"
fi
rm -f "$RUN_DIR/bin-dir"
# ~/.kube/config goes only when it is the copy local-up made of the admin kubeconfig.
if [[ -f "${HOME:-/root}/.kube/config" ]] && cmp -s "${HOME:-/root}/.kube/config" /etc/kubernetes/admin.kubeconfig; then
    rm -f "${HOME:-/root}/.kube/config"
    log "removed ${HOME:-/root}/.kube/config (the copy of /etc/kubernetes/admin.kubeconfig)"
fi
log "local cluster down (config kept in /etc/kubernetes, logs in /var/log/kubernetes)"
