#!/usr/bin/env bash
# Build the node's container images locally (no registry) as OCI image-layout
# tarballs and, when a containerd socket is given, import them into its
# `k8s.io` namespace (the one the CRI plugin uses).
#
#   scripts/build-images.sh [--out DIR] [--address /path/containerd.sock]
#
# Images:
#   docker.io/library/busybox:latest  Debian's busybox-static, every applet linked
#                                     in /bin (sh, httpd, nc, wget, sleep, ...)
#   registry.k8s.io/pause:3.9         a tiny static pause (reaps zombies, exits 0
#                                     on SIGTERM/SIGINT); built with cc -static, or
#                                     a busybox shell loop when no C compiler exists
#
# Idempotent: tarballs are reproducible (fixed mtimes, owners and order), only
# rebuilt when missing, and an image already present with the same digest is not
# imported again. Default output: $REPO_ROOT/target/images. The address may also
# come from CONTAINERD_ADDRESS.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

out_dir="$REPO_ROOT/target/images"
address="${CONTAINERD_ADDRESS:-}"
while (($#)); do
    case "$1" in
        --out) out_dir="${2:?--out needs a value}"; shift 2 ;;
        --address) address="${2:?--address needs a value}"; shift 2 ;;
        -h|--help) sed -n '2,18p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument: $1" ;;
    esac
done

BUSYBOX_BIN="${BUSYBOX_BIN:-/bin/busybox}"
BUSYBOX_REF="docker.io/library/busybox:latest"
PAUSE_REF="registry.k8s.io/pause:3.9"
IMAGE_PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

[[ -x "$BUSYBOX_BIN" ]] || die "$BUSYBOX_BIN not found: install busybox-static (scripts/install-deps.sh)"
file_is_static() { ! LC_ALL=C ldd "$1" >/dev/null 2>&1; }
file_is_static "$BUSYBOX_BIN" || die "$BUSYBOX_BIN is dynamically linked: install busybox-static"

mkdir -p "$out_dir"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }

# reproducible_tar DIR OUT: a tar of DIR's contents that depends only on the
# contents (names sorted, owners root, mtimes zero, no pax atime/ctime).
reproducible_tar() {
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu \
        -C "$1" -cf "$2" .
}

# oci_image ROOTFS REF OUT CONFIG_JSON_FRAGMENT
# Packs ROOTFS as a one-layer OCI image named REF into the archive OUT.
# CONFIG_JSON_FRAGMENT is the body of the image config's "config" object.
oci_image() {
    local rootfs="$1" ref="$2" out="$3" container_config="$4"
    local layout="$work/layout-$(basename "$out" .tar)"
    rm -rf "$layout"
    mkdir -p "$layout/blobs/sha256"

    local layer="$work/layer.tar"
    reproducible_tar "$rootfs" "$layer"
    local layer_digest layer_size
    layer_digest="$(sha "$layer")"
    layer_size="$(size "$layer")"
    mv "$layer" "$layout/blobs/sha256/$layer_digest"

    local config="$work/config.json"
    printf '{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":{%s},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"scripts/build-images.sh"}]}' \
        "$container_config" "$layer_digest" >"$config"
    local config_digest config_size
    config_digest="$(sha "$config")"
    config_size="$(size "$config")"
    mv "$config" "$layout/blobs/sha256/$config_digest"

    local manifest="$work/manifest.json"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
        "$config_digest" "$config_size" "$layer_digest" "$layer_size" >"$manifest"
    local manifest_digest manifest_size
    manifest_digest="$(sha "$manifest")"
    manifest_size="$(size "$manifest")"
    mv "$manifest" "$layout/blobs/sha256/$manifest_digest"

    # io.containerd.image.name is the full reference `ctr images import` uses as is.
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
        "$manifest_digest" "$manifest_size" "$ref" "${ref##*:}" >"$layout/index.json"
    printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"

    reproducible_tar "$layout" "$out.tmp"
    mv "$out.tmp" "$out"
    echo "sha256:$manifest_digest" >"$out.digest"
    log "built $ref -> $out (manifest sha256:$manifest_digest)"
}

