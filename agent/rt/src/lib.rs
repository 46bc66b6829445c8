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
///
/// Every segment dlmalloc takes from the kernel is marked `MADV_DONTDUMP` and, when
/// `mlockall(MCL_FUTURE)` could not be used, locked here ([`Segments`]).
pub struct Allocator {
    locked: AtomicBool,
    heap: UnsafeCell<Dlmalloc<Segments>>,
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
            heap: UnsafeCell::new(Dlmalloc::new_with_allocator(Segments)),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Dlmalloc<Segments>) -> T) -> T {
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

/// Where dlmalloc gets its memory: anonymous private mappings, each kept out of core dumps
/// (`MADV_DONTDUMP`) and, if [`sealgate_linux::hygiene::lock_new_segments`] says so,
/// locked in RAM as it is touched (`mlock2(MLOCK_ONFAULT)`). Neither can fail in a way that
/// matters to the allocation: a refused lock is recorded for one warning at exit, a refused
/// `madvise` (kernels before 3.4) leaves `PR_SET_DUMPABLE` and `RLIMIT_CORE` as the guard.
/// Must not allocate or log (it runs under the allocator's lock).
pub struct Segments;

/// The page size dlmalloc rounds its requests to: 4 KiB, that of x86_64 (and the value
/// rustix-dlmalloc's own Linux allocator reports).
const PAGE: usize = 4096;

impl Segments {
    /// Marks `len` bytes at `ptr`, a mapping of ours, as secret-bearing.
    fn protect(ptr: *mut u8, len: usize) {
        // SAFETY: `ptr..ptr + len` is a mapping this allocator just created or resized;
        // MADV_DONTDUMP only sets a flag on it (contents and addresses are unchanged).
        let _ = unsafe { rustix::mm::madvise(ptr.cast(), len, rustix::mm::Advice::LinuxDontDump) };
        if sealgate_linux::hygiene::lock_new_segments() {
            // SAFETY: as above; locking changes neither contents nor addresses.
            let locked =
                unsafe { rustix::mm::mlock_with(ptr.cast(), len, rustix::mm::MlockFlags::ONFAULT) };
            if let Err(e) = locked {
                sealgate_linux::hygiene::note_segment_lock_refused(e);
            }
        }
    }
}

// SAFETY: `alloc` returns fresh, zeroed, read-write private mappings of the size it reports
// (flags 0: ours to release); `remap`, `free_part` and `free` act only on the mappings
// dlmalloc hands back, which came from `alloc`.
unsafe impl rustix_dlmalloc::Allocator for Segments {
    fn alloc(&self, size: usize) -> (*mut u8, usize, u32) {
        use rustix::mm::{MapFlags, ProtFlags};
        // SAFETY: a new anonymous mapping at an address the kernel picks overlaps nothing.
        let mapped = unsafe {
            rustix::mm::mmap_anonymous(
                core::ptr::null_mut(),
                size,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE,
            )
        };
        match mapped {
            Ok(ptr) => {
                Self::protect(ptr.cast(), size);
                (ptr.cast(), size, 0)
            }
            Err(_) => (core::ptr::null_mut(), 0, 0),
        }
    }

    fn remap(&self, ptr: *mut u8, oldsize: usize, newsize: usize, can_move: bool) -> *mut u8 {
        let flags = if can_move {
            rustix::mm::MremapFlags::MAYMOVE
        } else {
            rustix::mm::MremapFlags::empty()
        };
        // SAFETY: `ptr`/`oldsize` is one of our mappings (dlmalloc's contract); the kernel
        // moves it only if `can_move`, which dlmalloc allows only when nothing points in.
        match unsafe { rustix::mm::mremap(ptr.cast(), oldsize, newsize, flags) } {
            Ok(new) => {
                // mremap keeps the mapping's flags; marking the whole range again also
                // covers the grown part on every kernel.
                Self::protect(new.cast(), newsize);
                new.cast()
            }
            Err(_) => core::ptr::null_mut(),
        }
    }

    fn free_part(&self, ptr: *mut u8, oldsize: usize, newsize: usize) -> bool {
        // SAFETY: the tail `ptr + newsize .. ptr + oldsize` of one of our mappings is no
        // longer used by dlmalloc (its contract).
        unsafe { rustix::mm::munmap(ptr.wrapping_add(newsize).cast(), oldsize - newsize).is_ok() }
    }

    fn free(&self, ptr: *mut u8, size: usize) -> bool {
        // SAFETY: the whole mapping is no longer used by dlmalloc (its contract).
        unsafe { rustix::mm::munmap(ptr.cast(), size).is_ok() }
    }

    fn can_release_part(&self, _flags: u32) -> bool {
        true
    }

    fn allocates_zeros(&self) -> bool {
        true
    }

    fn page_size(&self) -> usize {
        PAGE
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

/// Called by the `origin_main` that [`program!`] defines: makes sure fds 0-2 are open,
/// hardens the process ([`sealgate_linux::hygiene::harden`]), copies argv and envp, runs
/// `main` and exits with its status.
///
/// # Safety
/// `argv` and `envp` must be the pointers origin passes to `origin_main` (from the
/// kernel's initial stack: NULL-terminated arrays of NUL-terminated strings).
#[doc(hidden)]
pub unsafe fn start(argv: *mut *mut u8, envp: *mut *mut u8, main: fn(Process) -> i32) -> i32 {
    sealgate_linux::stdio::ensure_open();
    // Before anything that could hold a secret is allocated (README, "Secret hygiene in
    // memory"): not dumpable, no core file, memory locked.
    sealgate_linux::hygiene::harden();
    // SAFETY: origin passes the kernel's argv and envp, which satisfy `collect`'s contract
    // and live for the whole process.
    let process = unsafe {
        Process {
            args: collect(argv),
            env: collect(envp),
        }
    };
    let status = main(process);
    sealgate_linux::hygiene::warn_if_heap_unlocked();
    status
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
