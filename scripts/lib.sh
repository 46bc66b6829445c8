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
