//! The process itself, without libc: who we are (PID 1 or not), the environment as the
//! kernel passed it, replacing ourselves with the next program (`execve(2)`), exiting, and
//! stopping the machine (`reboot(2)`).
//!
//! The init stage needs no child processes: it either execs the next init or powers off.
//! The server's one helper program (mkfs for secure storage) runs through [`crate::spawn`].

use alloc::ffi::CString;
use alloc::vec::Vec;
use core::ptr;
use rustix::io::Errno;

/// Whether this process is PID 1 (the first process of the machine or of its PID namespace).
pub fn is_init() -> bool {
    rustix::process::getpid().is_init()
}

/// The inode number of the initial PID namespace: `PROC_PID_INIT_INO` (0xEFFFFFFC) in
/// the kernel's `include/linux/proc_ns.h`, fixed since Linux 3.8 (the namespace files'
/// inode numbers of the initial namespaces are constants; all others are allocated).
pub const INITIAL_PID_NAMESPACE_INO: u64 = 0xEFFF_FFFC;

/// Whether this process lives in the initial PID namespace: `Some(true)` or
/// `Some(false)` from `/proc/self/ns/pid`, `None` when that cannot be read (no /proc).
pub fn in_initial_pid_namespace() -> Option<bool> {
    rustix::fs::stat("/proc/self/ns/pid")
        .ok()
        .map(|st| st.st_ino == INITIAL_PID_NAMESPACE_INO)
}

/// Whether this is the kernel's own PID 1: PID 1 and not inside a container's PID
/// namespace. The kernel starts `/init` (or `init=`) as PID 1 of the initial PID
/// namespace; a container's PID 1 is PID 1 of a namespace of its own, and a process of
/// the initial namespace other than the kernel's init never has PID 1. Without /proc
/// (the kernel mounts none for its init; every container runtime mounts one) the
/// namespace cannot be read, and the answer is yes: the safe side, where argv is never
/// taken as sealgate's command or flags.
pub fn is_kernel_init() -> bool {
    is_init() && in_initial_pid_namespace() != Some(false)
}

/// This process's id.
pub fn id() -> u32 {
    rustix::process::getpid().as_raw_nonzero().get() as u32
}

/// The value of `name` in an environment of `NAME=value` entries (the first match, as
/// `getenv` does); `None` if unset. Entries without `=` are skipped.
pub fn env_var<'a, E: AsRef<[u8]>>(env: &'a [E], name: &str) -> Option<&'a [u8]> {
    env.iter().find_map(|entry| {
        let entry = entry.as_ref();
        let rest = entry.strip_prefix(name.as_bytes())?;
        rest.strip_prefix(b"=")
    })
}

/// Terminates the process (all its threads) with `code`. Nothing is flushed: the
/// platform layer's output is unbuffered.
pub fn exit(code: i32) -> ! {
    rustix::runtime::exit_group(code)
}

/// The strings as C strings for `execve`; `None` if one holds a NUL.
pub(crate) fn cstrings<S: AsRef<[u8]>>(items: &[S]) -> Option<Vec<CString>> {
    items
        .iter()
        .map(|s| CString::new(s.as_ref()).ok())
        .collect()
}

/// The `char *const[]` the kernel reads: one pointer per string, then a null pointer.
pub(crate) fn pointers(strings: &[CString]) -> Vec<*const u8> {
    strings
        .iter()
        .map(|s| s.as_ptr().cast::<u8>())
        .chain(core::iter::once(ptr::null()))
        .collect()
}

/// Replaces this process with the program at `path`, with arguments `argv` (`argv[0]`
/// included) and environment `envp` (`NAME=value` entries). Returns only on failure, with
/// the reason: `EINVAL` if an argument, an environment entry or the path holds a NUL byte.
///
/// Descriptors without close-on-exec (0, 1 and 2 here) stay open in the new program.
/// `RLIMIT_CORE` and `RLIMIT_MEMLOCK` go back to the values they had before
/// [`crate::hygiene::harden`] changed them.
#[allow(unsafe_code)]
pub fn exec<A: AsRef<[u8]>, E: AsRef<[u8]>>(path: &str, argv: &[A], envp: &[E]) -> Errno {
    let (path, argv, envp) = match (CString::new(path), cstrings(argv), cstrings(envp)) {
        (Ok(p), Some(a), Some(e)) => (p, a, e),
        _ => return Errno::INVAL,
    };
    let argv_ptrs = pointers(&argv);
    let envp_ptrs = pointers(&envp);
    // The new program gets the resource limits sealgate started with (a failed exec
    // re-applies sealgate's when the guard drops).
    let _limits = crate::hygiene::for_exec();
    // SAFETY: `argv_ptrs` and `envp_ptrs` each end with a null pointer, and every other
    // entry points into a `CString` of `argv` or `envp`, which is NUL-terminated. All four
    // vectors (and `path`) are owned by this frame and neither moved nor dropped before
    // `execve` returns, so every pointer stays valid for the whole call; the kernel only
    // reads through them. On success the call does not return at all.
    unsafe { rustix::runtime::execve(&path, argv_ptrs.as_ptr(), envp_ptrs.as_ptr()) }
}

