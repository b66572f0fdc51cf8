#!/usr/bin/env bash
# The README's demo against a running cluster (scripts/local-up.sh runs it last):
#  1. the seed's two-container pod (a busybox httpd "frontend" and a busybox nc
#     "redis" in one pod) reaches 2/2 Running and the frontend reaches redis on
#     localhost;
#  2. a ReplicationController scaled from 1 to 3;
#  3. a Deployment rolled out to a new template, then rolled back with undo;
#  4. a Service reached by its ClusterIP from a pod.
#
#   scripts/demo.sh [--kubectl PATH] [--kubeconfig FILE] [--keep]
#
# Everything happens in a namespace of its own (demo-<kubectl name>), removed at
# the end unless --keep. Any kubectl works: upstream's /usr/bin/kubectl (default)
# or ours (target/*/kubectl). Exit status 0 only when every step did what it should.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

kubectl_bin="${KUBECTL:-/usr/bin/kubectl}"
kubeconfig="${KUBECONFIG:-/etc/kubernetes/admin.kubeconfig}"
keep=""
while (($#)); do
    case "$1" in
        --kubectl) kubectl_bin="${2:?}"; shift 2 ;;
        --kubeconfig) kubeconfig="${2:?}"; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument: $1" ;;
    esac
done
[[ -x "$kubectl_bin" ]] || die "no kubectl at $kubectl_bin"
ns="demo-$(basename "$(dirname "$kubectl_bin")")-$(basename "$kubectl_bin")"
ns="$(printf '%s' "$ns" | tr -c 'a-z0-9-' '-' | cut -c1-50 | sed 's/-*$//')"
k() { "$kubectl_bin" --kubeconfig "$kubeconfig" -n "$ns" "$@"; }
say() { printf '\n$ kubectl %s\n' "$*" >&2; }
step() { say "$@"; k "$@"; }

# wait_until DESCRIPTION SECONDS COMMAND...: polls until COMMAND succeeds.
wait_until() {
    local what="$1" secs="$2"
    shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || { k get all -o wide >&2 || true; die "timed out waiting for $what"; }
        sleep 0.5
    done
}
jp() { k get "$1" -o "jsonpath=$2"; }
ready_count() { # ready_count SELECTOR: number of Ready pods
    k get pods -l "$1" -o 'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True || true
}
want_ready() { [[ "$(ready_count "$1")" == "$2" ]]; }

cleanup() { [[ -n "$keep" ]] || "$kubectl_bin" --kubeconfig "$kubeconfig" delete namespace "$ns" --wait=false >/dev/null 2>&1 || true; }
trap cleanup EXIT

log "demo with $kubectl_bin in namespace $ns"
"$kubectl_bin" --kubeconfig "$kubeconfig" create namespace "$ns" >/dev/null
wait_until "the default ServiceAccount" 30 k get serviceaccount default

# 1. The seed's pod: frontend + redis in one pod, talking over localhost.
say "create -f frontend-localredis-pod.yaml"
k create -f - <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: redis-php
  labels:
    name: redis-php
spec:
  containers:
  - name: frontend
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "mkdir -p /www && echo frontend > /www/index.html && exec httpd -f -p 80 -h /www"]
    ports:
    - containerPort: 80
  - name: redis-php
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "while true; do echo '+PONG' | nc -l -p 6379; done"]
    ports:
    - containerPort: 6379
EOF
wait_until "redis-php 2/2 Running" 120 want_ready name=redis-php 1
step get pods redis-php
[[ "$(jp pod/redis-php '{.status.containerStatuses[*].ready}')" == "true true" ]] || die "redis-php is not 2/2 ready"
say "exec redis-php -c frontend -- sh -c 'echo PING | nc localhost 6379'"
reply="$(k exec redis-php -c frontend -- sh -c 'echo PING | nc -w 2 localhost 6379')"
[[ "$reply" == "+PONG" ]] || die "frontend did not reach redis on localhost (got: $reply)"
echo "$reply"

# 2. A ReplicationController scaled to 3.
say "create -f web-rc.yaml"
k create -f - <<'EOF'
apiVersion: v1
kind: ReplicationController
metadata:
  name: web
spec:
  replicas: 1
  selector:
    app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: busybox
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "mkdir -p /www && echo hello from $(hostname) > /www/index.html && exec httpd -f -p 8000 -h /www"]
        ports:
        - containerPort: 8000
EOF
wait_until "rc/web 1 ready" 120 want_ready app=web 1
step scale rc web --replicas=3
wait_until "rc/web 3 ready" 120 want_ready app=web 3
step get rc web

# 3. A Service reached by its ClusterIP, from a pod.
step expose rc web --port=80 --target-port=8000
ip="$(jp service/web '{.spec.clusterIP}')"
[[ -n "$ip" ]] || die "service web has no clusterIP"
say "exec redis-php -c frontend -- wget -qO- http://$ip/"
body=""
deadline=$((SECONDS + 60))
until body="$(k exec redis-php -c frontend -- wget -qO- "http://$ip/" 2>/dev/null)" && [[ "$body" == "hello from web-"* ]]; do
    ((SECONDS < deadline)) || die "ClusterIP $ip did not answer from a pod (got: $body)"
    sleep 1
done
echo "$body"

# 4. A Deployment rolled out to a new template, then undone.
say "create -f app-deployment.yaml"
k create -f - <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  replicas: 2
  selector:
    matchLabels:
      app: app
  template:
    metadata:
      labels:
        app: app
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: busybox
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "exec sleep 3600"]
EOF
step rollout status deployment/app --timeout=120s
step set env deployment/app RELEASE=v2
step rollout status deployment/app --timeout=120s
[[ "$(jp deployment/app '{.metadata.annotations.deployment\.kubernetes\.io/revision}')" == "2" ]] || die "expected revision 2 after the env change"
step rollout history deployment/app
step rollout undo deployment/app
step rollout status deployment/app --timeout=120s
env_after="$(jp deployment/app '{.spec.template.spec.containers[0].env}')"
[[ -z "$env_after" ]] || die "undo did not restore the previous template (env: $env_after)"
step get deployment app
log "demo passed with $kubectl_bin"
