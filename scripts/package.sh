#!/usr/bin/env bash
# Build one .deb and one .rpm per component, plus the kubernetes-common,
# kubernetes-master and kubernetes-node packages, into target/packages/.
#
#   scripts/package.sh [--bin-dir DIR] [--out DIR] [--format deb|rpm|all]
#                      [--fast] [--no-strip]
#
# Without --bin-dir it runs `cargo build --release --workspace --bins` and
# packages target/release; with it (e.g. target/debug, as the tests do) it
# packages the binaries found there. kubectl and kube-dns are packaged only when
# their binaries exist (skipped with a message otherwise).
#
# Layout (as the classic Fedora kubernetes packages):
#   kubernetes-common       /etc/kubernetes/config              (conffile)
#   kube-apiserver          /usr/bin/kube-apiserver, /usr/lib/systemd/system/kube-apiserver.service,
#                           /etc/kubernetes/apiserver           (conffile)
#   kube-controller-manager ... /etc/kubernetes/controller-manager
#   kube-scheduler          ... /etc/kubernetes/scheduler
#   kubelet                 ... /etc/kubernetes/kubelet, /var/lib/kubelet/
#   kube-proxy              ... /etc/kubernetes/proxy
#   flanneld                ... /etc/sysconfig/flanneld
#   kube-dns                ... /etc/kubernetes/dns (when manifests/etc/kubernetes/dns exists)
#   kubectl                 /usr/bin/kubectl
#   kubernetes-master       depends on kube-apiserver, kube-controller-manager, kube-scheduler
#   kubernetes-node         depends on kubelet, kube-proxy, flanneld, containerd, runc, CNI plugins
# Files under /etc are conffiles (deb: DEBIAN/conffiles, rpm: %config(noreplace)).
# Version: [workspace.package] version of Cargo.toml, package release
# $PACKAGE_RELEASE (default 1). Units are installed, not enabled (Fedora policy).
#
# --fast: light compression (gzip -1), for tests. --no-strip: keep debug info
# (binaries are stripped by default, as dh_strip / rpm's brp-strip would).
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

bin_dir=""
out_dir="$REPO_ROOT/target/packages"
formats="deb rpm"
fast=""
strip=1
while (($#)); do
    case "$1" in
        --bin-dir) bin_dir="${2:?--bin-dir needs a value}"; shift 2 ;;
        --out) out_dir="${2:?--out needs a value}"; shift 2 ;;
        --format)
            case "${2:?--format needs a value}" in
                deb | rpm) formats="$2" ;;
                all) formats="deb rpm" ;;
                *) die "--format must be deb, rpm or all" ;;
            esac
            shift 2
            ;;
        --fast) fast=1; shift ;;
        --no-strip) strip=""; shift ;;
        -h | --help) sed -n '2,32p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument: $1" ;;
    esac
done

# The version of [workspace.package] in the root Cargo.toml.
version="$(awk '
    /^\[/ { in_pkg = ($0 == "[workspace.package]") }
    in_pkg && /^version *=/ { gsub(/^version *= *"|".*$/, ""); print; exit }
' Cargo.toml)"
[[ "$version" =~ ^[0-9][0-9A-Za-z.+~]*$ ]] || die "cannot read [workspace.package] version from Cargo.toml (got '$version')"
release="${PACKAGE_RELEASE:-1}"

if [[ -z "$bin_dir" ]]; then
    ensure_cargo_on_path
    log "cargo build --release --workspace --bins"
    cargo build --release --workspace --bins
    bin_dir="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release"
fi
[[ -d "$bin_dir" ]] || die "--bin-dir $bin_dir is not a directory"
bin_dir="$(cd "$bin_dir" && pwd)"

for f in $formats; do
    case "$f" in
        deb) have dpkg-deb || die "dpkg-deb not found (package dpkg)" ;;
        rpm) have rpmbuild || die "rpmbuild not found: run scripts/install-deps.sh (package rpm)" ;;
    esac
