#!/usr/bin/env bash
# One command for a newcomer: an all-in-one local cluster configured the classic
# way, through /etc/kubernetes/* and /etc/sysconfig/flanneld.
#
#   scripts/local-up.sh            # install deps, build, start everything, wait until healthy
#   scripts/local-up.sh status     # each component: running (pid) or stopped
#   scripts/local-up.sh down       # same as scripts/local-down.sh: stop all, remove state
#
# What it does, in order (already-running daemons are left alone, so re-running
# it is safe):
#  1. scripts/install-deps.sh; builds the binaries (release; LOCAL_UP_PROFILE=debug
#     reuses target/debug instead, building only if a daemon is missing) and the
#     busybox/pause images.
#  2. Installs manifests/etc/** into /etc (only files that are absent: an operator's
#     edits are never overwritten); the files it installs get the local settings
#     (static pods in /etc/kubernetes/manifests, flannel healthz, cluster DNS, ...).
#  3. Safety first: the service CIDR 10.254.0.0/16 is routed to a local dummy
#     device (kube-svc0) and the cluster CIDR 10.1.0.0/16 gets a lowest-priority
#     blackhole route, so no pod or service address ever leaves by the default route.
#  4. Starts etcd (127.0.0.1:2379), puts the classic flannel config
#     /atomic.io/network/config {"Network":"10.1.0.0/16"} (backend host-gw, or
#     FLANNEL_BACKEND=vxlan), flanneld,
#     containerd (/run/containerd/containerd.sock, CNI bridge cni0 on flannel's
#     subnet), kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
#     kube-proxy (and kube-dns when its binary and unit exist), each with the
#     arguments of its systemd unit's ExecStart= and the unit's EnvironmentFiles.
#     The kubelet is secured as kubeadm's: HTTPS on 10250 (self-signed serving
#     cert in $STATE/kubelet-pki), client certificates from the cluster CA in
#     /etc/kubernetes/pki (scripts/gen-certs.sh, generated when absent), bearer
#     tokens by TokenReview, no anonymous access, Webhook authorization; the
#     apiserver calls it with pki/apiserver-kubelet-client.crt (O=system:masters).
#  5. Writes /etc/kubernetes/admin.kubeconfig (and ~/.kube/config if absent),
#     waits for every /healthz and for the node to be Ready, prints what to type next.
#
# Pids: /run/kubernetes/<component>.pid; logs: /var/log/kubernetes/<component>.log;
# state (etcd data, containerd root, kubelet dir): $KUBE_LOCAL_STATE (default
# /var/lib/kube-local).
#
# Last, it runs scripts/demo.sh with the upstream kubectl and ours (LOCAL_UP_DEMO=0
# skips it).
#
# Environment: LOCAL_UP_PROFILE=release|debug, FLANNEL_BACKEND=host-gw|vxlan,
# KUBE_LOCAL_STATE=DIR, KUBECTL=/path/to/kubectl (default /usr/bin/kubectl).
# shellcheck disable=SC1091 # sources config files that exist only at run time
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

STATE="${KUBE_LOCAL_STATE:-/var/lib/kube-local}"
RUN_DIR=/run/kubernetes
LOG_DIR=/var/log/kubernetes
PROFILE="${LOCAL_UP_PROFILE:-release}"
SERVICE_CIDR=10.254.0.0/16
CLUSTER_CIDR=10.1.0.0/16
DNS_IP=10.254.0.10
FLANNEL_HEALTHZ_PORT=8471
FLANNEL_BACKEND="${FLANNEL_BACKEND:-host-gw}"
CONTAINERD_SOCK=/run/containerd/containerd.sock
API=http://127.0.0.1:8080
PKI_ROOT=/etc/kubernetes
PKI="$PKI_ROOT/pki"
ADMIN_KUBECONFIG=/etc/kubernetes/admin.kubeconfig
KUBECTL="${KUBECTL:-/usr/bin/kubectl}"

# Daemons in start order (local-down stops them in reverse, kubelet first).
COMPONENTS=(etcd flanneld containerd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kube-dns)

case "$FLANNEL_BACKEND" in
    host-gw | vxlan) ;;
    *) die "FLANNEL_BACKEND must be host-gw or vxlan, not $FLANNEL_BACKEND" ;;
