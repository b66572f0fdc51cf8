#!/usr/bin/env bash
# Run every test: build all binaries, verify the systemd units, then run the
# workspace's tests (cargo nextest when installed, else cargo test).
# Arguments replace the default `--workspace` selection of the test runner,
# e.g. `scripts/test.sh -p api-types`.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
ensure_cargo_on_path

# A CI machine builds once from scratch: incremental state would only cost disk
# (8 GB for this workspace).
if [[ -n "${CI:-}" ]]; then
    export CARGO_INCREMENTAL=0
fi

# Binaries and test targets in one build, so that the binaries are built with
# the same (dev-dependency-unified) features the test run uses and are not
# compiled twice.
log "cargo build --workspace --bins --tests"
cargo build --workspace --bins --tests

# systemd-analyze verify checks that ExecStart= points at an executable, so each
# unit is checked as a temp copy whose /usr/bin/<name> is rewritten to the
# freshly built target/debug/<name>. Any output (warnings too) is a failure:
# verify exits 0 on unknown keys and bad values.
verify_units() {
    local bin_dir="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug"
    local units=() unit tmp name path out failed=0
    shopt -s nullglob
    units=(systemd/*.service systemd/*.socket systemd/*.timer systemd/*.target)
    shopt -u nullglob
    if ((${#units[@]} == 0)); then
        log "no systemd units to verify"
        return 0
    fi
    if ! have systemd-analyze; then
        warn "systemd-analyze not found (install package systemd): skipping unit verification"
        return 0
    fi
    tmp="$(mktemp -d)"
    for unit in "${units[@]}"; do
        cp "$unit" "$tmp/"
        while read -r path; do
            name="${path#/usr/bin/}"
            if [[ -x "$bin_dir/$name" ]]; then
                sed -i "s|$path\\b|$bin_dir/$name|g" "$tmp/$(basename "$unit")"
            fi
        done < <(grep -o '/usr/bin/[A-Za-z0-9_.-]*' "$unit" | sort -u)
        if out="$(systemd-analyze verify --man=no "$tmp/$(basename "$unit")" 2>&1)" && [[ -z "$out" ]]; then
            log "systemd-analyze verify $unit: ok"
        else
            printf '%s\n' "$out" >&2
            warn "systemd-analyze verify $unit: FAILED"
            failed=1
        fi
    done
    rm -rf "$tmp"
    return "$failed"
}
verify_units || die "systemd unit verification failed"

# STYLE.md: rustfmt defaults and `cargo clippy -- -D warnings` clean, benches and
# tests included (a bench nobody builds otherwise still has to compile).
lint() {
    if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
        warn "rustfmt or clippy not installed (rustup component add rustfmt clippy): skipping lint"
        return 0
    fi
    log "cargo fmt --all --check"
    cargo fmt --all --check || return 1
    log "cargo clippy --workspace --all-targets -- -D warnings"
    cargo clippy --workspace --all-targets -- -D warnings
}
lint || die "lint failed (cargo fmt --all fixes formatting)"

# The test runner goes last so its summary is the closing output.
if (($# == 0)); then
    set -- --workspace
fi
if cargo nextest --version >/dev/null 2>&1; then
    log "cargo nextest run $*"
    cargo nextest run "$@"
else
    # Doc-tests are left out: they would close the output with "0 passed".
    log "cargo test $* (cargo-nextest not installed)"
    cargo test --lib --bins --tests "$@"
fi
