#!/usr/bin/env bash
# The classic "master + two minions" cluster on one machine, each host in its
# own network namespace joined by a bridge:
#
#   scripts/netns-cluster.sh up [--backend vxlan|host-gw] [--proxy-mode nftables|iptables] [--etcd-tls]
#   scripts/netns-cluster.sh add-minion NAME     # a minion joining later
#   scripts/netns-cluster.sh restart HOST UNIT   # e.g. restart minion1 flanneld
#   scripts/netns-cluster.sh stop HOST UNIT
#   scripts/netns-cluster.sh status
#   scripts/netns-cluster.sh down
#
#   master   (netns ${NC_PREFIX}master,  10.240.0.10): etcd, kube-apiserver,
#            kube-controller-manager, kube-scheduler, kube-dns (when built)
#   minionN  (netns ${NC_PREFIX}minionN, 10.240.0.1N): containerd, flanneld,
#            kubelet, kube-proxy
#
# Every daemon is started from its unit in systemd/ (ExecStart= and the
# EnvironmentFile= files, which live under $NC_DIR/<host>/etc/) with the
# binaries of $BIN_DIR (default target/debug) — the same flags an operator's
# systemctl start would use. The flannel network is configured the classic way:
#   etcdctl put /atomic.io/network/config '{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}}'
# kubectl (upstream or ours) reaches the cluster from the host at
# http://10.240.0.10:8080 or with --kubeconfig $NC_DIR/admin.kubeconfig.
#
# --etcd-tls: etcd serves only TLS and requires client certs (PKI from
# `kube-apiserver gen-certs` in $NC_DIR/pki); the apiserver and every flanneld
# connect with --etcd-cafile/--etcd-certfile/--etcd-keyfile.
#
# Safety: every host routes the service range (10.254.0.0/16) to a dummy device
# and has a blackhole route for the cluster range (10.1.0.0/16), less specific
# than flannel's per-node routes, and the minions have no default route; the
# machine itself gets the same blackholes. No test packet can leave the machine.
#
# Environment: NC_DIR (state, default /var/lib/netns-cluster), NC_PREFIX (netns
# name prefix, default nc-), BIN_DIR, NC_MINIONS (default 2).
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NC_DIR="${NC_DIR:-/var/lib/netns-cluster}"
NC_PREFIX="${NC_PREFIX:-nc-}"
BIN_DIR="${BIN_DIR:-$REPO_ROOT/target/debug}"
NC_MINIONS="${NC_MINIONS:-2}"
SUBNET_PREFIX="10.240.0"
MASTER_IP="$SUBNET_PREFIX.10"
CLUSTER_CIDR="10.1.0.0/16"
SERVICE_CIDR="10.254.0.0/16"
DNS_IP="10.254.0.10"
BRIDGE="${NC_PREFIX}br0"
MASTER_URL="http://$MASTER_IP:8080"
ETCD_TLS=""
etcd_scheme() { if [[ -n "$ETCD_TLS" ]]; then echo https; else echo http; fi; }
PKI="$NC_DIR/pki/pki"
# etcdctl against the cluster's etcd (with the flanneld client cert under TLS).
etcdctl_nc() {
    local tls=()
    [[ -n "$ETCD_TLS" ]] && tls=(--cacert "$PKI/etcd/ca.crt" --cert "$PKI/flanneld-etcd-client.crt" --key "$PKI/flanneld-etcd-client.key")
    in_ns master etcdctl --endpoints "$(etcd_scheme)://$MASTER_IP:2379" "${tls[@]}" "$@"
}

netns_of() { echo "${NC_PREFIX}$1"; }
in_ns() { local ns; ns="$(netns_of "$1")"; shift; nsenter "--net=/run/netns/$ns" "$@"; }
pid_file() { echo "$NC_DIR/$1/run/$2.pid"; }
# running PID: the process exists and is not a zombie. The daemons outlive the
# script that started them, so once they exit they wait for init to reap them,
# and kill -0 would still find them until it does (seconds on some machines).
running() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    [[ "${stat##*) }" != Z* ]]
}
alive() { local f; f="$(pid_file "$1" "$2")"; [[ -f "$f" ]] && running "$(cat "$f")"; }

# host_ip NAME: master → .10, minionN → .(10+N).
host_ip() {
    case "$1" in
        master) echo "$MASTER_IP" ;;
        minion*) echo "$SUBNET_PREFIX.$((10 + ${1#minion}))" ;;
        *) die "unknown host name $1 (master or minionN)" ;;
    esac
}