done

deb_arch="$(dpkg --print-architecture 2>/dev/null || echo amd64)"
rpm_arch="$(uname -m)"
mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/package.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# --- what goes where -----------------------------------------------------------

# Per package: PKG_BIN (binary in /usr/bin), PKG_UNIT (unit in systemd/),
# PKG_CONFIGS ("manifests-relative-source:/absolute/destination" ...), PKG_DIRS
# (extra owned directories), dependencies, summary and description.
describe() {
    PKG_BIN="" PKG_UNIT="" PKG_CONFIGS=() PKG_DIRS=()
    PKG_DEB_DEPENDS="" PKG_DEB_RECOMMENDS="" PKG_RPM_REQUIRES=() PKG_RPM_RECOMMENDS=()
    PKG_ARCH_INDEP=""
    local common_deb="kubernetes-common (= $version-$release)"
    local common_rpm="kubernetes-common = $version-$release"
    case "$1" in
        kubernetes-common)
            PKG_ARCH_INDEP=1
            PKG_CONFIGS=("etc/kubernetes/config:/etc/kubernetes/config")
            PKG_SUMMARY="Kubernetes configuration shared by all components"
            PKG_DESCRIPTION="The /etc/kubernetes/config file (logging, allow-privileged, master URL) read by every Kubernetes daemon's systemd unit."
            ;;
        kube-apiserver)
            PKG_BIN=kube-apiserver PKG_UNIT=kube-apiserver.service
            PKG_CONFIGS=("etc/kubernetes/apiserver:/etc/kubernetes/apiserver")
            PKG_DEB_DEPENDS="$common_deb" PKG_RPM_REQUIRES=("$common_rpm")
            PKG_DEB_RECOMMENDS="etcd-server" PKG_RPM_RECOMMENDS=(etcd)
            PKG_SUMMARY="Kubernetes API server"
            PKG_DESCRIPTION="Validates and configures data for the API objects (pods, services, replication controllers, ...), stored in etcd."
            ;;
        kube-controller-manager)
            PKG_BIN=kube-controller-manager PKG_UNIT=kube-controller-manager.service
            PKG_CONFIGS=("etc/kubernetes/controller-manager:/etc/kubernetes/controller-manager")
            PKG_DEB_DEPENDS="$common_deb" PKG_RPM_REQUIRES=("$common_rpm")
            PKG_SUMMARY="Kubernetes controller manager"
            PKG_DESCRIPTION="A daemon that embeds the core control loops of Kubernetes (replication, deployments, namespaces, service accounts, garbage collection, ...)."
            ;;
        kube-scheduler)
            PKG_BIN=kube-scheduler PKG_UNIT=kube-scheduler.service
            PKG_CONFIGS=("etc/kubernetes/scheduler:/etc/kubernetes/scheduler")
            PKG_DEB_DEPENDS="$common_deb" PKG_RPM_REQUIRES=("$common_rpm")
            PKG_SUMMARY="Kubernetes scheduler"
            PKG_DESCRIPTION="Assigns unscheduled pods to nodes."
            ;;
        kubelet)
            PKG_BIN=kubelet PKG_UNIT=kubelet.service
            PKG_CONFIGS=("etc/kubernetes/kubelet:/etc/kubernetes/kubelet")
            PKG_DIRS=(/var/lib/kubelet)
            PKG_DEB_DEPENDS="$common_deb" PKG_RPM_REQUIRES=("$common_rpm")
            PKG_DEB_RECOMMENDS="containerd, runc, containernetworking-plugins"
            PKG_RPM_RECOMMENDS=(containerd runc containernetworking-plugins)
            PKG_SUMMARY="Kubernetes node agent"
            PKG_DESCRIPTION="Registers the node and runs the pods bound to it on a CRI runtime (containerd)."
            ;;
        kube-proxy)
            PKG_BIN=kube-proxy PKG_UNIT=kube-proxy.service
            PKG_CONFIGS=("etc/kubernetes/proxy:/etc/kubernetes/proxy")
            PKG_DEB_DEPENDS="$common_deb" PKG_RPM_REQUIRES=("$common_rpm")
            PKG_DEB_RECOMMENDS="nftables, conntrack" PKG_RPM_RECOMMENDS=(nftables conntrack-tools)
            PKG_SUMMARY="Kubernetes network proxy"
            PKG_DESCRIPTION="Programs nftables (or iptables) rules that implement Service virtual IPs and node ports."
            ;;
        flanneld)
            PKG_BIN=flanneld PKG_UNIT=flanneld.service
            PKG_CONFIGS=("etc/sysconfig/flanneld:/etc/sysconfig/flanneld")
            PKG_SUMMARY="Flannel overlay network agent"
            PKG_DESCRIPTION="Leases a pod subnet per host from etcd and routes between them (vxlan or host-gw)."
            ;;
        kube-dns)
            PKG_BIN=kube-dns
            [[ -f "systemd/kube-dns.service" ]] && PKG_UNIT=kube-dns.service
            [[ -f "manifests/etc/kubernetes/dns" ]] && PKG_CONFIGS=("etc/kubernetes/dns:/etc/kubernetes/dns")
            PKG_DEB_DEPENDS="$common_deb" PKG_RPM_REQUIRES=("$common_rpm")
            PKG_SUMMARY="Kubernetes cluster DNS"
            PKG_DESCRIPTION="Answers DNS queries for Services and Pods (<service>.<namespace>.svc.cluster.local)."
            ;;
        kubectl)
            PKG_BIN=kubectl
            PKG_SUMMARY="Kubernetes command-line client"
            PKG_DESCRIPTION="Runs commands against Kubernetes clusters."
            ;;
        kubernetes-master)
            PKG_ARCH_INDEP=1
            PKG_DEB_DEPENDS="kube-apiserver (= $version-$release), kube-controller-manager (= $version-$release), kube-scheduler (= $version-$release)"
            PKG_RPM_REQUIRES=("kube-apiserver = $version-$release" "kube-controller-manager = $version-$release" "kube-scheduler = $version-$release")
            PKG_DEB_RECOMMENDS="etcd-server" PKG_RPM_RECOMMENDS=(etcd)
            PKG_SUMMARY="Kubernetes master (control plane) services"
            PKG_DESCRIPTION="Metapackage: kube-apiserver, kube-controller-manager and kube-scheduler."
            ;;
        kubernetes-node)
            PKG_ARCH_INDEP=1
            PKG_DEB_DEPENDS="kubelet (= $version-$release), kube-proxy (= $version-$release), flanneld (= $version-$release), containerd, runc, containernetworking-plugins"
            PKG_RPM_REQUIRES=("kubelet = $version-$release" "kube-proxy = $version-$release" "flanneld = $version-$release" containerd runc containernetworking-plugins)
            PKG_SUMMARY="Kubernetes node services"
            PKG_DESCRIPTION="Metapackage: kubelet, kube-proxy, flanneld and the container runtime (containerd, runc, CNI plugins)."
            ;;
        *) die "unknown package $1" ;;
    esac
}

