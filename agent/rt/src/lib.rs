//! sealgate-rt: program start without libc, for the no_std guest binary.
//!
//! `origin` provides `_start`: it reads the kernel's initial stack (argc, argv, envp,
//! auxv), sets up what Rust code needs and calls `origin_main`. The [`program!`]
//! macro defines, in the binary crate, `origin_main` (handing over to [`start`]), the panic
//! handler ([`panic`]: message on stderr, then abort), the global allocator (dlmalloc over
//! mmap, through rustix: [`Allocator`]) and the `rust_eh_personality` symbol that the precompiled `core`
//! and `alloc` name but that a `panic = "abort"` build never calls.
//!
//! The binary stays `#![forbid(unsafe_code)]`: the few unsafe lines are here, in the
//! macro's expansion and in [`start`], each with its argument.

#![no_std]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ffi::CStr;
use core::sync::atomic::{AtomicBool, Ordering};
use rustix_dlmalloc::Dlmalloc;

pub use origin;

/// The global allocator: dlmalloc (Doug Lea's allocator, as Rust's own wasm and SGX targets
/// use it), taking its memory from the kernel with mmap through rustix, behind a spin lock.
/// The guest binary has one thread, so the lock is never contended; it is there so that
/// `Sync` is honest rather than assumed.
pub struct Allocator {
    locked: AtomicBool,
    heap: UnsafeCell<Dlmalloc>,
}

// SAFETY: every access to `heap` happens between a successful acquire of `locked` (an
// atomic compare-exchange with Acquire ordering) and its Release store, so no two threads
// ever touch the dlmalloc state at once.
unsafe impl Sync for Allocator {}

impl Allocator {
    /// An empty heap.
    pub const fn new() -> Self {
        Allocator {
            locked: AtomicBool::new(false),
            heap: UnsafeCell::new(Dlmalloc::new()),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Dlmalloc) -> T) -> T {
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        // SAFETY: the lock is held (see `impl Sync`), so this is the only reference to
        // the heap until the Release store below.
        let r = f(unsafe { &mut *self.heap.get() });
        self.locked.store(false, Ordering::Release);
        r
    }
}

impl Default for Allocator {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: dlmalloc returns blocks of at least `layout.size()` bytes aligned to
// `layout.align()` (or null), and `dealloc`/`realloc` hand back exactly the pointers and
// layouts that `GlobalAlloc`'s contract guarantees came from this allocator.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded under GlobalAlloc's contract (non-zero size).
        self.with(|h| unsafe { h.malloc(layout.size(), layout.align()) })
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        self.with(|h| unsafe { h.calloc(layout.size(), layout.align()) })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by this allocator with `layout` (caller's contract).
        self.with(|h| unsafe { h.free(ptr, layout.size(), layout.align()) })
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr`/`layout` came from this allocator and `new_size` is non-zero
        // (caller's contract).
        self.with(|h| unsafe { h.realloc(ptr, layout.size(), layout.align(), new_size) })
    }
}

/// The process's arguments and environment, copied out of the initial stack at start.
/// Bytes that are not UTF-8 are replaced (U+FFFD): sealgate's own arguments and variables
/// are ASCII, and the next init's argv is passed on as received only if it is UTF-8.
#[derive(Debug)]
pub struct Process {
    /// `argv`, including `argv[0]`.
    pub args: Vec<String>,
    /// `envp` entries, `NAME=value`.
    pub env: Vec<String>,
}

impl Process {
    /// The value of environment variable `name`.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.env.iter().find_map(|kv| {
            kv.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('='))
        })
    }
}

/// Collects a NULL-terminated array of C strings.
///
/// # Safety
/// `array` must be null or point to a NULL-terminated array of pointers to NUL-terminated
/// strings that stay valid for the duration of the call.
unsafe fn collect(array: *mut *mut u8) -> Vec<String> {
    let mut out = Vec::new();
    if array.is_null() {
        return out;
    }
    let mut i = 0;
    loop {
        // SAFETY: `array` is NULL-terminated (caller's contract), and we stop at the NULL,
        // so every index read is inside it.
        let p = unsafe { *array.add(i) };
        if p.is_null() {
            return out;
        }
        // SAFETY: each non-NULL entry points to a NUL-terminated string (caller's contract).
        let s = unsafe { CStr::from_ptr(p.cast()) };
        out.push(String::from_utf8_lossy(s.to_bytes()).into_owned());
        i += 1;
    }
}

/// Called by the `origin_main` that [`program!`] defines: copies argv and
/// envp, makes sure fds 0-2 are open, runs `main` and exits with its status.
///
/// # Safety
/// `argv` and `envp` must be the pointers origin passes to `origin_main` (from the
/// kernel's initial stack: NULL-terminated arrays of NUL-terminated strings).
#[doc(hidden)]
pub unsafe fn start(argv: *mut *mut u8, envp: *mut *mut u8, main: fn(Process) -> i32) -> i32 {
    sealgate_linux::stdio::ensure_open();
    // SAFETY: origin passes the kernel's argv and envp, which satisfy `collect`'s contract
    // and live for the whole process.
    let process = unsafe {
        Process {
            args: collect(argv),
            env: collect(envp),
        }
    };
    main(process)
}

/// The panic handler's body: the message (code locations and the panic's own text, which
/// sealgate never builds from secret material) on stderr, then SIGABRT. Core dumps are
/// the kernel's business; a PID 1 that ignores SIGABRT exits instead.
#[doc(hidden)]
pub fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    sealgate_linux::eprintln!("{}: panic: {}", sealgate_linux::log::program(), info);
    let _ =
        rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::ABORT);
    rustix::runtime::exit_group(134)
}

/// Defines the program's entry point, panic handler and allocator for a `no_std`,
/// `no_main` binary: `sealgate_linux::program!(main)` with `fn main(Process) -> i32`.
#[macro_export]
macro_rules! program {
    ($main:path) => {
        /// Called by origin's `_start`.
        #[unsafe(no_mangle)]
        unsafe fn origin_main(_argc: usize, argv: *mut *mut u8, envp: *mut *mut u8) -> i32 {
            // SAFETY: origin passes the kernel's argv/envp, as `start` requires.
            unsafe { $crate::start(argv, envp, $main) }
        }

        #[panic_handler]
        fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
            $crate::panic(info)
        }

        #[global_allocator]
        static GLOBAL_ALLOCATOR: $crate::Allocator = $crate::Allocator::new();

        /// Named by the precompiled `core`/`alloc` (built with unwinding); never called in
        /// a `panic = "abort"` binary, which cannot unwind.
        #[unsafe(no_mangle)]
        extern "C" fn rust_eh_personality() {}
    };
}
