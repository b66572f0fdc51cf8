#!/usr/bin/env bash
# A containerd for one node, with its own root, state, socket and CNI config, so
# several nodes can run side by side on one machine (tests, local clusters).
#
#   scripts/containerd-node.sh --dir DIR --pod-cidr CIDR [--bridge NAME]
#                              [--config-only] [--no-images] [--netns NAME]
#   scripts/containerd-node.sh --dir DIR --flannel [--netns NAME] ...
#   scripts/containerd-node.sh --dir DIR --stop
#
# Writes DIR/config.toml (root DIR/root, state DIR/state, socket
# DIR/containerd.sock, sandbox_image registry.k8s.io/pause:3.9, CNI bin_dir
# /usr/lib/cni, conf_dir DIR/net.d) and DIR/net.d/10-bridge.conflist (bridge +
# host-local on CIDR, the pod subnet of this node, + portmap), then starts
# containerd in the background (pid DIR/containerd.pid, log DIR/containerd.log),
# waits for the socket, imports the images of scripts/build-images.sh and prints
# the socket path. --config-only writes the files and exits (tests start the
# process themselves). The bridge (default cni<hash of DIR>) carries CIDR's first
# address, so pod traffic is routed locally and never through the default route.
# --flannel writes no CNI config: flanneld writes DIR/net.d/10-flannel.conflist
# (run it with --cni-conf-dir=DIR/net.d). --netns runs containerd (and so CNI and
# runc) in the network namespace /run/netns/NAME: one "host" of a local cluster.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

dir=""
pod_cidr=""
bridge=""
config_only=""
images=1
stop=""
flannel=""
netns=""
while (($#)); do
    case "$1" in
        --dir) dir="${2:?--dir needs a value}"; shift 2 ;;
        --pod-cidr) pod_cidr="${2:?--pod-cidr needs a value}"; shift 2 ;;
        --bridge) bridge="${2:?--bridge needs a value}"; shift 2 ;;
        --config-only) config_only=1; shift ;;
        --no-images) images=""; shift ;;
        --stop) stop=1; shift ;;
        --flannel) flannel=1; shift ;;
        --netns) netns="${2:?--netns needs a value}"; shift 2 ;;
        -h|--help) sed -n '2,22p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument: $1" ;;
    esac
done
[[ -n "$dir" ]] || die "--dir is required"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
pid_file="$dir/containerd.pid"
socket="$dir/containerd.sock"
running() { [[ -f "$pid_file" ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null; }

if [[ -n "$stop" ]]; then
    if running; then
        pid="$(cat "$pid_file")"
        kill "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        log "containerd (pid $pid) stopped"
    else
        log "containerd is not running"
    fi
    rm -f "$pid_file"
    exit 0
fi

if [[ -n "$flannel" ]]; then
    pod_cidr="${pod_cidr:-0.0.0.0/32}"
fi
[[ -n "$pod_cidr" ]] || die "--pod-cidr is required (e.g. 10.88.1.0/24)"
[[ "$pod_cidr" =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)\.([0-9]+)/([0-9]+)$ ]] || die "bad --pod-cidr $pod_cidr"
# The bridge takes the subnet's first address (host-local's default gateway).
gateway="${BASH_REMATCH[1]}.${BASH_REMATCH[2]}.${BASH_REMATCH[3]}.$((BASH_REMATCH[4] + 1))"
if [[ -z "$bridge" ]]; then
    # Linux interface names have at most 15 characters.
    bridge="cni$(printf '%s' "$dir" | sha256sum | head -c 8)"
fi
((${#bridge} <= 15)) || die "bridge name $bridge is longer than 15 characters"
network="$bridge"

mkdir -p "$dir/root" "$dir/state" "$dir/net.d" "$dir/ipam" "$dir/opt"
cat >"$dir/config.toml" <<EOF
# Written by scripts/containerd-node.sh; see DESIGN.md §4.
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "$socket"

[ttrpc]
  address = "$socket.ttrpc"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.9"
  # Required here: without CAP_SYS_RESOURCE runc cannot lower oom_score_adj.
  restrict_oom_score_adj = true
  # Streaming server for Exec/Attach/PortForward: loopback, any free port.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/net.d"
    max_conf_num = 1
EOF

if [[ -n "$flannel" ]]; then
    rm -f "$dir/net.d/10-bridge.conflist"
else
cat >"$dir/net.d/10-bridge.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "$network",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$bridge",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$dir/ipam",
        "ranges": [[{"subnet": "$pod_cidr", "gateway": "$gateway"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {
      "type": "portmap",
      "capabilities": {"portMappings": true}
    }
  ]
}
EOF
fi

if [[ -n "$config_only" ]]; then
    echo "$dir/config.toml"
    exit 0
fi

have containerd || die "containerd not found: run scripts/install-deps.sh"
if running; then
    log "containerd already running (pid $(cat "$pid_file"))"
else
    rm -f "$socket"
    # setsid: containerd outlives this script and its terminal.
    in_netns=()
    if [[ -n "$netns" ]]; then
        [[ -e "/run/netns/$netns" ]] || die "network namespace $netns does not exist"
        in_netns=(nsenter "--net=/run/netns/$netns")
    fi
    setsid "${in_netns[@]}" containerd --config "$dir/config.toml" >>"$dir/containerd.log" 2>&1 </dev/null &
    echo $! >"$pid_file"
    for _ in $(seq 200); do
        [[ -S "$socket" ]] && ctr --address "$socket" version >/dev/null 2>&1 && break
        running || die "containerd exited; see $dir/containerd.log"
        sleep 0.05
    done
    [[ -S "$socket" ]] || die "containerd socket $socket did not appear; see $dir/containerd.log"
    log "containerd started (pid $(cat "$pid_file")), socket $socket"
fi
if [[ -n "$images" ]]; then
    "$REPO_ROOT/scripts/build-images.sh" --address "$socket"
fi
echo "$socket"