# --- staging -------------------------------------------------------------------

# stage PKG: fills $work/PKG/root with the package's files (no packaging metadata).
stage() {
    local pkg="$1" root="$work/$1/root" pair src dest dir
    mkdir -p "$root"
    if [[ -n "$PKG_BIN" ]]; then
        install -d -m 0755 "$root/usr/bin"
        if [[ -n "$strip" ]] && have strip; then
            strip --strip-all -o "$root/usr/bin/$PKG_BIN" "$bin_dir/$PKG_BIN"
            chmod 0755 "$root/usr/bin/$PKG_BIN"
        else
            install -m 0755 "$bin_dir/$PKG_BIN" "$root/usr/bin/$PKG_BIN"
        fi
    fi
    if [[ -n "$PKG_UNIT" ]]; then
        install -D -m 0644 "systemd/$PKG_UNIT" "$root/usr/lib/systemd/system/$PKG_UNIT"
    fi
    for pair in "${PKG_CONFIGS[@]}"; do
        src="manifests/${pair%%:*}"
        dest="${pair#*:}"
        install -D -m 0644 "$src" "$root$dest"
    done
    for dir in "${PKG_DIRS[@]}"; do
        install -d -m 0755 "$root$dir"
    done
}

# Maintainer scripts: reload systemd after (un)installing a unit; stop the
# service when the package is removed. Nothing runs when installing into
# another root (DPKG_ROOT / rpm --root) or without a running systemd.
# shellcheck disable=SC2016 # expanded by the maintainer script, not here
systemd_running='[ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]'