esac
case "$PROFILE" in
    release | debug) ;;
    *) die "LOCAL_UP_PROFILE must be release or debug, not $PROFILE" ;;
esac
BIN_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/$PROFILE"

pid_of() { cat "$RUN_DIR/$1.pid" 2>/dev/null || true; }

# running NAME: its pid file names a live process running a binary called NAME
# (guards against a recycled pid).
running() {
    local pid exe
    pid="$(pid_of "$1")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
    exe="$(readlink "/proc/$pid/exe" 2>/dev/null || true)"
    exe="${exe% (deleted)}"
    [[ "$(basename "$exe")" == "$1" ]]
}

status() {
    local name
    for name in "${COMPONENTS[@]}"; do
        if running "$name"; then
            printf '%-24s running (pid %s)\n' "$name" "$(pid_of "$name")"
        else
            printf '%-24s stopped\n' "$name"
        fi
    done
}

case "${1:-up}" in
    up) ;;
    status) status; exit 0 ;;
    down | stop) shift; exec "$REPO_ROOT/scripts/local-down.sh" "$@" ;;
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 && !/^# shellcheck/ { print }' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "usage: $0 [up|status|down]" ;;
esac

[[ $EUID -eq 0 ]] || die "local-up.sh needs root (routes, containerd, kubelet)"

# --- 1. packages, binaries, images -------------------------------------------------

scripts/install-deps.sh
ensure_cargo_on_path
if [[ "$PROFILE" == release ]]; then
    log "cargo build --release --workspace --bins (LOCAL_UP_PROFILE=debug reuses target/debug)"
    cargo build --release --workspace --bins
else
    # Reuse target/debug (a quick trial): build only when a daemon is missing.
    for name in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy flanneld; do
        if [[ ! -x "$BIN_DIR/$name" ]]; then
            log "cargo build --workspace --bins ($name missing)"
            cargo build --workspace --bins
            break
        fi
    done
fi
scripts/build-images.sh
mkdir -p "$STATE" "$RUN_DIR" "$LOG_DIR" /etc/kubernetes/manifests
# local-down runs kube-proxy --cleanup from the same build.
echo "$BIN_DIR" >"$RUN_DIR/bin-dir"

# --- 2. configuration ----------------------------------------------------------------

# install_config SRC DEST [VAR=VALUE...]: installs manifests/SRC as DEST when DEST
# is absent, setting each VAR to VALUE (replacing its line, or appending it).
install_config() {
    local src="manifests/$1" dest="$2" tmp assignment var
    shift 2
    if [[ -e "$dest" ]]; then
        log "keeping existing $dest"
        return 0
    fi
    tmp="$(mktemp)"
    {
        echo "# Installed by scripts/local-up.sh from $src (local-cluster settings below)."
        cat "$src"
    } >"$tmp"
    for assignment in "$@"; do
        var="${assignment%%=*}"
        if grep -q "^#\?$var=" "$tmp"; then
            # The value may hold '/' and '|'; pass it through the environment.
            VALUE="${assignment#*=}" awk -v var="$var" '
                !done && $0 ~ "^#?" var "=" { print var "=\"" ENVIRON["VALUE"] "\""; done = 1; next }
                { print }' "$tmp" >"$tmp.new"
            mv "$tmp.new" "$tmp"
        else
            printf '%s="%s"\n' "$var" "${assignment#*=}" >>"$tmp"
        fi
    done
    install -D -m 0644 "$tmp" "$dest"
    rm -f "$tmp"
    log "installed $dest"
}

