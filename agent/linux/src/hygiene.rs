//! Secret hygiene in memory: what sealgate does to its own process before it touches a
//! secret, so that key material and plaintexts stay out of core dumps, out of other
//! processes of the same user (ptrace, `/proc/<pid>/mem`) and out of swap.
//!
//! [`harden`] runs first thing in the guest binary (`sealgate_rt::start`, before `main`):
//!
//! 1. `prctl(PR_SET_DUMPABLE, 0)`: no core dump (with the kernel's default
//!    `fs.suid_dumpable = 0`); `/proc/<pid>/` files become root's, so a process of the same
//!    uid can neither ptrace sealgate nor read its memory.
//! 2. The soft `RLIMIT_CORE` set to 0: no core file even where `fs.suid_dumpable = 2` would
//!    allow one. The hard limit stays, so that the original soft limit can be given back to
//!    the next init ([`for_exec`]).
//! 3. Memory locked against swap. With an unlimited `RLIMIT_MEMLOCK` (raised to its hard
//!    limit, or to unlimited when the process may: root in the guest):
//!    `mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)`. `MCL_ONFAULT` locks pages as they
//!    are touched instead of faulting in every mapping at once: the binary's whole text,
//!    the stack reservation and every heap segment would otherwise become resident
//!    (measured, README "Secret hygiene in memory"). With a finite limit (an unprivileged
//!    user, a user namespace), `MCL_FUTURE` is not used: every later `mmap` would then
//!    fail once the limit is reached, and sealgate would die of an allocation failure.
//!    Instead `MCL_CURRENT | MCL_ONFAULT` locks what is mapped now and the allocator
//!    (`sealgate_rt`) locks each new heap segment itself ([`lock_new_segments`]); a
//!    refusal there is counted ([`segment_lock_refused`]) and warned about once at exit.
//!
//! The allocator also marks every heap segment `MADV_DONTDUMP`, which keeps the heap out
//! of a dump that happens anyway (a `core_pattern` pipe ignores `RLIMIT_CORE`).
//!
//! Where the kernel refuses a step, [`harden`] warns once per step and goes on: locking is
//! defence in depth, and a guest without it is no worse than before.

use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use rustix::io::Errno;
use rustix::mm::MlockAllFlags;
use rustix::process::{DumpableBehavior, Resource, Rlimit};

/// `RLIM_INFINITY` as stored in the atomics below (`Rlimit` uses `None`).
const INFINITY: u64 = u64::MAX;

/// The limits as sealgate found them at start, restored before it execs another program.
struct Saved {
    set: AtomicBool,
    soft: AtomicU64,
    hard: AtomicU64,
}

impl Saved {
    const fn new() -> Saved {
        Saved {
            set: AtomicBool::new(false),
            soft: AtomicU64::new(INFINITY),
            hard: AtomicU64::new(INFINITY),
        }
    }

    fn save(&self, limit: Rlimit) {
        self.soft
            .store(limit.current.unwrap_or(INFINITY), Ordering::Relaxed);
        self.hard
            .store(limit.maximum.unwrap_or(INFINITY), Ordering::Relaxed);
        self.set.store(true, Ordering::Release);
    }

    fn get(&self) -> Option<Rlimit> {
        let finite = |v: u64| (v != INFINITY).then_some(v);
        self.set.load(Ordering::Acquire).then(|| Rlimit {
            current: finite(self.soft.load(Ordering::Relaxed)),
            maximum: finite(self.hard.load(Ordering::Relaxed)),
        })
    }
}

static CORE: Saved = Saved::new();
static MEMLOCK: Saved = Saved::new();
/// Set when `MCL_FUTURE` could not be used: the allocator locks new segments itself.
static LOCK_SEGMENTS: AtomicBool = AtomicBool::new(false);
/// The errno of the first refused segment lock (0: none).
static SEGMENT_REFUSED: AtomicI32 = AtomicI32::new(0);
/// Set once a warning about memory locking has been printed (at most one per run).
static LOCK_WARNED: AtomicBool = AtomicBool::new(false);

/// How memory ended up locked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Locking {
    /// `mlockall(MCL_CURRENT | MCL_FUTURE [| MCL_ONFAULT])`: everything, now and later.
    All,
    /// `mlockall(MCL_CURRENT [| MCL_ONFAULT])` and each new heap segment by the allocator:
    /// `RLIMIT_MEMLOCK` is finite.
    CurrentAndHeap,
    /// Only new heap segments, by the allocator: `mlockall` itself was refused (the
    /// mapped size already exceeds `RLIMIT_MEMLOCK`, or the limit is 0).
    HeapOnly(Errno),
}

/// What [`harden`] achieved; each failed step has been warned about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hardened {
    /// `PR_SET_DUMPABLE` 0.
    pub not_dumpable: Result<(), Errno>,
    /// Soft `RLIMIT_CORE` 0.
    pub no_core: Result<(), Errno>,
    /// Memory locking.
    pub locking: Locking,
}

