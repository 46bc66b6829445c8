//! The kernel keyring, for handing a volume key to dm-crypt without writing it into a
//! device-mapper table: `add_key(2)` of a `logon` key (its payload can be used by the
//! kernel but never read back by userspace) into the thread keyring, referenced in the
//! crypt table as `:<size>:logon:<description>`, as cryptsetup does for LUKS2. dm-crypt
//! copies the key when the table is loaded; the [`LogonKey`] guard then invalidates and
//! unlinks it, so it lives in the keyring only for the duration of the table load.
//!
//! rustix wraps neither `add_key(2)` nor `keyctl(2)`, so these two system calls are made
//! here directly (x86-64 and aarch64), the only raw system calls of the platform layer.

use core::fmt;
use rustix::io::Errno;

/// `KEY_SPEC_THREAD_KEYRING`: the calling thread's keyring, created on first use and
/// discarded when the thread exits or execs.
const KEY_SPEC_THREAD_KEYRING: i32 = -1;
/// `KEYCTL_REVOKE`.
const KEYCTL_REVOKE: usize = 3;
/// `KEYCTL_UNLINK`.
const KEYCTL_UNLINK: usize = 9;
/// `KEYCTL_READ`.
const KEYCTL_READ: usize = 11;
/// `KEYCTL_INVALIDATE`.
const KEYCTL_INVALIDATE: usize = 21;

/// A key's serial number.
pub type KeySerial = i32;

/// A `logon` key in the thread keyring, invalidated and unlinked when dropped.
pub struct LogonKey {
    serial: KeySerial,
    description: alloc::string::String,
}

/// Why the key could not be added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyringError {
    /// `add_key(2)`'s answer.
    pub errno: Errno,
}

impl fmt::Display for KeyringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot add the volume key to the kernel keyring: {}{}",
            crate::os(self.errno),
            if self.errno == Errno::NOSYS {
                " (the kernel has no CONFIG_KEYS)"
            } else {
                ""
            }
        )
    }
}

impl core::error::Error for KeyringError {}

/// Whether `description` suits a `logon` key: `PREFIX:REST` with a non-empty prefix (the
/// kernel's rule for logon keys), printable ASCII without spaces (it goes into a table),
/// at most 128 bytes.
pub fn valid_description(description: &str) -> bool {
    matches!(description.split_once(':'), Some((p, _)) if !p.is_empty())
        && description.len() <= 128
        && description.bytes().all(|b| b.is_ascii_graphic())
}

impl LogonKey {
    /// Adds `key` as a `logon` key named `description` to the thread keyring.
    pub fn add(description: &str, key: &[u8]) -> Result<LogonKey, KeyringError> {
        if !valid_description(description) {
            return Err(KeyringError {
                errno: Errno::INVAL,
            });
        }
        let mut desc = alloc::vec::Vec::with_capacity(description.len() + 1);
        desc.extend_from_slice(description.as_bytes());
        desc.push(0);
        let r = sys::add_key(b"logon\0", &desc, key, KEY_SPEC_THREAD_KEYRING);
        match r {
            Ok(serial) => Ok(LogonKey {
                serial,
                description: description.into(),
            }),
            Err(errno) => Err(KeyringError { errno }),
        }
    }

    /// Its serial number.
    pub fn serial(&self) -> KeySerial {
        self.serial
    }

    /// Its description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The reference dm-crypt's table takes instead of a hex key: `:<size>:logon:<desc>`.
    pub fn table_reference(&self, key_len: usize) -> alloc::string::String {
        alloc::format!(":{key_len}:logon:{}", self.description)
    }

    /// Tries `KEYCTL_READ` into `buf` (for tests: a logon key must refuse it).
    pub fn try_read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        sys::keyctl(
            KEYCTL_READ,
            self.serial as usize,
            buf.as_mut_ptr() as usize,
            buf.len(),
        )
    }
}

impl Drop for LogonKey {
    fn drop(&mut self) {
        // Invalidate (gone at once, for everyone); on kernels without it, revoke. Then
        // unlink it from the thread keyring.
        if sys::keyctl(KEYCTL_INVALIDATE, self.serial as usize, 0, 0).is_err() {
            let _ = sys::keyctl(KEYCTL_REVOKE, self.serial as usize, 0, 0);
        }
        let _ = sys::keyctl(
            KEYCTL_UNLINK,
            self.serial as usize,
            KEY_SPEC_THREAD_KEYRING as isize as usize,
            0,
        );
    }
}

/// The two system calls rustix does not have.
mod sys {
    use rustix::io::Errno;

    #[cfg(target_arch = "x86_64")]
    const NR_ADD_KEY: usize = 248;
    #[cfg(target_arch = "x86_64")]
    const NR_KEYCTL: usize = 250;
    #[cfg(target_arch = "aarch64")]
    const NR_ADD_KEY: usize = 217;
    #[cfg(target_arch = "aarch64")]
    const NR_KEYCTL: usize = 219;

    fn result(ret: isize) -> Result<usize, Errno> {
        if (-4095..0).contains(&ret) {
            Err(Errno::from_raw_os_error(-ret as i32))
        } else {
            Ok(ret as usize)
        }
    }