ensure_bridge() {
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        ip link add "$BRIDGE" type bridge
        ip addr add "$SUBNET_PREFIX.1/24" dev "$BRIDGE"
    fi
    ip link set "$BRIDGE" up
    # The machine itself: pod and service addresses end here, never on the default route.
    ip route show "$CLUSTER_CIDR" | grep -q . || ip route add blackhole "$CLUSTER_CIDR" metric 4000
    ip route show "$SERVICE_CIDR" | grep -q . || ip route add blackhole "$SERVICE_CIDR" metric 4000
}

# make_host NAME: the network namespace, its veth on the bridge, lo, safety routes.
make_host() {
    local name="$1" ns ip veth
    ns="$(netns_of "$name")"
    ip="$(host_ip "$name")"
    veth="${NC_PREFIX}${name}"
    veth="${veth:0:13}-h"
    mkdir -p "$NC_DIR/$name/run" "$NC_DIR/$name/log" "$NC_DIR/$name/etc/kubernetes" "$NC_DIR/$name/etc/sysconfig"
    if [[ ! -e "/run/netns/$ns" ]]; then
        ip netns add "$ns"
        ip link add "$veth" type veth peer name eth0 netns "$ns"
        ip link set "$veth" master "$BRIDGE" up
        in_ns "$name" ip addr add "$ip/24" dev eth0
        in_ns "$name" ip link set eth0 up
        in_ns "$name" ip link set lo up
        # A dummy device; kernels without one get a veth pair whose far end
        # drops everything just the same.
        in_ns "$name" ip link add kube-svc0 type dummy 2>/dev/null ||
            in_ns "$name" ip link add kube-svc0 type veth peer name kube-svc0p
        in_ns "$name" ip link set kube-svc0 up
        in_ns "$name" ip link set kube-svc0p up 2>/dev/null || true
        in_ns "$name" ip route add "$SERVICE_CIDR" dev kube-svc0
        in_ns "$name" ip route add blackhole "$CLUSTER_CIDR" metric 4000
        in_ns "$name" sysctl -qw net.ipv4.ip_forward=1
        in_ns "$name" sysctl -qw net.ipv4.conf.all.route_localnet=1
    fi
}

# run_unit HOST UNIT: start the unit's ExecStart= with its EnvironmentFile= files
# read from $NC_DIR/HOST/etc, in HOST's network namespace, in the background.
run_unit() {
    local host="$1" unit="$2" file exec_line env_files f log
    alive "$host" "$unit" && { log "$host: $unit already running (pid $(cat "$(pid_file "$host" "$unit")"))"; return 0; }
    file="$REPO_ROOT/systemd/$unit.service"
    [[ -f "$file" ]] || die "no unit $file"
    exec_line="$(sed -e ':a' -e '/\\$/{N;s/\\\n//;ba' -e '}' "$file" | sed -n 's/^ExecStart=//p')"
    env_files="$(sed -n 's/^EnvironmentFile=-\{0,1\}//p' "$file")"
    exec_line="${exec_line//\/usr\/bin\//$BIN_DIR/}"
    log="$NC_DIR/$host/log/$unit.log"
    (
        set -a
        for f in $env_files; do
            # shellcheck disable=SC1090
            [[ -f "$NC_DIR/$host$f" ]] && . "$NC_DIR/$host$f"
        done
        set +a +u
        eval "exec setsid nsenter --net=/run/netns/$(netns_of "$host") $exec_line" >>"$log" 2>&1 </dev/null
    ) &
    echo $! >"$(pid_file "$host" "$unit")"
    log "$host: $unit started (pid $!), log $log"
}

stop_pid() {
    local host="$1" what="$2" f pid
    f="$(pid_file "$host" "$what")"
    [[ -f "$f" ]] || return 0
    pid="$(cat "$f")"
    if running "$pid"; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do running "$pid" || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
}

wait_http() {
    local host="$1" url="$2" what="$3"
    for _ in $(seq 300); do
        in_ns "$host" curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null && return 0
        sleep 0.2
    done
    die "$what did not answer at $url (logs in $NC_DIR/$host/log)"
}

write_common_config() {
    local host="$1"
    cat >"$NC_DIR/$host/etc/kubernetes/config" <<EOF
# kubernetes system config for $host (written by scripts/netns-cluster.sh)
KUBE_LOGTOSTDERR="--logtostderr=true"
KUBE_LOG_LEVEL="--v=2"
KUBE_ALLOW_PRIV="--allow-privileged=false"
KUBE_MASTER="--master=$MASTER_URL"
EOF
}