/// Applies the process-wide protections described in the module documentation, warning
/// once for each that the kernel refuses. Call it once, before any secret exists.
pub fn harden() -> Hardened {
    let not_dumpable = rustix::process::set_dumpable_behavior(DumpableBehavior::NotDumpable);
    if let Err(e) = not_dumpable {
        crate::warn!(
            "cannot make the process non-dumpable (prctl PR_SET_DUMPABLE): {}; a core dump or a \
             ptrace by the same user could read secrets",
            crate::os(e)
        );
    }
    let no_core = limit_core();
    if let Err(e) = no_core {
        crate::warn!(
            "cannot set the core file size limit to 0 (setrlimit RLIMIT_CORE): {}",
            crate::os(e)
        );
    }
    let locking = lock_memory();
    if let Locking::HeapOnly(e) = locking {
        LOCK_WARNED.store(true, Ordering::Relaxed);
        crate::warn!(
            "cannot lock memory (mlockall): {}; RLIMIT_MEMLOCK is {}: secrets may be swapped \
             out (raise the limit, or run with CAP_IPC_LOCK)",
            crate::os(e),
            memlock_text()
        );
    }
    Hardened {
        not_dumpable,
        no_core,
        locking,
    }
}

fn limit_core() -> Result<(), Errno> {
    let original = rustix::process::getrlimit(Resource::Core);
    CORE.save(original);
    rustix::process::setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: original.maximum,
        },
    )
}

fn lock_memory() -> Locking {
    let original = rustix::process::getrlimit(Resource::Memlock);
    MEMLOCK.save(original);
    let unlimited = original.current.is_none() || raise_memlock();
    let onfault = MlockAllFlags::ONFAULT;
    let (flags, locking) = if unlimited {
        (MlockAllFlags::CURRENT | MlockAllFlags::FUTURE, Locking::All)
    } else {
        LOCK_SEGMENTS.store(true, Ordering::Relaxed);
        (MlockAllFlags::CURRENT, Locking::CurrentAndHeap)
    };
    // MCL_ONFAULT needs Linux 4.4; an older kernel answers EINVAL, and then everything is
    // locked (and faulted in) at once.
    match rustix::mm::mlockall(flags | onfault).or_else(|e| {
        if e == Errno::INVAL {
            rustix::mm::mlockall(flags)
        } else {
            Err(e)
        }
    }) {
        Ok(()) => locking,
        Err(e) => {
            LOCK_SEGMENTS.store(true, Ordering::Relaxed);
            Locking::HeapOnly(e)
        }
    }
}

/// Lifts a finite `RLIMIT_MEMLOCK` to unlimited, which the kernel allows if the hard limit
/// is already unlimited or if the process may raise it (`CAP_SYS_RESOURCE`: root in the
/// guest). Whether it worked.
fn raise_memlock() -> bool {
    let unlimited = Rlimit {
        current: None,
        maximum: None,
    };
    rustix::process::setrlimit(Resource::Memlock, unlimited).is_ok()
}

fn memlock_text() -> alloc::string::String {
    match rustix::process::getrlimit(Resource::Memlock).current {
        None => "unlimited".into(),
        Some(bytes) => alloc::format!("{bytes} bytes"),
    }
}

/// Whether the allocator must lock each new heap segment itself (`MCL_FUTURE` was not
/// used). Read by `sealgate_rt`'s allocator; must not allocate.
pub fn lock_new_segments() -> bool {
    LOCK_SEGMENTS.load(Ordering::Relaxed)
}

/// Records that locking a heap segment was refused (called by the allocator, which cannot
/// log: logging may allocate). Only the first refusal is kept.
pub fn note_segment_lock_refused(e: Errno) {
    let _ =
        SEGMENT_REFUSED.compare_exchange(0, e.raw_os_error(), Ordering::Relaxed, Ordering::Relaxed);
}

/// The first refused heap segment lock, if any.
pub fn segment_lock_refused() -> Option<Errno> {
    match SEGMENT_REFUSED.load(Ordering::Relaxed) {
        0 => None,
        raw => Some(Errno::from_raw_os_error(raw)),
    }
}

/// Warns at the end of a run if some heap memory could not be locked, unless [`harden`]
/// warned about locking already.
pub fn warn_if_heap_unlocked() {
    if LOCK_WARNED.swap(true, Ordering::Relaxed) {
        return;
    }
    if let Some(e) = segment_lock_refused() {
        crate::warn!(
            "part of the heap could not be locked (mlock): {}; RLIMIT_MEMLOCK is {}: secrets \
             may have been swapped out",
            crate::os(e),
            memlock_text()
        );
    }
}

/// Gives the limits [`harden`] changed back their original values, for the program about
/// to be exec'd: `RLIMIT_CORE` and `RLIMIT_MEMLOCK` are inherited across `execve`, unlike
/// the dumpable flag and memory locks, which the kernel resets. Returns a guard that
/// re-applies sealgate's limits when dropped, i.e. if the exec failed and sealgate goes on.
/// A no-op where [`harden`] never ran (tests, sealctl).
pub fn for_exec() -> ExecGuard {
    let restored = [(Resource::Core, &CORE), (Resource::Memlock, &MEMLOCK)].map(
        |(resource, saved)| match saved.get() {
            Some(limit) => rustix::process::setrlimit(resource, limit).is_ok(),
            None => false,
        },
    );
    ExecGuard { restored }
}