    /// `add_key(type, description, payload, plen, keyring)`; `ty` and `desc` must be
    /// NUL-terminated.
    #[allow(unsafe_code)]
    pub fn add_key(ty: &[u8], desc: &[u8], payload: &[u8], keyring: i32) -> Result<i32, Errno> {
        if ty.last() != Some(&0) || desc.last() != Some(&0) {
            return Err(Errno::INVAL);
        }
        // SAFETY: the kernel reads the NUL-terminated strings `ty` and `desc` (checked
        // just above to end in NUL, so the read stays inside them), and `payload.len()`
        // bytes at `payload`; all three are live shared borrows for the whole call, and
        // nothing is written to user memory. The keyring id is passed by value.
        let ret = unsafe {
            syscall5(
                NR_ADD_KEY,
                ty.as_ptr() as usize,
                desc.as_ptr() as usize,
                payload.as_ptr() as usize,
                payload.len(),
                keyring as isize as usize,
            )
        };
        result(ret).map(|serial| serial as i32)
    }

    /// `keyctl(op, a2, a3, a4)` for the operations of this module: REVOKE, UNLINK and
    /// INVALIDATE take ids only; READ writes at most `a4` bytes at address `a3`.
    #[allow(unsafe_code)]
    pub fn keyctl(op: usize, a2: usize, a3: usize, a4: usize) -> Result<usize, Errno> {
        debug_assert!(matches!(
            op,
            super::KEYCTL_REVOKE
                | super::KEYCTL_UNLINK
                | super::KEYCTL_INVALIDATE
                | super::KEYCTL_READ
        ));
        // SAFETY: REVOKE, UNLINK and INVALIDATE take two key ids by value and touch no
        // user memory. READ writes at most `a4` bytes at `a3`, which its only caller
        // (`LogonKey::try_read`) derives from a live exclusive `&mut [u8]` of that length.
        let ret = unsafe { syscall5(NR_KEYCTL, op, a2, a3, a4, 0) };
        result(ret)
    }

    /// A raw five-argument system call.
    ///
    /// # Safety
    /// The arguments must be valid for system call `nr`: every pointer among them must
    /// point to memory the kernel may read or write as that call does.
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    unsafe fn syscall5(nr: usize, a1: usize, a2: usize, a3: usize, a4: usize, a5: usize) -> isize {
        let ret: isize;
        // SAFETY: the x86-64 Linux system call convention: number in rax, arguments in
        // rdi, rsi, rdx, r10, r8; the kernel returns in rax and clobbers rcx and r11,
        // declared here. The memory the call touches is the caller's contract.
        unsafe {
            core::arch::asm!(
                "syscall",
                inlateout("rax") nr as isize => ret,
                in("rdi") a1,
                in("rsi") a2,
                in("rdx") a3,
                in("r10") a4,
                in("r8") a5,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack, preserves_flags)
            );
        }
        ret
    }

    /// A raw five-argument system call.
    ///
    /// # Safety
    /// As for x86-64.
    #[cfg(target_arch = "aarch64")]
    #[allow(unsafe_code)]
    unsafe fn syscall5(nr: usize, a1: usize, a2: usize, a3: usize, a4: usize, a5: usize) -> isize {
        let ret: isize;
        // SAFETY: the aarch64 Linux system call convention: number in x8, arguments in
        // x0..x4, result in x0; `svc 0` clobbers nothing else.
        unsafe {
            core::arch::asm!(
                "svc 0",
                in("x8") nr,
                inlateout("x0") a1 as isize => ret,
                in("x1") a2,
                in("x2") a3,
                in("x3") a4,
                in("x4") a5,
                options(nostack, preserves_flags)
            );
        }
        ret
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::String;

    /// Whether /proc/keys shows the key as usable: present and neither invalidated
    /// (`i`: the garbage collector removes it soon after) nor revoked (`R`).
    fn proc_keys_has(description: &str) -> bool {
        std::fs::read_to_string("/proc/keys")
            .unwrap()
            .lines()
            .filter(|l| l.contains(" logon ") && l.contains(&std::format!(" {description}: ")))
            .any(|l| {
                let flags = l.split_whitespace().nth(1).unwrap_or("");
                !flags.contains('i') && !flags.contains('R')
            })
    }

    /// A real logon key: in the keyring while the guard lives, unreadable from
    /// userspace, gone after the drop.
    #[test]
    fn logon_key_lives_only_as_long_as_its_guard() {
        let desc = std::format!("sealgate-test:{}", std::process::id());
        let key = [0x5au8; 64];
        // Run on a thread of its own: the thread keyring is per thread.
        let desc2 = desc.clone();
        std::thread::spawn(move || {
            let k = LogonKey::add(&desc2, &key).unwrap();
            assert!(k.serial() > 0);
            assert!(proc_keys_has(&desc2), "the key is in /proc/keys");
            let mut buf = [0u8; 64];
            assert_eq!(
                k.try_read(&mut buf),
                Err(Errno::OPNOTSUPP),
                "logon keys are not readable"
            );
            assert_eq!(buf, [0; 64]);
            assert_eq!(k.table_reference(64), std::format!(":64:logon:{desc2}"));
            drop(k);
            assert!(!proc_keys_has(&desc2), "invalidated and unlinked");
        })
        .join()
        .unwrap();
        assert!(!proc_keys_has(&desc));
    }

    #[test]
    fn descriptions() {
        assert!(valid_description("sealgate:data"));
        let long = String::from("a:") + &"x".repeat(127);
        for bad in [
            "nocolon",
            ":empty-prefix",
            "a:b c",
            "a:\u{e9}",
            long.as_str(),
        ] {
            assert!(!valid_description(bad), "{bad:?}");
            assert!(LogonKey::add(bad, b"k").is_err());
        }
    }
}
