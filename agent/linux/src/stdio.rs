//! Standard output and error without libc: whole buffers through write(2), retried on
//! `EINTR` and short writes, and `print!`-style macros for the no_std binaries.

use alloc::string::String;
use core::fmt;
use rustix::fd::BorrowedFd;
use rustix::io::Errno;

/// File descriptor 1.
// rustix makes these safe when something else in the build enables its `std` feature.
#[allow(unsafe_code, unused_unsafe)]
pub fn stdout() -> BorrowedFd<'static> {
    // SAFETY: nothing in sealgate closes fd 1, and `ensure_open` (called first thing at
    // start) makes sure it is open, so a later open(2) can never be handed number 1 and
    // have log or stdout bytes land in it.
    unsafe { rustix::stdio::stdout() }
}

/// File descriptor 2.
#[allow(unsafe_code, unused_unsafe)]
pub fn stderr() -> BorrowedFd<'static> {
    // SAFETY: as for `stdout`: fd 2 is never closed and `ensure_open` opened it if the
    // process started without it.
    unsafe { rustix::stdio::stderr() }
}

/// Makes sure fds 0, 1 and 2 are open (on `/dev/null` if they were not), so that no file
/// sealgate opens later (a secret, a config file) can become stdout or stderr. The kernel
/// starts PID 1 with them open on the console when it has one, but not always.
pub fn ensure_open() {
    use rustix::fs::{Mode, OFlags};
    for fd in 0..3 {
        if rustix::io::fcntl_getfd(raw(fd)).is_ok() {
            continue;
        }
        // open(2) returns the lowest free number, which is `fd` itself.
        match rustix::fs::open("/dev/null", OFlags::RDWR | OFlags::NOCTTY, Mode::empty()) {
            Ok(owned) => core::mem::forget(owned),
            // Nothing to fall back to without /dev: the next open would take this number,
            // so stop rather than run with log output going into a file.
            Err(_) => rustix::runtime::exit_group(125),
        }
    }
}

#[allow(unsafe_code)]
fn raw(fd: i32) -> BorrowedFd<'static> {
    // SAFETY: only used with fcntl(F_GETFD), which reports EBADF for a closed number and
    // has no effect otherwise; the borrow does not outlive the call.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Writes all of `bytes` to `fd`.
pub fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> Result<(), Errno> {
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Formats `args` and writes the result to `fd` in one write(2) where it fits, so lines
/// from concurrent writers do not interleave. Errors are ignored, as `eprint!` does not
/// panic on a closed stderr here: there is nowhere left to report them.
pub fn write_fmt(fd: BorrowedFd<'_>, args: fmt::Arguments<'_>) -> Result<(), Errno> {
    let mut line = String::new();
    fmt::write(&mut line, args).map_err(|_| Errno::INVAL)?;
    write_all(fd, line.as_bytes())
}

/// `print!` to stdout (errors ignored).
#[macro_export]
macro_rules! print {
    ($($t:tt)*) => { let _ = $crate::stdio::write_fmt($crate::stdio::stdout(), format_args!($($t)*)); }
}
/// `println!` to stdout (errors ignored).
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($t:tt)*) => { let _ = $crate::stdio::write_fmt($crate::stdio::stdout(), format_args!("{}\n", format_args!($($t)*))); }
}
/// `eprint!` to stderr (errors ignored).
#[macro_export]
macro_rules! eprint {
    ($($t:tt)*) => { let _ = $crate::stdio::write_fmt($crate::stdio::stderr(), format_args!($($t)*)); }
}
/// `eprintln!` to stderr (errors ignored).
#[macro_export]
macro_rules! eprintln {
    () => { $crate::eprint!("\n") };
    ($($t:tt)*) => { let _ = $crate::stdio::write_fmt($crate::stdio::stderr(), format_args!("{}\n", format_args!($($t)*))); }
}