master_up() {
    make_host master
    write_common_config master
    local d="$NC_DIR/master"
    local etcd_args="" scheme
    scheme="$(etcd_scheme)"
    if [[ -n "$ETCD_TLS" ]]; then
        etcd_args="--etcd-cafile=$PKI/etcd/ca.crt --etcd-certfile=$PKI/apiserver-etcd-client.crt --etcd-keyfile=$PKI/apiserver-etcd-client.key"
    fi
    cat >"$d/etc/kubernetes/apiserver" <<EOF
KUBE_API_ADDRESS="--insecure-bind-address=0.0.0.0"
KUBE_API_PORT="--port=8080"
KUBE_ETCD_SERVERS="--etcd-servers=$scheme://127.0.0.1:2379"
KUBE_SERVICE_ADDRESSES="--service-cluster-ip-range=$SERVICE_CIDR"
KUBE_ADMISSION_CONTROL="--admission-control=NamespaceLifecycle,NamespaceExists,LimitRanger,ServiceAccount,ResourceQuota"
KUBE_API_ARGS="--advertise-address=$MASTER_IP --cert-dir=$d/certs $etcd_args"
EOF
    cat >"$d/etc/kubernetes/controller-manager" <<EOF
KUBE_CONTROLLER_MANAGER_ARGS="--leader-elect=false --node-monitor-grace-period=20s"
EOF
    cat >"$d/etc/kubernetes/scheduler" <<EOF
KUBE_SCHEDULER_ARGS="--leader-elect=false"
EOF
    if ! alive master etcd; then
        local tls=()
        if [[ -n "$ETCD_TLS" ]]; then
            tls=(--cert-file "$PKI/etcd/server.crt" --key-file "$PKI/etcd/server.key"
                --client-cert-auth --trusted-ca-file "$PKI/etcd/ca.crt")
        fi
        (exec setsid nsenter "--net=/run/netns/$(netns_of master)" etcd --name master --data-dir "$d/etcd" "${tls[@]}" \
            --listen-client-urls "$scheme://127.0.0.1:2379,$scheme://$MASTER_IP:2379" --advertise-client-urls "$scheme://$MASTER_IP:2379" \
            --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
            --initial-cluster master=http://127.0.0.1:2380 >>"$d/log/etcd.log" 2>&1 </dev/null) &
        echo $! >"$(pid_file master etcd)"
    fi
    for _ in $(seq 100); do etcdctl_nc endpoint health >/dev/null 2>&1 && break; sleep 0.1; done
    etcdctl_nc endpoint health >/dev/null 2>&1 || die "etcd did not start; see $d/log/etcd.log"
    # The classic flannel configuration, with the etcd v3 API.
    etcdctl_nc put /atomic.io/network/config \
        "{\"Network\":\"$CLUSTER_CIDR\",\"SubnetLen\":24,\"Backend\":{\"Type\":\"$BACKEND\"}}" >/dev/null
    run_unit master kube-apiserver
    wait_http master "$MASTER_URL/healthz" kube-apiserver
    run_unit master kube-controller-manager
    run_unit master kube-scheduler
    dns_up
}

# kube-dns on the master, behind the Service kube-system/kube-dns at $DNS_IP.
dns_up() {
    [[ -x "$BIN_DIR/kube-dns" && -f "$REPO_ROOT/systemd/kube-dns.service" ]] || { warn "no kube-dns binary or unit: cluster DNS not started"; return 0; }
    local d="$NC_DIR/master"
    cat >"$d/etc/kubernetes/dns" <<EOF
KUBE_DNS_ARGS="--dns-port=53 --cluster-domain=cluster.local"
EOF
    run_unit master kube-dns
    kubectl_nc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  clusterIP: $DNS_IP
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-master
  namespace: kube-system
  labels: {kubernetes.io/service-name: kube-dns}
addressType: IPv4
endpoints:
- addresses: ["$MASTER_IP"]
  conditions: {ready: true, serving: true, terminating: false}
ports:
- {name: dns, port: 53, protocol: UDP}
- {name: dns-tcp, port: 53, protocol: TCP}
---
apiVersion: v1
kind: Endpoints
metadata: {name: kube-dns, namespace: kube-system}
subsets:
- addresses: [{ip: "$MASTER_IP"}]
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
EOF
}

kubectl_nc() { /usr/bin/kubectl --kubeconfig "$NC_DIR/admin.kubeconfig" "$@"; }

minion_up() {
    local name="$1" ip d
    ip="$(host_ip "$name")"
    d="$NC_DIR/$name"
    make_host "$name"
    write_common_config "$name"
    mkdir -p "$d/kubelet" "$d/pods" "$d/cni"
    local etcd_tls=""
    if [[ -n "$ETCD_TLS" ]]; then
        etcd_tls="-etcd-cafile=$PKI/etcd/ca.crt -etcd-certfile=$PKI/flanneld-etcd-client.crt -etcd-keyfile=$PKI/flanneld-etcd-client.key "
    fi
    cat >"$d/etc/sysconfig/flanneld" <<EOF
FLANNEL_ETCD_ENDPOINTS="$(etcd_scheme)://$MASTER_IP:2379"
FLANNEL_ETCD_PREFIX="/atomic.io/network"
FLANNEL_OPTIONS="${etcd_tls}-iface=eth0 -ip-masq -subnet-file=$d/run/flannel/subnet.env -cni-conf-dir=$d/containerd/net.d -cni-ipam-data-dir=$d/cni -healthz-ip=$ip -healthz-port=8471"
EOF
    cat >"$d/etc/kubernetes/kubelet" <<EOF
KUBELET_ADDRESS="--address=0.0.0.0"
KUBELET_PORT="--port=10250"
KUBELET_HOSTNAME="--hostname-override=$name"
KUBELET_API_SERVER="--api-servers=$MASTER_URL"
KUBELET_RUNTIME="--container-runtime-endpoint=unix://$d/containerd/containerd.sock"
KUBELET_ARGS="--node-ip=$ip --root-dir=$d/kubelet --pod-logs-dir=$d/pods --cluster-dns=$DNS_IP --cluster-domain=cluster.local --node-status-update-frequency=5s"
EOF
    cat >"$d/etc/kubernetes/proxy" <<EOF
KUBE_PROXY_ARGS="--hostname-override=$name --proxy-mode=$PROXY_MODE --cluster-cidr=$CLUSTER_CIDR --min-sync-period=200ms --iptables-min-sync-period=200ms --nftables-min-sync-period=200ms --healthz-bind-address=$ip:10256"
EOF
    run_unit "$name" flanneld
    for _ in $(seq 150); do [[ -s "$d/run/flannel/subnet.env" ]] && break; sleep 0.1; done
    [[ -s "$d/run/flannel/subnet.env" ]] || die "$name: flanneld wrote no subnet file; see $d/log/flanneld.log"
    "$REPO_ROOT/scripts/containerd-node.sh" --dir "$d/containerd" --flannel --netns "$(netns_of "$name")" >/dev/null
    run_unit "$name" kubelet
    run_unit "$name" kube-proxy
}

wait_nodes_ready() {
    local want="$1"
    for _ in $(seq 300); do
        local ready
        ready="$(kubectl_nc get nodes -o jsonpath='{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null | grep -c '=True' || true)"
        ((ready >= want)) && return 0
        sleep 0.2
    done
    kubectl_nc get nodes >&2 || true
    die "fewer than $want nodes became Ready"
}

cmd_up() {
    ensure_bridge
    mkdir -p "$NC_DIR"
    test_support_kubeconfig >"$NC_DIR/admin.kubeconfig"
    echo "BACKEND=$BACKEND PROXY_MODE=$PROXY_MODE ETCD_TLS=$ETCD_TLS" >"$NC_DIR/settings"
    if [[ -n "$ETCD_TLS" && ! -f "$PKI/etcd/ca.crt" ]]; then
        "$BIN_DIR/kube-apiserver" gen-certs --dir "$NC_DIR/pki" --hostname master --ip "$MASTER_IP" >/dev/null
    fi
    master_up
    local i
    for i in $(seq "$NC_MINIONS"); do minion_up "minion$i"; done
    wait_nodes_ready "$NC_MINIONS"
    log "cluster up: kubectl --kubeconfig $NC_DIR/admin.kubeconfig get nodes"
}

test_support_kubeconfig() {
    cat <<EOF
apiVersion: v1
kind: Config
clusters:
- name: netns-cluster
  cluster: {server: "$MASTER_URL"}
users:
- name: admin
  user: {}
contexts:
- name: netns-cluster
  context: {cluster: netns-cluster, user: admin}
current-context: netns-cluster
EOF
}

cmd_add_minion() {
    local name="${1:?add-minion needs a name (minionN)}" n
    [[ -f "$NC_DIR/settings" ]] || die "the cluster is not up"
    # shellcheck disable=SC1091
    . "$NC_DIR/settings"
    minion_up "$name"
    n="$(find "$NC_DIR" -maxdepth 1 -name 'minion*' | wc -l)"
    wait_nodes_ready "$n"
}

# stop_minion NAME: pods' containers, then the daemons, containerd, the host.
stop_minion() {
    local name="$1" d sock
    d="$NC_DIR/$name"
    sock="$d/containerd/containerd.sock"
    stop_pid "$name" kubelet
    stop_pid "$name" kube-proxy
    if [[ -S "$sock" ]]; then
        local task
        for task in $(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
            ctr --address "$sock" -n k8s.io tasks kill -s SIGKILL "$task" >/dev/null 2>&1 || true
        done
        sleep 0.5
        for task in $(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
            ctr --address "$sock" -n k8s.io tasks delete -f "$task" >/dev/null 2>&1 || true
        done
    fi
    "$REPO_ROOT/scripts/containerd-node.sh" --dir "$d/containerd" --stop >/dev/null 2>&1 || true
    stop_pid "$name" flanneld
    # Leftover mounts of this node (rootfs, shm, pod netns) would keep files busy.
    grep -o " ${d}[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
}

cmd_down() {
    local host
    # Pods first, through the API, so each kubelet tears its sandboxes down
    # through CRI (CNI teardown, network namespaces released).
    if alive master kube-apiserver && [[ -f "$NC_DIR/admin.kubeconfig" ]]; then
        kubectl_nc delete pods --all --all-namespaces --force --grace-period=0 --wait=false >/dev/null 2>&1 || true
        for _ in $(seq 60); do
            local left=0 sock
            for sock in "$NC_DIR"/minion*/containerd/containerd.sock; do
                [[ -S "$sock" ]] || continue
                left=$((left + $(ctr --address "$sock" -n k8s.io containers ls -q 2>/dev/null | wc -l)))
            done
            ((left == 0)) && break
            sleep 0.25
        done
    fi
    for host in $(find "$NC_DIR" -maxdepth 1 -mindepth 1 -type d -name 'minion*' -printf '%f\n' 2>/dev/null); do
        stop_minion "$host"
    done
    for unit in kube-dns kube-scheduler kube-controller-manager kube-apiserver etcd; do stop_pid master "$unit"; done
    for host in $(find "$NC_DIR" -maxdepth 1 -mindepth 1 -type d -printf '%f\n' 2>/dev/null); do
        ip netns del "$(netns_of "$host")" 2>/dev/null || true
    done
    ip link del "$BRIDGE" 2>/dev/null || true
    ip route del blackhole "$CLUSTER_CIDR" metric 4000 2>/dev/null || true
    ip route del blackhole "$SERVICE_CIDR" metric 4000 2>/dev/null || true
    rm -rf "$NC_DIR"
    log "netns cluster removed"
}

cmd_status() {
    local host unit f
    for host in $(find "$NC_DIR" -maxdepth 1 -mindepth 1 -type d -printf '%f\n' 2>/dev/null | sort); do
        for f in "$NC_DIR/$host"/run/*.pid; do
            [[ -f "$f" ]] || continue
            unit="$(basename "$f" .pid)"
            if running "$(cat "$f")"; then
                printf '%-10s %-26s running (pid %s)\n' "$host" "$unit" "$(cat "$f")"
            else
                printf '%-10s %-26s stopped\n' "$host" "$unit"
            fi
        done
    done
    kubectl_nc get nodes -o wide 2>/dev/null || true
}

BACKEND="vxlan"
PROXY_MODE="nftables"
command="${1:-}"
[[ -n "$command" ]] && shift
case "$command" in
    up)
        while (($#)); do
            case "$1" in
                --backend) BACKEND="${2:?}"; shift 2 ;;
                --proxy-mode) PROXY_MODE="${2:?}"; shift 2 ;;
                --etcd-tls) ETCD_TLS=1; shift ;;
                *) die "unknown argument: $1" ;;
            esac
        done
        cmd_up ;;
    add-minion) cmd_add_minion "$@" ;;
    stop|restart)
        host="${1:?$command needs HOST UNIT}"; unit="${2:?$command needs HOST UNIT}"
        [[ -f "$NC_DIR/settings" ]] || die "the cluster is not up"
        # shellcheck disable=SC1091
        . "$NC_DIR/settings"
        stop_pid "$host" "$unit"
        if [[ "$command" == restart ]]; then run_unit "$host" "$unit"; fi
        ;;
    down) cmd_down ;;
    status) cmd_status ;;
    -h|--help|"") sed -n '2,30p' "${BASH_SOURCE[0]}" ;;
    *) die "unknown command: $command (up, add-minion, restart, stop, status, down)" ;;
esac
