//! sealgate-rt: program start without libc, for the no_std guest binary.
//!
//! `origin` provides `_start`: it reads the kernel's initial stack (argc, argv, envp,
//! auxv), sets up what Rust code needs and calls `origin_main`. The [`program!`]
//! macro defines, in the binary crate, `origin_main` (handing over to [`start`]), the panic
//! handler ([`panic`]: message on stderr, then abort), the global allocator (dlmalloc over
//! mmap, through rustix) and the `rust_eh_personality` symbol that the precompiled `core`
//! and `alloc` name but that a `panic = "abort"` build never calls.
//!
//! The binary stays `#![forbid(unsafe_code)]`: the few unsafe lines are here, in the
//! macro's expansion and in [`start`], each with its argument.

#![no_std]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::ffi::CStr;

pub use origin;
pub use rustix_dlmalloc;

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
        static GLOBAL_ALLOCATOR: $crate::rustix_dlmalloc::GlobalDlmalloc =
            $crate::rustix_dlmalloc::GlobalDlmalloc;

        /// Named by the precompiled `core`/`alloc` (built with unwinding); never called in
        /// a `panic = "abort"` binary, which cannot unwind.
        #[unsafe(no_mangle)]
        extern "C" fn rust_eh_personality() {}
    };
}
