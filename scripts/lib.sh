# shellcheck shell=bash
# Shared helpers for the scripts in this directory. Source it:
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Repository root (the directory that holds this scripts/ directory).
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REPO_ROOT

log() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# have CMD: true when CMD is on PATH.
have() { command -v "$1" >/dev/null 2>&1; }

# rustup installs cargo under ~/.cargo/bin; a non-login shell may not have it on PATH.
ensure_cargo_on_path() {
    if ! have cargo && [[ -x "${HOME:-/root}/.cargo/bin/cargo" ]]; then
        PATH="${HOME:-/root}/.cargo/bin:$PATH"
        export PATH
    fi
}
