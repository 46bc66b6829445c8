# shellcheck shell=bash disable=SC2034
# Shared helpers for the qemu/ scripts (sourced, not run).
set -euo pipefail
QEMU_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$QEMU_DIR/.." && pwd)"
CACHE="${SEALGATE_CACHE:-$ROOT/.cache}"
# cargo's target directory, as scripts/lib.sh resolves it: $CARGO_TARGET_DIR (a relative
# one against the starting directory, exported absolute so that cargo, run after a cd,
# agrees), else the workspace's target/.
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
    case "$CARGO_TARGET_DIR" in
        /*) ;;
        *) CARGO_TARGET_DIR="$PWD/$CARGO_TARGET_DIR" ;;
    esac
    export CARGO_TARGET_DIR
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Installs the Debian packages that provide the given commands, if any is missing.
# Arguments are COMMAND:PACKAGE pairs (or /ABSOLUTE/PATH:PACKAGE).
apt_ensure() {
    local pair cmd missing=()
    for pair in "$@"; do
        cmd=${pair%%:*}
        if [[ $cmd == /* ]]; then
            [ -e "$cmd" ] && continue
        else
            command -v "$cmd" >/dev/null 2>&1 && continue
        fi
        missing+=("${pair#*:}")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || die "missing packages ${missing[*]} (run as root, or install them)"
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
