//! Running one helper program of the image (`mkfs.ext4` for a fresh secure-storage
//! volume) to completion: fork, exec, collect its output line by line, wait with a
//! deadline. No shell, no `PATH` search: the caller names the program by its absolute path
//! and passes the whole argv and environment.
//!
//! The child gets stdin at end of file, stdout and stderr into one pipe (the parent hands
//! each line to the caller, which logs it), and no other descriptor (everything sealgate
//! opens is close-on-exec). Whether the exec worked is learned through a close-on-exec
//! status pipe: it closes on success, and carries the errno on failure, so a missing
//! program is an error of its own rather than an exit status.
//!
//! Between fork and exec the child only makes system calls (no allocation, no lock: the
//! parent may have other threads, e.g. in tests), on data prepared before the fork.

use alloc::ffi::CString;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;
use rustix::event::{PollFd, PollFlags, poll};
use rustix::fd::{AsFd, OwnedFd};
use rustix::io::Errno;
use rustix::pipe::{PipeFlags, pipe_with};
use rustix::process::{Pid, Signal, WaitOptions, WaitStatus};

use crate::process::{cstrings, pointers};
use crate::time::Instant;

/// The longest output line handed on (longer lines are cut).
pub const MAX_LINE: usize = 512;

/// Why the program did not run to a successful end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpawnError {
    /// An argument, environment entry or the path holds a NUL byte.
    Nul,
    /// A pipe or the fork failed.
    Setup {
        /// Which step.
        step: &'static str,
        /// Why.
        errno: Errno,
    },
    /// `execve` failed in the child (e.g. `ENOENT`).
    Exec {
        /// The program.
        program: String,
        /// Why.
        errno: Errno,
    },
    /// It exited with a non-zero status.
    Exit {
        /// The program.
        program: String,
        /// The status.
        code: i32,
    },
    /// A signal ended it.
    Signal {
        /// The program.
        program: String,
        /// The signal number.
        signal: i32,
    },
    /// It ran past the deadline and was killed.
    Timeout {
        /// The program.
        program: String,
        /// The deadline, seconds.
        secs: u64,
    },
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::Nul => f.write_str("a program argument holds a NUL byte"),
            SpawnError::Setup { step, errno } => {
                write!(f, "cannot start a program: {step}: {}", crate::os(errno))
            }
            SpawnError::Exec { program, errno } => {
                write!(f, "cannot execute {program}: {}", crate::os(errno))
            }
            SpawnError::Exit { program, code } => {
                write!(
                    f,
                    "{program} failed with exit status {code} (its output is in the log)"
                )
            }
            SpawnError::Signal { program, signal } => {
                write!(f, "{program} was killed by signal {signal}")
            }
            SpawnError::Timeout { program, secs } => {
                write!(f, "{program} did not finish within {secs} s and was killed")
            }
        }
    }
}

impl core::error::Error for SpawnError {}

fn setup(step: &'static str) -> impl Fn(Errno) -> SpawnError {
    move |errno| SpawnError::Setup { step, errno }
}