# ensure_flags FILE VAR FLAG...: a FILE that local-up installed (its header says so)
# and that predates a setting gets the missing --flags appended to VAR; files an
# operator wrote are left alone.
ensure_flags() {
    local file="$1" var="$2" flag missing=()
    shift 2
    head -n1 "$file" 2>/dev/null | grep -q '^# Installed by scripts/local-up.sh' || return 0
    for flag in "$@"; do
        grep -q -- "${flag%%=*}[= \"]" "$file" || grep -q -- "${flag%%=*}\$" "$file" || missing+=("$flag")
    done
    [[ ${#missing[@]} -gt 0 ]] || return 0
    VALUE=" ${missing[*]}" awk -v var="$var" '
        !done && $0 ~ "^" var "=\"" { sub(/"$/, ENVIRON["VALUE"] "\""); done = 1 }
        { print }' "$file" >"$file.new"
    mv "$file.new" "$file"
    log "$file: added ${missing[*]} to $var"
}

have_dns=""
[[ -x "$BIN_DIR/kube-dns" && -f systemd/kube-dns.service ]] && have_dns=1

# The cluster PKI, kubeadm's layout (/etc/kubernetes/pki), kept like the config.
if [[ ! -f "$PKI/ca.crt" ]]; then
    KUBE_APISERVER="$BIN_DIR/kube-apiserver" scripts/gen-certs.sh --dir "$PKI_ROOT" >/dev/null
    log "generated the cluster PKI in $PKI (scripts/gen-certs.sh)"
fi

# --node-ip: the apiserver reaches the kubelet (logs, exec) at the node's InternalIP,
# and the kubelet listens on 127.0.0.1 only (KUBELET_ADDRESS).
kubelet_args="--node-ip=127.0.0.1 --pod-manifest-path=/etc/kubernetes/manifests --root-dir=$STATE/kubelet --pod-logs-dir=$STATE/pod-logs"
[[ -n "$have_dns" ]] && kubelet_args+=" --cluster-dns=$DNS_IP --cluster-domain=cluster.local"
# The secured kubelet port: TLS, x509 + TokenReview authentication, no anonymous,
# SubjectAccessReview authorization.
kubelet_secure_args=(--cert-dir="$STATE/kubelet-pki" --client-ca-file="$PKI/ca.crt" --anonymous-auth=false
    --authentication-token-webhook --authorization-mode=Webhook)
apiserver_secure_args=(--client-ca-file="$PKI/ca.crt" --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt"
    --kubelet-client-key="$PKI/apiserver-kubelet-client.key")

install_config etc/kubernetes/config /etc/kubernetes/config
install_config etc/kubernetes/apiserver /etc/kubernetes/apiserver \
    "KUBE_API_ARGS=--cert-dir=$STATE/apiserver-certs ${apiserver_secure_args[*]}"
ensure_flags /etc/kubernetes/apiserver KUBE_API_ARGS "${apiserver_secure_args[@]}"
install_config etc/kubernetes/controller-manager /etc/kubernetes/controller-manager
install_config etc/kubernetes/scheduler /etc/kubernetes/scheduler
install_config etc/kubernetes/kubelet /etc/kubernetes/kubelet \
    "KUBELET_RUNTIME=--container-runtime-endpoint=unix://$CONTAINERD_SOCK" \
    "KUBELET_ARGS=$kubelet_args ${kubelet_secure_args[*]}"
ensure_flags /etc/kubernetes/kubelet KUBELET_ARGS "${kubelet_secure_args[@]}"
install_config etc/kubernetes/proxy /etc/kubernetes/proxy \
    "KUBE_PROXY_ARGS=--cluster-cidr=$CLUSTER_CIDR --hostname-override=127.0.0.1 --healthz-bind-address=127.0.0.1:10256"
install_config etc/sysconfig/flanneld /etc/sysconfig/flanneld \
    "FLANNEL_OPTIONS=-healthz-ip=127.0.0.1 -healthz-port=$FLANNEL_HEALTHZ_PORT -cni-conf-dir="
if [[ -f manifests/etc/kubernetes/dns ]]; then
    # kube-dns runs on the host and answers on the Service's own address (on kube-svc0).
    install_config etc/kubernetes/dns /etc/kubernetes/dns \
        "KUBE_DNS_ARGS=--dns-bind-address=$DNS_IP --dns-port=53 --health-bind-address=127.0.0.1 --health-port=8081"
fi

# --- 3. safety routes ----------------------------------------------------------------

if ! ip link show kube-svc0 >/dev/null 2>&1; then
    # Without the dummy driver (some containers), a bridge with no ports is an
    # equally dead end: what is routed there and not DNATed is dropped.
    ip link add kube-svc0 type dummy 2>/dev/null || ip link add kube-svc0 type bridge
fi
ip link set kube-svc0 up
ip route replace "$SERVICE_CIDR" dev kube-svc0
ip route replace blackhole "$CLUSTER_CIDR" metric 4294967295
# The cluster DNS address is local, so kube-dns can listen on it.
[[ -n "$have_dns" ]] && ip addr replace "$DNS_IP/32" dev kube-svc0
log "routes: $SERVICE_CIDR -> kube-svc0 (dummy), blackhole $CLUSTER_CIDR (lowest priority)"

# --- 4. daemons ----------------------------------------------------------------------

# unit_exec UNIT: the argument words of the unit's ExecStart= (binary dropped).
unit_exec() {
    awk '/^ExecStart=/ { on = 1 } on { line = $0; sub(/\\$/, "", line); print line; if ($0 !~ /\\$/) exit }' \
        "systemd/$1" | sed 's/^ExecStart=//' | tr '\n' ' ' | awk '{ $1 = ""; print }'
}

# unit_env_files UNIT: the EnvironmentFile= paths of the unit ('-' prefix dropped).
unit_env_files() {
    sed -n 's/^EnvironmentFile=-\{0,1\}//p' "systemd/$1"
}

# start_unit NAME: runs $BIN_DIR/NAME as systemd would run systemd/NAME.service:
# the unit's EnvironmentFiles sourced, its ExecStart= words expanded ($VAR split
# on whitespace, as systemd does), in its own session, logging to $LOG_DIR.
start_unit() {
    local name="$1" unit="$1.service" words files
    if running "$name"; then
        log "$name already running (pid $(pid_of "$name"))"
        return 0
    fi
    [[ -x "$BIN_DIR/$name" ]] || die "$BIN_DIR/$name not found"
    words="$(unit_exec "$unit")"
    files="$(unit_env_files "$unit")"
    (
        set -a
        while read -r f; do
            # shellcheck disable=SC1090
            [[ -n "$f" && -f "$f" ]] && . "$f"
        done <<<"$files"
        set +a
        # As systemd: an unset variable expands to nothing; no globbing.
        set +u -f
        eval "args=($words)"
        # shellcheck disable=SC2154
        exec setsid "$BIN_DIR/$name" "${args[@]}"
    ) >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
    echo $! >"$RUN_DIR/$name.pid"
    log "$name started (pid $!, log $LOG_DIR/$name.log)"
}

# wait_for WHAT CMD [SECONDS [DAEMON]]: polls CMD every second; gives up at once
# when DAEMON has exited, showing the end of its log.
wait_for() {
    local what="$1" cmd="$2" seconds="${3:-120}" daemon="${4:-}" i
    for ((i = 0; i < seconds; i++)); do
        if eval "$cmd" >/dev/null 2>&1; then
            return 0
        fi
        # Only "is the pid alive": right after start the pid may still be the
        # shell that is about to exec the daemon.
        if [[ -n "$daemon" ]] && ! kill -0 "$(pid_of "$daemon")" 2>/dev/null; then
            tail -n 20 "$LOG_DIR/$daemon.log" >&2 || true
            die "$daemon exited while waiting for $what (log $LOG_DIR/$daemon.log)"
        fi
        sleep 1
    done
    die "timed out after ${seconds}s waiting for $what (logs in $LOG_DIR)"
}

healthy() { curl -sf --max-time 2 "$1" | grep -q '^ok'; }

# etcd: scripts/start-etcd.sh keeps its pid next to the data dir; mirror it.
if running etcd; then
    log "etcd already running (pid $(pid_of etcd))"
else
    scripts/start-etcd.sh --data-dir "$STATE/etcd" >/dev/null
    cp "$STATE/etcd.pid" "$RUN_DIR/etcd.pid"
    ln -sf "$STATE/etcd.log" "$LOG_DIR/etcd.log"
fi
flannel_prefix="$(. /etc/sysconfig/flanneld && echo "${FLANNEL_ETCD_PREFIX:-/atomic.io/network}")"
flannel_etcd="$(. /etc/sysconfig/flanneld && echo "${FLANNEL_ETCD_ENDPOINTS:-http://127.0.0.1:2379}")"
etcdctl_() { ETCDCTL_API=3 etcdctl --endpoints="$flannel_etcd" "$@"; }
if [[ -z "$(etcdctl_ get --print-value-only "$flannel_prefix/config")" ]]; then
    etcdctl_ put "$flannel_prefix/config" \
        "{\"Network\":\"$CLUSTER_CIDR\",\"SubnetLen\":24,\"Backend\":{\"Type\":\"$FLANNEL_BACKEND\"}}" >/dev/null
    log "flannel network config put at $flannel_prefix/config (backend $FLANNEL_BACKEND)"
fi

# A subnet.env left by an earlier flanneld would satisfy the wait below too early.
running flanneld || rm -f /run/flannel/subnet.env
start_unit flanneld
wait_for "flanneld (/run/flannel/subnet.env)" "[[ -s /run/flannel/subnet.env ]]" 60 flanneld
if grep -q -- "-healthz-port=$FLANNEL_HEALTHZ_PORT" /etc/sysconfig/flanneld; then
    wait_for "flanneld healthz" "curl -sf --max-time 2 http://127.0.0.1:$FLANNEL_HEALTHZ_PORT/healthz" 30 flanneld
fi
flannel_subnet="$(. /run/flannel/subnet.env && echo "$FLANNEL_SUBNET")"
[[ "$flannel_subnet" =~ ^([0-9]+\.[0-9]+\.[0-9]+)\.[0-9]+/([0-9]+)$ ]] || die "bad FLANNEL_SUBNET $flannel_subnet"
pod_cidr="${BASH_REMATCH[1]}.0/${BASH_REMATCH[2]}"
log "flannel subnet $flannel_subnet: pods get $pod_cidr on bridge cni0"

# containerd: scripts/containerd-node.sh's config (CNI bridge cni0 on the flannel
# subnet), on the standard socket that /etc/kubernetes/kubelet names.
if running containerd; then
    log "containerd already running (pid $(pid_of containerd))"
else
    if [[ -S "$CONTAINERD_SOCK" ]] && ctr --address "$CONTAINERD_SOCK" version >/dev/null 2>&1; then
        die "a containerd that local-up did not start serves $CONTAINERD_SOCK; stop it first"
    fi
    cdir="$STATE/containerd"
    scripts/containerd-node.sh --dir "$cdir" --pod-cidr "$pod_cidr" --bridge cni0 --config-only >/dev/null
    sed -i "s|$cdir/containerd.sock|$CONTAINERD_SOCK|g" "$cdir/config.toml"
    mkdir -p "$(dirname "$CONTAINERD_SOCK")"
    rm -f "$CONTAINERD_SOCK"
    setsid containerd --config "$cdir/config.toml" >>"$LOG_DIR/containerd.log" 2>&1 </dev/null &
    echo $! >"$RUN_DIR/containerd.pid"
    log "containerd started (pid $!, log $LOG_DIR/containerd.log)"
    wait_for "containerd" "ctr --address $CONTAINERD_SOCK version" 30 containerd
fi
scripts/build-images.sh --address "$CONTAINERD_SOCK"

start_unit kube-apiserver
wait_for "kube-apiserver healthz" "healthy $API/healthz" 120 kube-apiserver

if [[ ! -e "$ADMIN_KUBECONFIG" ]]; then
    cat >"$ADMIN_KUBECONFIG" <<KC
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: $API
contexts:
- name: local
  context:
    cluster: local
    user: admin
current-context: local
users:
- name: admin
  user: {}
KC
    chmod 0600 "$ADMIN_KUBECONFIG"
    log "wrote $ADMIN_KUBECONFIG"
fi
if [[ ! -e "${HOME:-/root}/.kube/config" ]]; then
    install -D -m 0600 "$ADMIN_KUBECONFIG" "${HOME:-/root}/.kube/config"
    log "wrote ${HOME:-/root}/.kube/config"
fi
kc() { "$KUBECTL" --kubeconfig="$ADMIN_KUBECONFIG" "$@"; }

start_unit kube-controller-manager
start_unit kube-scheduler
start_unit kubelet
start_unit kube-proxy

if [[ -n "$have_dns" ]]; then
    start_unit kube-dns
    # kube-dns is a host daemon, not a pod: the Service kube-dns has no selector and
    # one endpoint, its own clusterIP, where kube-dns listens (--dns-bind-address in
    # /etc/kubernetes/dns; the address is on kube-svc0). kube-proxy's DNAT is then
    # a no-op and the packets are delivered locally; without the endpoint it would
    # reject them.
    kc apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns, kubernetes.io/cluster-service: "true", kubernetes.io/name: KubeDNS}
spec:
  clusterIP: $DNS_IP
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-local
  namespace: kube-system
  labels: {kubernetes.io/service-name: kube-dns, endpointslice.kubernetes.io/managed-by: local-up.sh}
addressType: IPv4
endpoints:
- addresses: ["$DNS_IP"]
  conditions: {ready: true}
ports:
- {name: dns, port: 53, protocol: UDP}
- {name: dns-tcp, port: 53, protocol: TCP}
YAML
    log "Service kube-system/kube-dns: $DNS_IP:53 (kube-dns on the host)"
elif [[ -x "$BIN_DIR/kube-dns" ]]; then
    warn "kube-dns built but systemd/kube-dns.service is missing: not started"
fi

wait_for "kube-controller-manager healthz" "healthy http://127.0.0.1:10257/healthz" 120 kube-controller-manager
wait_for "kube-scheduler healthz" "healthy http://127.0.0.1:10259/healthz" 120 kube-scheduler
# The kubelet's port is authenticated: ask as the admin (system:masters).
wait_for "kubelet healthz" "curl -sfk --max-time 2 --cert $PKI/admin.crt --key $PKI/admin.key https://127.0.0.1:10250/healthz | grep -q '^ok'" 120 kubelet
wait_for "kube-proxy healthz" "curl -sf --max-time 2 http://127.0.0.1:10256/healthz" 120 kube-proxy
if [[ -n "$have_dns" ]] && grep -q -- "--health-port=8081" /etc/kubernetes/dns; then
    wait_for "kube-dns healthz" "curl -sf --max-time 2 http://127.0.0.1:8081/healthz" 120 kube-dns
fi

node="$(
    . /etc/kubernetes/kubelet
    if [[ "${KUBELET_HOSTNAME:-}" =~ --hostname[-_]override=([^ ]+) ]]; then
        echo "${BASH_REMATCH[1]}"
    else
        hostname
    fi
)"
ready_jsonpath='{.status.conditions[?(@.type=="Ready")].status}'
wait_for "node $node Ready" "kc get node '$node' -o jsonpath='$ready_jsonpath' | grep -q True" 120 kubelet
wait_for "service account default/default" "kc get serviceaccount default"

status
kc get nodes -o wide

# The README's demo (seed pod, RC scaled to 3, Service by ClusterIP, Deployment
# rollout and undo) with the upstream kubectl and, when built, ours.
if [[ "${LOCAL_UP_DEMO:-1}" != 0 ]]; then
    "$REPO_ROOT/scripts/demo.sh" --kubeconfig "$ADMIN_KUBECONFIG" --kubectl "${KUBECTL:-/usr/bin/kubectl}"
    ours="$REPO_ROOT/target/${LOCAL_UP_PROFILE:-release}/kubectl"
    if [[ -x "$ours" ]]; then
        "$REPO_ROOT/scripts/demo.sh" --kubeconfig "$ADMIN_KUBECONFIG" --kubectl "$ours"
    fi
fi
cat <<EOF

The cluster is up. Next:
  export KUBECONFIG=$ADMIN_KUBECONFIG        # also copied to ~/.kube/config if you had none
  kubectl get nodes
  kubectl run web --image=busybox --image-pull-policy=IfNotPresent -- \\
      sh -c 'echo hello > /tmp/index.html && httpd -f -p 8000 -h /tmp'
  kubectl expose pod web --port=80 --target-port=8000
  kubectl get pods,svc -o wide
  kubectl run client --rm -it --restart=Never --image=busybox --image-pull-policy=IfNotPresent -- \\
      wget -qO- http://\$(kubectl get svc web -o jsonpath='{.spec.clusterIP}')
  scripts/local-up.sh status                  # pids; logs in $LOG_DIR
  scripts/local-down.sh                       # stop everything and remove the state
(Local images only: busybox and pause; use imagePullPolicy IfNotPresent.)
EOF
