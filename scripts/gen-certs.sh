#!/bin/sh
# Generates the cluster PKI and kubeconfigs (pure Rust, no openssl):
#   scripts/gen-certs.sh --dir /etc/kubernetes --server https://10.0.0.1:6443 \
#       --hostname master --ip 10.0.0.1 --ip 10.254.0.1 --node node1 --node node2
# Writes pki/{ca,apiserver,apiserver-kubelet-client,admin,controller-manager,scheduler,
# kube-proxy,kubelet-<node>}.{crt,key}, pki/sa.{key,pub}, etcd's PKI (pki/etcd/{ca,server}, pki/{apiserver,flanneld}-etcd-client)
# and <client>.conf kubeconfigs.
# For the secured kubelet port: apiserver-kubelet-client (O=system:masters, as kubeadm's)
# is what kube-apiserver presents (--kubelet-client-certificate/--kubelet-client-key),
# pki/ca.crt is the kubelets' --client-ca-file; kubelets serve with a self-signed pair
# they generate in their --cert-dir (kubelet.crt/kubelet.key), as upstream does.
set -eu
KUBE_APISERVER=${KUBE_APISERVER:-}
if [ -z "$KUBE_APISERVER" ]; then
    if command -v kube-apiserver >/dev/null 2>&1; then
        KUBE_APISERVER=kube-apiserver
    else
        root=$(cd "$(dirname "$0")/.." && pwd)
        cargo build --quiet --manifest-path "$root/Cargo.toml" -p kube-apiserver
        KUBE_APISERVER="${CARGO_TARGET_DIR:-$root/target}/debug/kube-apiserver"
    fi
fi
exec "$KUBE_APISERVER" gen-certs "$@"