/// See [`for_exec`].
#[must_use = "dropping the guard re-applies sealgate's limits"]
pub struct ExecGuard {
    restored: [bool; 2],
}

impl Drop for ExecGuard {
    fn drop(&mut self) {
        if self.restored[0] {
            let _ = limit_core();
        }
        if self.restored[1]
            && MEMLOCK
                .get()
                .is_some_and(|original| original.current.is_some())
        {
            let _ = raise_memlock();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_limits_round_trip_infinity() {
        let saved = Saved::new();
        assert_eq!(saved.get(), None);
        let limit = Rlimit {
            current: Some(0),
            maximum: None,
        };
        saved.save(limit);
        assert_eq!(saved.get(), Some(limit));
    }

    /// Run by [`harden_then_exec_gives_the_next_program_the_original_limits`] in a fresh
    /// test process (harden changes the whole process): hardens, checks the result from
    /// inside, then execs a shell that reports its own limits. A no-op in a normal run.
    #[test]
    fn harden_child() {
        let Ok(out) = std::env::var("SEALGATE_HYGIENE_TEST_OUT") else {
            return;
        };
        // A distinctive soft core limit for the next program to get back.
        let core = rustix::process::getrlimit(Resource::Core);
        if core.maximum.is_none_or(|max| max >= CHILD_CORE) {
            let wanted = Rlimit {
                current: Some(CHILD_CORE),
                maximum: core.maximum,
            };
            rustix::process::setrlimit(Resource::Core, wanted).unwrap();
        }
        let memlock = rustix::process::getrlimit(Resource::Memlock);
        let hardened = harden();
        assert_eq!(hardened.not_dumpable, Ok(()));
        assert_eq!(hardened.no_core, Ok(()));
        assert_eq!(
            rustix::process::dumpable_behavior(),
            Ok(DumpableBehavior::NotDumpable)
        );
        assert_eq!(rustix::process::getrlimit(Resource::Core).current, Some(0));
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let locked = status.lines().find(|l| l.starts_with("VmLck:")).unwrap();
        assert_ne!(locked.split_whitespace().nth(1), Some("0"), "{hardened:?}");
        let script = std::format!(
            "{{ cat /proc/self/limits; grep VmLck /proc/self/status; }} > {out}; exit 3"
        );
        let e = crate::process::exec(
            "/bin/sh",
            &["sh", "-c", script.as_str()],
            &["PATH=/bin:/usr/bin"],
        );
        // The guard put sealgate's limits back after the failed exec.
        assert_eq!(rustix::process::getrlimit(Resource::Core).current, Some(0));
        panic!("exec: {e} (memlock was {memlock:?})");
    }

    const CHILD_CORE: u64 = 1 << 20;

    /// `harden` in a child, whose exec'd shell sees the limits the child had before it.
    #[test]
    fn harden_then_exec_gives_the_next_program_the_original_limits() {
        let out =
            std::env::temp_dir().join(std::format!("sealgate-hygiene-{}", std::process::id()));
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "hygiene::tests::harden_child", "--nocapture"])
            .env("SEALGATE_HYGIENE_TEST_OUT", &out)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(3));
        let report = std::fs::read_to_string(&out).unwrap();
        std::fs::remove_file(&out).unwrap();
        let field = |name: &str| {
            report
                .lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_else(|| panic!("no {name} in {report}"))
                .split_whitespace()
                .skip(name.split_whitespace().count())
                .take(2)
                .collect::<std::vec::Vec<_>>()
                .join(" ")
        };
        let ours = rustix::process::getrlimit(Resource::Core);
        let text = |v: Option<u64>| v.map_or("unlimited".into(), |v| std::format!("{v}"));
        let core_soft = if ours.maximum.is_none_or(|max| max >= CHILD_CORE) {
            std::format!("{CHILD_CORE}")
        } else {
            text(ours.current)
        };
        assert_eq!(
            field("Max core file size"),
            std::format!("{core_soft} {}", text(ours.maximum)),
            "{report}"
        );
        let memlock = rustix::process::getrlimit(Resource::Memlock);
        assert_eq!(
            field("Max locked memory"),
            std::format!("{} {}", text(memlock.current), text(memlock.maximum)),
            "{report}"
        );
        // Memory locks end with the exec (the kernel's doing; checked, not assumed).
        assert_eq!(field("VmLck:"), "0 kB", "{report}");
    }

    #[test]
    fn segment_refusal_keeps_the_first_errno() {
        assert_eq!(segment_lock_refused(), None);
        note_segment_lock_refused(Errno::NOMEM);
        note_segment_lock_refused(Errno::PERM);
        assert_eq!(segment_lock_refused(), Some(Errno::NOMEM));
    }
}
