#!/usr/bin/env bash
# One command for a newcomer: builds everything, brings up an all-in-one local cluster
# (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd with
# locally built images, kubelet) and runs a demo with the upstream kubectl.
#
#   scripts/local-up.sh          # up + demo (leaves the cluster running)
#   scripts/local-up.sh down     # stops everything it started
#
# State lives in $KUBE_LOCAL_DIR (default /tmp/kube-local). The apiserver listens on
# 127.0.0.1:8080 (classic insecure port) and 6443 (TLS); a kubeconfig for kubectl is
# written to $KUBE_LOCAL_DIR/kubeconfig.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
ensure_cargo_on_path

DIR="${KUBE_LOCAL_DIR:-/tmp/kube-local}"
BIN="$REPO_ROOT/target/debug"
API="http://127.0.0.1:8080"
NODE="$(hostname)"
POD_CIDR="${POD_CIDR:-10.88.0.0/24}"
KUBECTL="/usr/bin/kubectl --kubeconfig=$DIR/kubeconfig"

stop_all() {
    for name in kubelet kube-scheduler kube-controller-manager kube-apiserver; do
        if [[ -f "$DIR/$name.pid" ]]; then
            kill "$(cat "$DIR/$name.pid")" 2>/dev/null || true
            rm -f "$DIR/$name.pid"
        fi
    done
    [[ -d "$DIR/node" ]] && scripts/containerd-node.sh --dir "$DIR/node" --stop || true
    scripts/start-etcd.sh --stop || true
}

if [[ "${1:-}" == "down" ]]; then
    stop_all
    log "stopped"
    exit 0
fi

scripts/install-deps.sh
log "building all binaries"
cargo build --workspace --bins
mkdir -p "$DIR"
stop_all

# start <name> <args...>: runs a daemon in the background with its log in $DIR.
start() {
    local name="$1"
    shift
    "$BIN/$name" "$@" >"$DIR/$name.log" 2>&1 &
    echo $! >"$DIR/$name.pid"
    log "$name started (pid $!, log $DIR/$name.log)"
}

wait_for() {
    local what="$1" cmd="$2" i
    for i in $(seq 1 120); do
        if eval "$cmd" >/dev/null 2>&1; then
            return 0
        fi
        sleep 1
    done
    die "timed out waiting for $what"
}

scripts/start-etcd.sh
start kube-apiserver --etcd-servers=http://127.0.0.1:2379 --insecure-bind-address=127.0.0.1 --insecure-port=8080 \
    --secure-port=6443 --cert-dir="$DIR/certs" --service-cluster-ip-range=10.254.0.0/16
wait_for "kube-apiserver" "curl -sf $API/readyz"
cat >"$DIR/kubeconfig" <<KC
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
    user: local
current-context: local
users:
- name: local
  user: {}
KC
start kube-controller-manager --master="$API"
start kube-scheduler --master="$API"

scripts/containerd-node.sh --dir "$DIR/node" --pod-cidr "$POD_CIDR"
start kubelet --api-servers="$API" --hostname-override="$NODE" \
    --container-runtime-endpoint="unix://$DIR/node/containerd.sock" \
    --root-dir="$DIR/kubelet" --pod-logs-dir="$DIR/pods" --port=10250
wait_for "node $NODE Ready" "$KUBECTL get node $NODE -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -q True"
wait_for "default service account" "$KUBECTL get serviceaccount default"

log "demo: a two-container pod (busybox httpd + a client reaching it on localhost)"
$KUBECTL delete pod demo --ignore-not-found --wait=true >/dev/null
$KUBECTL apply -f - <<'YAML'
apiVersion: v1
kind: Pod
metadata:
  name: demo
  labels: {app: demo}
spec:
  containers:
  - name: web
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "echo hello from our kubelet > /tmp/index.html && httpd -f -p 8000 -h /tmp"]
  - name: client
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "sleep 2; wget -qO- http://127.0.0.1:8000/; sleep 3600"]
YAML
wait_for "pod demo Running" "$KUBECTL get pod demo -o jsonpath='{.status.phase}' | grep -q Running"
$KUBECTL get nodes -o wide
$KUBECTL get pods -o wide
sleep 3
log "client container says: $($KUBECTL logs demo -c client 2>/dev/null || echo '(logs unavailable)')"
log "cluster is up: export KUBECONFIG=$DIR/kubeconfig; stop it with scripts/local-up.sh down"