# Common skeleton: /etc/passwd and /etc/group as busybox's image has them, /tmp.
base_rootfs() {
    local root="$1"
    mkdir -p "$root"/{bin,etc,tmp,var/www,root,home,usr/bin,usr/sbin,sbin}
    chmod 1777 "$root/tmp"
    printf 'root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\ndaemon:x:1:\nnobody:x:65534:\n' >"$root/etc/group"
}

build_busybox() {
    local out="$out_dir/busybox.tar"
    [[ -s "$out" && -s "$out.digest" && "$out" -nt "$BUSYBOX_BIN" && "$out" -nt "${BASH_SOURCE[0]}" ]] && return 0
    local root="$work/busybox-rootfs"
    base_rootfs "$root"
    cp "$BUSYBOX_BIN" "$root/bin/busybox"
    local applet
    # Debian's list includes `busybox` itself: never link it over the binary.
    while read -r applet; do
        [[ -n "$applet" && "$applet" != busybox && "$applet" != */* ]] || continue
        ln -sf busybox "$root/bin/$applet"
    done < <("$BUSYBOX_BIN" --list)
    oci_image "$root" "$BUSYBOX_REF" "$out" \
        "\"Env\":[\"PATH=$IMAGE_PATH\"],\"Cmd\":[\"sh\"]"
}

# Like upstream's pause.c: PID 1 of the sandbox, reaps adopted children, exits 0
# on SIGINT/SIGTERM.
PAUSE_C='#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static void sigdown(int signo) { (void)signo; _exit(0); }
static void sigreap(int signo) { (void)signo; while (waitpid(-1, NULL, WNOHANG) > 0) {} }
int main(void) {
    struct sigaction down = {.sa_handler = sigdown};
    struct sigaction reap = {.sa_handler = sigreap, .sa_flags = SA_NOCLDSTOP};
    if (sigaction(SIGINT, &down, NULL) < 0 || sigaction(SIGTERM, &down, NULL) < 0 ||
        sigaction(SIGCHLD, &reap, NULL) < 0) return 1;
    for (;;) pause();
}
'

build_pause() {
    local out="$out_dir/pause.tar"
    [[ -s "$out" && -s "$out.digest" && "$out" -nt "${BASH_SOURCE[0]}" ]] && return 0
    local root="$work/pause-rootfs"
    mkdir -p "$root"
    local cc="${CC:-cc}"
    if have "$cc" && printf '%s' "$PAUSE_C" | "$cc" -x c -static -Os -s -o "$root/pause" - 2>"$work/cc.log"; then
        oci_image "$root" "$PAUSE_REF" "$out" '"Entrypoint":["/pause"]'
    else
        warn "no static C build of pause ($(head -c 300 "$work/cc.log" 2>/dev/null)); using a busybox shell loop"
        base_rootfs "$root"
        cp "$BUSYBOX_BIN" "$root/bin/busybox"
        ln -sf busybox "$root/bin/sh"
        ln -sf busybox "$root/bin/sleep"
        oci_image "$root" "$PAUSE_REF" "$out" \
            "\"Env\":[\"PATH=$IMAGE_PATH\"],\"Entrypoint\":[\"/bin/sh\",\"-c\",\"trap 'exit 0' TERM INT; while :; do sleep 3600 & wait; done\"]"
    fi
}

build_busybox
build_pause

[[ -n "$address" ]] || exit 0
have ctr || die "ctr not found: install containerd (scripts/install-deps.sh)"
ctr_k8s() { ctr --address "$address" --namespace k8s.io "$@"; }
for pair in "busybox.tar=$BUSYBOX_REF" "pause.tar=$PAUSE_REF"; do
    tarball="$out_dir/${pair%%=*}"
    ref="${pair#*=}"
    want="$(cat "$tarball.digest")"
    have_digest="$(ctr_k8s images ls "name==$ref" 2>/dev/null | awk -v r="$ref" '$1 == r { print $3 }')"
    if [[ "$have_digest" == "$want" ]]; then
        log "$ref already imported into $address"
        continue
    fi
    ctr_k8s images import "$tarball" >/dev/null
    log "imported $ref into $address"
done
