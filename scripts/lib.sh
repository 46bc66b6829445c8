# shellcheck shell=bash disable=SC2034
# Shared helpers for the project's scripts (sourced, not run).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="${SEALGATE_SHARED:-$ROOT/../shared}"
TARGET=x86_64-unknown-linux-gnu
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# cargo's target directory: $CARGO_TARGET_DIR if set, else the workspace's target/. A
# relative CARGO_TARGET_DIR is taken against the directory the script was started from (as
# cargo would take it there) and exported absolute, so that every cargo run below (they run
# after `cd "$ROOT"`) and every path we derive agree on one directory.
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
    case "$CARGO_TARGET_DIR" in
        /*) ;;
        *) CARGO_TARGET_DIR="$PWD/$CARGO_TARGET_DIR" ;;
    esac
    export CARGO_TARGET_DIR
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# Host binaries (cargo build --release without --target).
HOST_RELEASE="$TARGET_DIR/release"

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# build_guest PROFILE [CARGO ARGS...]: builds the guest binary with a cargo profile
# (release, or release-symbols: the same code with its symbol table) and prints its path.
# --target keeps build scripts and proc macros dynamic; only the agent is static.
build_guest() {
    local profile="$1"; shift
    cargo build --profile "$profile" --locked -p sealgate --bin sealgate --target "$TARGET" "$@" >&2
    echo "$TARGET_DIR/$TARGET/$profile/sealgate"
}

# The guest binary as shipped: static, size-optimised, stripped release profile.
build_static_agent() {
    build_guest release
}

# The P-256-only guest binary (--no-default-features: no RSA-OAEP-256, no P-521 tee keys).
# cargo writes it to the same path as the default build, so it is copied aside to
# sealgate-p256 and the default build is put back (both stay cached: no rebuild).
build_p256_agent() {
    local bin
    bin=$(build_guest release --no-default-features)
    cp "$bin" "$bin-p256"
    build_guest release >/dev/null
    echo "$bin-p256"
}

# The same binary with its symbol table (profile release-symbols): for check_no_c and the
# size table. Built into its own profile directory, so the shipped binary is untouched.
build_symbols_agent() {
    build_guest release-symbols
}

# check_no_c BINARY [UNSTRIPPED]: proves that the guest binary holds no C code (exit 0),
# or says what it found (exit 1). Prints one line either way.
#  1. no INTERP program header: nothing (ld.so, i.e. glibc) loads it;
#  2. no NEEDED entry: it links no shared library;
#  3. in the unstripped build (same code, symbol table kept), none of the symbols that only
#     a C library or the C start files define. The list is of names that are glibc's own
#     internals, so that no Rust crate (origin, rustix, a Rust allocator, compiler-builtins'
#     memcpy/memset, which are Rust) can trip it, while any static glibc drags several in:
#       __libc_*      glibc internals, __libc_start_main (the C start) among them
#       __GI_*        glibc's internal hidden aliases
#       _IO_*         glibc stdio (_IO_stdin_used comes with crt1.o)
#       _dl_*         the dynamic loader, linked into every static glibc binary too
#       _nl_*         glibc locales
#       __nptl_*, __pthread_*  glibc's threads
#       __tunable*    glibc tunables
#       __errno_location, main_arena, _int_malloc, __malloc_*, malloc_consolidate
#                     glibc's errno and malloc (a Rust allocator defines none of these)
#       __memcpy_*, __memset_*, __memmove_*, __strlen_*  glibc's ifunc string variants
#       __cxa_thread_atexit_impl  glibc's thread-local destructors
#       _init, _fini, frame_dummy, register_tm_clones, deregister_tm_clones,
#       __do_global_dtors_aux  the C start files (crti.o, crtbegin.o); origin's _start
#                     is Rust and is not listed
#  4. no ".comment" note from a C compiler ("GCC:" or "clang version"): every object
#     compiled from C leaves one; Rust objects say "rustc version" and the linker adds none.
check_no_c() {
    local bin="$1" syms="${2:-$1}" found=() phdrs dynamic symbols nm_ok=1 hits comment
    if [ ! -f "$bin" ] || [ ! -f "$syms" ]; then
        echo "cannot check for C code: no binary at '$bin' or '$syms'"
        return 1
    fi
    # Captured first: `cmd | grep -q` under pipefail fails when grep stops reading early.
    phdrs=$(readelf -lW "$bin") dynamic=$(readelf -dW "$bin")
    symbols=$(nm --defined-only "$syms" 2>&1) || nm_ok=0
    comment=$(readelf -p .comment "$syms" 2>/dev/null || true)
    grep -q '^ *INTERP ' <<<"$phdrs" && found+=("an INTERP program header (needs ld.so)")
    if grep -q '(NEEDED)' <<<"$dynamic"; then
        found+=("NEEDED $(sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' <<<"$dynamic" | paste -sd, -)")
    fi
    if [ "$nm_ok" = 0 ] || grep -q 'no symbols' <<<"$symbols"; then
        found+=("no symbol table in $syms to check (use the release-symbols build)")
    else
        hits=$(awk '{print $NF}' <<<"$symbols" | grep -E "$NO_C_SYMBOLS" | sort -u || true)
        if [ -n "$hits" ]; then
            # The most telling ones first: the C start, errno, malloc, the loader.
            hits=$(grep -E '^(__libc_start_main|__errno_location|_int_malloc|_dl_relocate_static_pie|_init)$' <<<"$hits" || true
                grep -vE '^(__libc_start_main|__errno_location|_int_malloc|_dl_relocate_static_pie|_init)$' <<<"$hits" || true)
            found+=("$(grep -c . <<<"$hits") glibc/C-runtime symbols ($(head -n 6 <<<"$hits" | paste -sd' ' -) ...)")
        fi
    fi
    comment=$(grep -oE '(GCC: |clang version ).*' <<<"$comment" | sort -u | paste -sd'|' - || true)
    [ -n "$comment" ] && found+=("objects compiled from C (.comment: $comment)")
    if [ ${#found[@]} -eq 0 ]; then
        echo "no C code: no INTERP, no NEEDED, no libc symbols"
        return 0
    fi
    printf 'C code found in %s:' "$(basename "$bin")"
    printf ' %s;' "${found[@]}"
    echo
    return 1
}
NO_C_SYMBOLS='^(__libc_|__GI_|_IO_|_dl_|_nl_|__nptl_|__pthread_|__tunable|__memcpy_|__memset_|__memmove_|__strlen_|__malloc_)|^(__errno_location|main_arena|_int_malloc|malloc_consolidate|__cxa_thread_atexit_impl|_init|_fini|frame_dummy|register_tm_clones|deregister_tm_clones|__do_global_dtors_aux)$'

# Release builds of the host tools (dynamic; they never go into a guest).
build_host_tools() {
    cargo build --release --locked -p sealctl --bin sealctl -p test-kbs --bin test-kbs >&2
}

# Starts the test KBS in the background on a free loopback port; sets KBS_URL and KBS_PID.
start_test_kbs() {
    local ready="$1"; shift
    rm -f "$ready"
    "$HOST_RELEASE/test-kbs" --listen 127.0.0.1:0 --ready-file "$ready" "$@" >/dev/null &
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
