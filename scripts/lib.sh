# Shared helpers for the project's scripts (sourced, not run).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="${SEALGATE_SHARED:-$ROOT/../shared}"
TARGET=x86_64-unknown-linux-gnu
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The guest binary as shipped: static (+crt-static), size-optimised release profile.
# --target keeps build scripts and proc macros dynamic; only the agent is static.
build_static_agent() {
    RUSTFLAGS="-C target-feature=+crt-static" \
        cargo build --release --locked -p sealgate --bin sealgate --target "$TARGET"
    echo "$ROOT/target/$TARGET/release/sealgate"
}

# Release builds of the host tools (dynamic; they never go into a guest).
build_host_tools() {
    cargo build --release --locked -p sealgate --bin sealctl -p test-kbs --bin test-kbs >&2
}

# Starts the test KBS in the background on a free loopback port; sets KBS_URL and KBS_PID.
start_test_kbs() {
    local ready="$1"; shift
    rm -f "$ready"
    "$ROOT/target/release/test-kbs" --listen 127.0.0.1:0 --ready-file "$ready" "$@" >/dev/null &
    KBS_PID=$!
    for _ in $(seq 100); do
        [ -s "$ready" ] && break
        kill -0 "$KBS_PID" 2>/dev/null || die "the test KBS exited at start-up"
        sleep 0.05
    done
    [ -s "$ready" ] || die "the test KBS did not start"
    KBS_URL=$(cat "$ready")
}

# Runs a command in a private mount namespace, so the tmpfs sealgate mounts disappears
# with it: as root a plain mount namespace, otherwise a user namespace mapping us to root.
in_mount_namespace() {
    if [ "$(id -u)" = 0 ]; then
        unshare --mount --propagation private -- "$@"
    else
        unshare --user --map-root-user --mount -- "$@"
    fi
}