# --- .deb ----------------------------------------------------------------------

build_deb() {
    local pkg="$1" tree="$work/$1/deb" arch="$deb_arch" size pair
    [[ -n "$PKG_ARCH_INDEP" ]] && arch=all
    cp -a "$work/$pkg/root" "$tree"
    mkdir -p "$tree/DEBIAN"
    size="$(du -sk --exclude=DEBIAN "$tree" | cut -f1)"
    {
        echo "Package: $pkg"
        echo "Version: $version-$release"
        echo "Architecture: $arch"
        echo "Maintainer: Kubernetes in Rust maintainers <root@localhost>"
        echo "Installed-Size: $size"
        [[ -n "$PKG_DEB_DEPENDS" ]] && echo "Depends: $PKG_DEB_DEPENDS"
        [[ -n "$PKG_DEB_RECOMMENDS" ]] && echo "Recommends: $PKG_DEB_RECOMMENDS"
        echo "Section: admin"
        echo "Priority: optional"
        echo "Homepage: https://kubernetes.io"
        echo "Description: $PKG_SUMMARY"
        echo " $PKG_DESCRIPTION"
    } >"$tree/DEBIAN/control"
    if ((${#PKG_CONFIGS[@]})); then
        for pair in "${PKG_CONFIGS[@]}"; do echo "${pair#*:}"; done >"$tree/DEBIAN/conffiles"
        chmod 0644 "$tree/DEBIAN/conffiles"
    fi
    if [[ -n "$PKG_UNIT" ]]; then
        printf '#!/bin/sh\nset -e\nif %s; then systemctl daemon-reload >/dev/null 2>&1 || true; fi\nexit 0\n' \
            "$systemd_running" >"$tree/DEBIAN/postinst"
        # shellcheck disable=SC2016
        printf '#!/bin/sh\nset -e\nif [ "$1" = remove ] && %s; then systemctl stop %s >/dev/null 2>&1 || true; fi\nexit 0\n' \
            "$systemd_running" "$PKG_UNIT" >"$tree/DEBIAN/prerm"
        printf '#!/bin/sh\nset -e\nif %s; then systemctl daemon-reload >/dev/null 2>&1 || true; fi\nexit 0\n' \
            "$systemd_running" >"$tree/DEBIAN/postrm"
        chmod 0755 "$tree/DEBIAN/postinst" "$tree/DEBIAN/prerm" "$tree/DEBIAN/postrm"
    fi
    local deb="$out_dir/${pkg}_${version}-${release}_${arch}.deb"
    local compress=()
    [[ -n "$fast" ]] && compress=(-Zgzip -z1)
    dpkg-deb --root-owner-group "${compress[@]}" --build "$tree" "$deb" >/dev/null
    rm -rf "$tree"
    log "built $deb"
}

# --- .rpm ----------------------------------------------------------------------

build_rpm() {
    local pkg="$1" top="$work/$1/rpmbuild" spec arch="$rpm_arch" pair dir path req
    [[ -n "$PKG_ARCH_INDEP" ]] && arch=noarch
    mkdir -p "$top"/{BUILD,BUILDROOT,RPMS,SPECS,SOURCES,SRPMS}
    spec="$top/SPECS/$pkg.spec"
    {
        # Prebuilt files: no debuginfo subpackage, no strip/compress post-processing.
        echo '%global debug_package %{nil}'
        echo '%global __os_install_post %{nil}'
        echo '%global _build_id_links none'
        echo "Name: $pkg"
        echo "Version: $version"
        echo "Release: $release"
        echo "Summary: $PKG_SUMMARY"
        echo "License: Apache-2.0"
        echo "URL: https://kubernetes.io"
        echo "BuildArch: $arch"
        for req in "${PKG_RPM_REQUIRES[@]}"; do echo "Requires: $req"; done
        for req in "${PKG_RPM_RECOMMENDS[@]}"; do echo "Recommends: $req"; done
        echo
        echo '%description'
        echo "$PKG_DESCRIPTION"
        echo
        echo '%install'
        echo 'mkdir -p %{buildroot}'
        echo "cp -a '$work/$pkg/root/.' %{buildroot}/"
        echo
        if [[ -n "$PKG_UNIT" ]]; then
            local running="[ -d /run/systemd/system ]"
            echo '%post'
            echo "if $running; then systemctl daemon-reload >/dev/null 2>&1 || :; fi"
            echo '%preun'
            echo "if [ \$1 -eq 0 ] && $running; then systemctl stop $PKG_UNIT >/dev/null 2>&1 || :; fi"
            echo '%postun'
            echo "if $running; then systemctl daemon-reload >/dev/null 2>&1 || :; fi"
            echo
        fi
        echo '%files'
        [[ -n "$PKG_BIN" ]] && echo "%attr(0755,root,root) /usr/bin/$PKG_BIN"
        [[ -n "$PKG_UNIT" ]] && echo "%attr(0644,root,root) /usr/lib/systemd/system/$PKG_UNIT"
        for pair in "${PKG_CONFIGS[@]}"; do
            path="${pair#*:}"
            echo "%dir $(dirname "$path")"
            echo "%config(noreplace) %attr(0644,root,root) $path"
        done
        for dir in "${PKG_DIRS[@]}"; do echo "%dir %attr(0755,root,root) $dir"; done
    } >"$spec"
    local payload=()
    [[ -n "$fast" ]] && payload=(--define "_binary_payload w1.gzdio")
    rpmbuild -bb --quiet --nodeps \
        --define "_topdir $top" \
        --define "_rpmdir $out_dir" \
        --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
        --buildroot "$top/BUILDROOT/$pkg" \
        "${payload[@]}" "$spec" >"$top/rpmbuild.log" 2>&1 ||
        { cat "$top/rpmbuild.log" >&2; die "rpmbuild $pkg failed"; }
    log "built $out_dir/$pkg-$version-$release.$arch.rpm"
}

# --- main ----------------------------------------------------------------------

packages=(kubernetes-common kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy flanneld kube-dns kubectl kubernetes-master kubernetes-node)
built=()
for pkg in "${packages[@]}"; do
    describe "$pkg"
    if [[ -n "$PKG_BIN" && ! -x "$bin_dir/$PKG_BIN" ]]; then
        case "$pkg" in
            kubectl | kube-dns)
                log "skipping $pkg: $bin_dir/$PKG_BIN does not exist (yet)"
                continue
                ;;
            *) die "$bin_dir/$PKG_BIN not found: build it first (cargo build --bins)" ;;
        esac
    fi
    # Older builds of the same package would be confusing next to the new ones.
    rm -f "$out_dir/${pkg}_"*.deb "$out_dir/$pkg-"[0-9]*.rpm
    stage "$pkg"
    for f in $formats; do "build_$f" "$pkg"; done
    rm -rf "${work:?}/$pkg"
    built+=("$pkg")
done
log "${#built[@]} packages ($formats), version $version-$release, in $out_dir"