/// Runs `path` with `argv` (`argv[0]` included) and `envp` (`NAME=value`), handing each
/// line it prints (stdout and stderr, cut at [`MAX_LINE`]) to `on_line`, and waits for it
/// at most `limit` (then kills it with `SIGKILL`). `Ok` only for exit status 0.
pub fn run<A: AsRef<[u8]>, E: AsRef<[u8]>>(
    path: &str,
    argv: &[A],
    envp: &[E],
    limit: Duration,
    mut on_line: impl FnMut(&str),
) -> Result<(), SpawnError> {
    let program = String::from(path);
    let c_path = CString::new(path).map_err(|_| SpawnError::Nul)?;
    let c_argv = cstrings(argv).ok_or(SpawnError::Nul)?;
    let c_envp = cstrings(envp).ok_or(SpawnError::Nul)?;
    let argv_ptrs = pointers(&c_argv);
    let envp_ptrs = pointers(&c_envp);
    let (in_r, in_w) = pipe_with(PipeFlags::CLOEXEC).map_err(setup("pipe"))?;
    let (out_r, out_w) = pipe_with(PipeFlags::CLOEXEC).map_err(setup("pipe"))?;
    let (st_r, st_w) = pipe_with(PipeFlags::CLOEXEC).map_err(setup("pipe"))?;

    // The child below only makes system calls on values prepared before the fork
    // (the C strings and pointer arrays, owned by this frame and not touched by the
    // parent until it has waited for the child, and file descriptors it owns a copy of),
    // then either execs or exits with `exit_group`: it allocates nothing, takes no lock
    // and runs no destructor, so no state another thread of the parent held at the fork
    // can be observed half-changed (see `fork`).
    let fork = fork().map_err(setup("fork"))?;
    let pid = match fork {
        rustix::runtime::Fork::Child(_) => child(
            &c_path,
            &argv_ptrs,
            &envp_ptrs,
            in_r.as_fd(),
            out_w.as_fd(),
            st_w.as_fd(),
        ),
        rustix::runtime::Fork::ParentOf(pid) => pid,
    };
    drop((in_r, in_w, out_w, st_w));

    // The status pipe closes at a successful exec, or carries the errno of a failed one.
    let mut errno = [0u8; 4];
    let n = crate::fs::retry(|| rustix::io::read(&st_r, &mut errno)).unwrap_or(0);
    if n == 4 {
        let _ = reap(pid, Instant::now() + Duration::from_secs(5));
        return Err(SpawnError::Exec {
            program,
            errno: Errno::from_raw_os_error(i32::from_ne_bytes(errno)),
        });
    }

    let deadline = Instant::now() + limit;
    let timed_out = !drain(&out_r, deadline, &mut on_line);
    let status = if timed_out { None } else { reap(pid, deadline) };
    let Some(status) = status else {
        let _ = rustix::process::kill_process(pid, Signal::KILL);
        let _ = rustix::process::waitpid(Some(pid), WaitOptions::empty());
        return Err(SpawnError::Timeout {
            program,
            secs: limit.as_secs(),
        });
    };
    match (status.exit_status(), status.terminating_signal()) {
        (Some(0), _) => Ok(()),
        (Some(code), _) => Err(SpawnError::Exit { program, code }),
        (None, Some(signal)) => Err(SpawnError::Signal { program, signal }),
        (None, None) => Err(SpawnError::Exit { program, code: -1 }),
    }
}

#[allow(unsafe_code)]
fn fork() -> Result<rustix::runtime::Fork, Errno> {
    // SAFETY: the only caller, `run`, makes only system calls in the child on data it
    // prepared before this call (C strings, pointer arrays, descriptors), then execs or
    // exits with `exit_group`: no allocation, no lock, no destructor runs in the child,
    // so no state another thread of the parent held at the fork is observed
    // half-changed, and no memory is shared with the parent (a private copy).
    unsafe { rustix::runtime::kernel_fork() }
}

/// The child's side: wire up stdin/stdout/stderr, exec; on failure report the errno on
/// the status pipe and exit 127.
fn child(
    path: &CString,
    argv: &[*const u8],
    envp: &[*const u8],
    stdin: rustix::fd::BorrowedFd<'_>,
    out: rustix::fd::BorrowedFd<'_>,
    status: rustix::fd::BorrowedFd<'_>,
) -> ! {
    let wired = rustix::stdio::dup2_stdin(stdin)
        .and_then(|()| rustix::stdio::dup2_stdout(out))
        .and_then(|()| rustix::stdio::dup2_stderr(out));
    let errno = match wired {
        Err(e) => e,
        Ok(()) => {
            // The program gets the resource limits sealgate started with.
            let limits = crate::hygiene::for_exec();
            core::mem::forget(limits);
            execve(path, argv, envp)
        }
    };
    let _ = rustix::io::write(status, &errno.raw_os_error().to_ne_bytes());
    rustix::runtime::exit_group(127)
}

#[allow(unsafe_code)]
fn execve(path: &CString, argv: &[*const u8], envp: &[*const u8]) -> Errno {
    // SAFETY: `argv` and `envp` each end with a null pointer (`pointers`) and every other
    // entry points into a NUL-terminated `CString` that `run`'s frame owns and keeps
    // alive (this process is the child's copy of it, and `child` never returns); the
    // kernel only reads through them.
    unsafe { rustix::runtime::execve(path, argv.as_ptr(), envp.as_ptr()) }
}