/// How [`shutdown`] stops the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// Power off (`LINUX_REBOOT_CMD_POWER_OFF`).
    PowerOff,
    /// Halt: stop the CPUs, leave the power on (`LINUX_REBOOT_CMD_HALT`).
    Halt,
    /// Restart (`LINUX_REBOOT_CMD_RESTART`).
    Restart,
}

/// Writes the file systems back (`sync(2)`), then stops the machine with `reboot(2)`.
/// Needs `CAP_SYS_BOOT`; in a PID namespace the kernel ends the namespace instead (its
/// init dies of `SIGINT` for power off and halt, `SIGHUP` for a restart). Returns only on
/// failure, with the reason.
pub fn shutdown(how: Shutdown) -> Errno {
    use rustix::system::RebootCommand;
    rustix::fs::sync();
    let cmd = match how {
        Shutdown::PowerOff => RebootCommand::PowerOff,
        Shutdown::Halt => RebootCommand::Halt,
        Shutdown::Restart => RebootCommand::Restart,
    };
    match rustix::system::reboot(cmd) {
        Ok(()) => Errno::INVAL, // reboot(2) does not return on success
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use alloc::string::String;
    use alloc::vec;

    #[test]
    fn environment_lookup_matches_whole_names() {
        let env = [
            "SEALGATE_LOGX=1",
            "PATH=/bin",
            "SEALGATE_LOG=debug",
            "NOEQ",
            "E=",
        ];
        assert_eq!(env_var(&env, "SEALGATE_LOG"), Some(&b"debug"[..]));
        assert_eq!(env_var(&env, "PATH"), Some(&b"/bin"[..]));
        assert_eq!(env_var(&env, "E"), Some(&b""[..]));
        assert_eq!(env_var(&env, "NOEQ"), None);
        assert_eq!(env_var(&env, "HOME"), None);
        let owned: Vec<Vec<u8>> = vec![b"A=\xff".to_vec()];
        assert_eq!(env_var(&owned, "A"), Some(&b"\xff"[..]));
    }

    #[test]
    fn who_we_are() {
        assert_eq!(id(), std::process::id());
        assert!(!is_init(), "the test harness is not PID 1");
    }

    #[test]
    fn exec_failures_come_back_as_errno() {
        let none: [&str; 0] = [];
        assert_eq!(exec("/no/such/program", &["x"], &none), Errno::NOENT);
        assert_eq!(exec("/bin/sh", &["sh", "a\0b"], &none), Errno::INVAL);
        assert_eq!(exec("/bin/sh", &["sh"], &["A=\0"]), Errno::INVAL);
        assert_eq!(exec("/bin\0/sh", &["sh"], &none), Errno::INVAL);
        let dir: [String; 1] = [String::from("/")];
        assert_eq!(exec("/", &dir, &none), Errno::ACCESS);
    }

    /// Run by [`exec_runs_the_program_with_argv_and_envp`] in a fresh test process:
    /// replaces that process with a shell. A no-op in a normal test run.
    #[test]
    fn exec_child() {
        let Ok(out) = std::env::var("SEALGATE_EXEC_TEST_OUT") else {
            return;
        };
        let script = std::format!("printf '%s|%s|%s' \"$0\" \"$1\" \"$SG_X\" > {out}; exit 3");
        let e = exec(
            "/bin/sh",
            &["sh", "-c", script.as_str(), "zero", "one"],
            &["SG_X=two words", "PATH=/bin:/usr/bin"],
        );
        panic!("exec: {e}");
    }

    /// A real exec, in a child: the new program gets exactly our argv and envp.
    #[test]
    fn exec_runs_the_program_with_argv_and_envp() {
        let out = std::env::temp_dir().join(std::format!("sealgate-exec-{}", std::process::id()));
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "process::tests::exec_child", "--nocapture"])
            .env("SEALGATE_EXEC_TEST_OUT", &out)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(3));
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "zero|one|two words");
        std::fs::remove_file(&out).unwrap();
    }

    #[test]
    fn the_test_process_is_not_the_kernels_init() {
        assert!(!is_kernel_init());
        // The test runs in the initial PID namespace unless a sandbox gave it another;
        // either way /proc answers.
        assert!(in_initial_pid_namespace().is_some());
    }
}