/// Reads the output pipe to its end, handing on lines; `false` if the deadline came first.
fn drain(out: &OwnedFd, deadline: Instant, on_line: &mut impl FnMut(&str)) -> bool {
    let mut line: Vec<u8> = Vec::with_capacity(MAX_LINE);
    let mut cut = false;
    let mut buf = [0u8; 1024];
    let mut emit = |line: &mut Vec<u8>, cut: &mut bool| {
        if !line.is_empty() || *cut {
            on_line(&String::from_utf8_lossy(line));
        }
        line.clear();
        *cut = false;
    };
    loop {
        let left = deadline.saturating_duration_until();
        if left.is_zero() {
            return false;
        }
        let timeout = rustix::time::Timespec {
            tv_sec: left.as_secs().min(3600) as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [PollFd::new(out, PollFlags::IN)];
        match poll(&mut fds, Some(&timeout)) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(Errno::INTR) => continue,
            Err(_) => return true,
        }
        match rustix::io::read(out, &mut buf) {
            Ok(0) => {
                emit(&mut line, &mut cut);
                return true;
            }
            Ok(n) => {
                for &b in &buf[..n] {
                    if b == b'\n' {
                        emit(&mut line, &mut cut);
                    } else if line.len() < MAX_LINE {
                        line.push(b);
                    } else {
                        cut = true;
                    }
                }
            }
            Err(Errno::INTR | Errno::AGAIN) => {}
            Err(_) => {
                emit(&mut line, &mut cut);
                return true;
            }
        }
    }
}

/// Waits for `pid` to end, until `deadline`; `None` if it is still running then.
fn reap(pid: Pid, deadline: Instant) -> Option<WaitStatus> {
    let mut pause = Duration::from_millis(1);
    loop {
        match rustix::process::waitpid(Some(pid), WaitOptions::NOHANG) {
            Ok(Some((_, status))) => return Some(status),
            Ok(None) => {}
            Err(Errno::INTR) => continue,
            Err(_) => return None,
        }
        if deadline.saturating_duration_until().is_zero() {
            return None;
        }
        crate::time::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use alloc::vec;

    fn sh(script: &str, limit: Duration) -> (Result<(), SpawnError>, Vec<String>) {
        let mut lines = vec![];
        let r = run(
            "/bin/sh",
            &["sh", "-c", script],
            &["PATH=/bin:/usr/bin", "SG=two words"],
            limit,
            |l| lines.push(String::from(l)),
        );
        (r, lines)
    }

    #[test]
    fn output_lines_and_status() {
        let (r, lines) = sh(
            "echo one; echo \"$SG\" >&2; printf 'no newline'; read x || echo eof",
            Duration::from_secs(60),
        );
        assert_eq!(r, Ok(()));
        assert_eq!(lines, ["one", "two words", "no newlineeof"]);
        let (r, _) = sh("exit 3", Duration::from_secs(60));
        assert_eq!(
            r,
            Err(SpawnError::Exit {
                program: "/bin/sh".into(),
                code: 3
            })
        );
        let (r, _) = sh("kill -TERM $$", Duration::from_secs(60));
        assert_eq!(
            r,
            Err(SpawnError::Signal {
                program: "/bin/sh".into(),
                signal: 15
            })
        );
        let long = "x".repeat(2000);
        let (r, lines) = sh(&std::format!("echo {long}"), Duration::from_secs(60));
        assert_eq!(r, Ok(()));
        assert_eq!(lines, [&long[..MAX_LINE]]);
    }

    #[test]
    fn a_missing_program_is_an_exec_error() {
        let none: [&str; 0] = [];
        let r = run(
            "/no/such/mkfs",
            &["mkfs"],
            &none,
            Duration::from_secs(60),
            |_| {},
        );
        assert_eq!(
            r,
            Err(SpawnError::Exec {
                program: "/no/such/mkfs".into(),
                errno: Errno::NOENT
            })
        );
        assert_eq!(
            run("/bin/sh", &["a\0b"], &none, Duration::from_secs(60), |_| {}),
            Err(SpawnError::Nul)
        );
        assert!(
            r.unwrap_err().to_string().contains("/no/such/mkfs"),
            "names the program"
        );
    }

    #[test]
    fn a_program_past_its_deadline_is_killed() {
        let started = std::time::Instant::now();
        let (r, lines) = sh("echo started; exec sleep 600", Duration::from_millis(300));
        assert_eq!(
            r,
            Err(SpawnError::Timeout {
                program: "/bin/sh".into(),
                secs: 0
            })
        );
        assert_eq!(lines, ["started"]);
        // Killed, not waited for: far less than the sleep (a wide bound).
        assert!(started.elapsed() < std::time::Duration::from_secs(300));
    }
}
