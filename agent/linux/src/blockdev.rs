//! Block devices for the volume opener: opening one (a block device, or a regular
//! image file in tests), its size, bounded reads at an offset (the LUKS2 header and
//! keyslot areas), and finding a device by what its first bytes hold (a LUKS UUID)
//! without udev, by walking `/sys/class/block`.
//!
//! Every read is bounded by the caller's limit, so a hostile header cannot make sealgate
//! read (or allocate) more than the format allows.

use crate::fs::{ReadError, exists, retry};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use rustix::fd::OwnedFd;
use rustix::fs::{FileType, Mode, OFlags, SeekFrom};
use rustix::io::Errno;
use zeroize::Zeroizing;

/// The most block devices [`find`] looks at.
pub const MAX_SCANNED: usize = 256;
/// Where the kernel lists block devices (disks and partitions).
const SYS_CLASS_BLOCK: &str = "/sys/class/block";

/// An open block device (or regular file).
pub struct Device {
    fd: OwnedFd,
    path: String,
    size: u64,
    rdev: Option<u64>,
}

/// Why a device could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceError {
    /// Opening or reading failed.
    Os {
        /// The device.
        path: String,
        /// The call.
        what: &'static str,
        /// The kernel's answer.
        errno: Errno,
    },
    /// Neither a block device nor a regular file.
    NotABlockDevice {
        /// The path.
        path: String,
    },
    /// A read beyond the end of the device, or longer than allowed.
    OutOfRange {
        /// The device.
        path: String,
        /// The offset asked for.
        offset: u64,
        /// The length asked for.
        len: u64,
        /// The device's size.
        size: u64,
    },
    /// No device matched.
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// More than one device matched: refused (a host could attach a second disk with the
    /// same header).
    Ambiguous {
        /// What was looked for.
        what: String,
        /// The two first matches.
        first: String,
        /// .
        second: String,
    },
}

impl core::fmt::Display for DeviceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DeviceError::Os { path, what, errno } => {
                write!(f, "{path}: {what}: {}", crate::os(errno))
            }
            DeviceError::NotABlockDevice { path } => {
                write!(f, "{path} is not a block device")
            }
            DeviceError::OutOfRange {
                path,
                offset,
                len,
                size,
            } => write!(
                f,
                "{path}: {len} bytes at offset {offset} are outside the device ({size} bytes)"
            ),
            DeviceError::NotFound { what } => write!(f, "no block device with {what}"),
            DeviceError::Ambiguous {
                what,
                first,
                second,
            } => write!(
                f,
                "more than one block device has {what} ({first}, {second}): refused"
            ),
        }
    }
}

impl core::error::Error for DeviceError {}

impl Device {
    /// Opens `path` read-only (block device, or a regular file: image files in tests).
    pub fn open(path: &str) -> Result<Device, DeviceError> {
        let os = |what, errno| DeviceError::Os {
            path: path.into(),
            what,
            errno,
        };
        // Looked at first, so a FIFO or a character device is never opened.
        let st = retry(|| rustix::fs::stat(path)).map_err(|e| os("stat", e))?;
        let kind = FileType::from_raw_mode(st.st_mode);
        if !matches!(kind, FileType::BlockDevice | FileType::RegularFile) {
            return Err(DeviceError::NotABlockDevice { path: path.into() });
        }
        let fd = retry(|| {
            rustix::fs::open(
                path,
                OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
                Mode::empty(),
            )
        })
        .map_err(|e| os("open", e))?;
        let st2 = rustix::fs::fstat(&fd).map_err(|e| os("fstat", e))?;
        if FileType::from_raw_mode(st2.st_mode) != kind || st2.st_rdev != st.st_rdev {
            return Err(DeviceError::NotABlockDevice { path: path.into() });
        }
        // The size of a block device is where SEEK_END lands (what BLKGETSIZE64 returns).
        let size = rustix::fs::seek(&fd, SeekFrom::End(0)).map_err(|e| os("seek", e))?;
        Ok(Device {
            fd,
            path: path.into(),
            size,
            rdev: (kind == FileType::BlockDevice).then_some(st.st_rdev),
        })
    }

    /// The path it was opened by.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Its size, bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Its device number, if it is a block device.
    pub fn rdev(&self) -> Option<u64> {
        self.rdev
    }

    /// Reads exactly `len` bytes at `offset`; `len` at most `limit`, and inside the device.
    /// The buffer is wiped when dropped (keyslot areas are key material).
    pub fn read_at(
        &self,
        offset: u64,
        len: usize,
        limit: usize,
    ) -> Result<Zeroizing<Vec<u8>>, DeviceError> {
        let out_of_range = || DeviceError::OutOfRange {
            path: self.path.clone(),
            offset,
            len: len as u64,
            size: self.size,
        };
        if len > limit
            || offset
                .checked_add(len as u64)
                .is_none_or(|end| end > self.size)
        {
            return Err(out_of_range());
        }
        let mut buf = Zeroizing::new(alloc::vec![0u8; len]);
        let mut done = 0;
        while done < len {
            let n = retry(|| rustix::io::pread(&self.fd, &mut buf[done..], offset + done as u64))
                .map_err(|errno| DeviceError::Os {
                path: self.path.clone(),
                what: "read",
                errno,
            })?;
            if n == 0 {
                return Err(out_of_range());
            }
            done += n;
        }
        Ok(buf)
    }
}

/// The `/dev` node of block device `major:minor`: sysfs's `/sys/dev/block/MAJ:MIN/uevent`
/// names it (`DEVNAME=`, as udev would), and the node must be a block device with exactly
/// that number (devtmpfs makes it). No udev, no `/dev` scan.
pub fn by_number(major: u32, minor: u32) -> Result<String, DeviceError> {
    let what = || format!("device number {major}:{minor}");
    let not_found = || DeviceError::NotFound { what: what() };
    let uevent = crate::fs::read_file(&format!("/sys/dev/block/{major}:{minor}/uevent"), 4096)
        .map_err(|_| not_found())?;
    let name = core::str::from_utf8(&uevent)
        .ok()
        .and_then(|text| text.lines().find_map(|l| l.strip_prefix("DEVNAME=")))
        .filter(|n| valid_devname(n))
        .ok_or_else(not_found)?;
    let path = format!("/dev/{name}");
    let st = retry(|| rustix::fs::stat(path.as_str())).map_err(|errno| DeviceError::Os {
        path: path.clone(),
        what: "stat",
        errno,
    })?;
    if FileType::from_raw_mode(st.st_mode) != FileType::BlockDevice
        || st.st_rdev != rustix::fs::makedev(major, minor)
    {
        return Err(DeviceError::NotABlockDevice { path });
    }
    Ok(path)
}

/// A kernel device name as `uevent` gives it: `A-Z a-z 0-9 . _ - + :` and `/` between
/// components (never empty, `.` or `..`), at most 128 bytes.
fn valid_devname(n: &str) -> bool {
    (1..=128).contains(&n.len())
        && n.split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+' | b':')
                })
        })
}

/// The `/dev` node of every block device sysfs lists (`/dev/NAME`), sorted, at most
/// [`MAX_SCANNED`]; only those whose node exists (devtmpfs makes them).
pub fn list() -> Result<Vec<String>, ReadError> {
    let names = crate::fs::list_dir(SYS_CLASS_BLOCK, MAX_SCANNED)?;
    Ok(names
        .into_iter()
        .filter(|n| !n.starts_with('.') && !n.contains('/'))
        .map(|n| format!("/dev/{n}"))
        .filter(|p| exists(p))
        .collect())
}

/// The one block device whose first `prefix_len` bytes satisfy `matches`, among
/// `candidates` (usually [`list`]); `what` names the search in errors. Devices that
/// cannot be opened or are shorter than `prefix_len` are skipped; two matches are refused.
pub fn find(
    candidates: &[String],
    prefix_len: usize,
    what: &str,
    matches: impl Fn(&[u8]) -> bool,
) -> Result<String, DeviceError> {
    let mut found: Option<(String, Option<u64>)> = None;
    for path in candidates.iter().take(MAX_SCANNED) {
        let Ok(dev) = Device::open(path) else {
            continue;
        };
        let Ok(head) = dev.read_at(0, prefix_len, prefix_len) else {
            continue;
        };
        if !matches(&head) {
            continue;
        }
        match &found {
            // The same device under two names (a symlink among the candidates).
            Some((_, rdev)) if rdev.is_some() && *rdev == dev.rdev() => {}
            Some((first, _)) => {
                return Err(DeviceError::Ambiguous {
                    what: what.into(),
                    first: first.clone(),
                    second: path.clone(),
                });
            }
            None => found = Some((path.clone(), dev.rdev())),
        }
    }
    found
        .map(|(p, _)| p)
        .ok_or_else(|| DeviceError::NotFound { what: what.into() })
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::io::Write;

    #[test]
    fn device_names_from_uevent_are_checked() {
        for ok in ["vda", "nvme0n1p1", "mapper/x", "dm-0", "sr0"] {
            assert!(valid_devname(ok), "{ok}");
        }
        for bad in ["", "..", "a/../b", "/vda", "vda/", "a b", "vda\n", "x;y"] {
            assert!(!valid_devname(bad), "{bad}");
        }
    }

    /// A number no device has is not found (the host's sysfs answers).
    #[test]
    fn an_unknown_device_number_is_not_found() {
        assert!(matches!(
            by_number(4095, 1048575),
            Err(DeviceError::NotFound { .. })
        ));
    }

    fn temp_image(name: &str, content: &[u8]) -> String {
        let p =
            std::env::temp_dir().join(std::format!("sealgate-bd-{}-{name}", std::process::id()));
        std::fs::File::create(&p)
            .unwrap()
            .write_all(content)
            .unwrap();
        p.to_str().unwrap().into()
    }

    #[test]
    fn bounded_reads_inside_the_device() {
        let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        let path = temp_image("reads", &data);
        let dev = Device::open(&path).unwrap();
        assert_eq!(dev.size(), 10_000);
        assert_eq!(dev.rdev(), None);
        assert_eq!(&dev.read_at(4096, 16, 16).unwrap()[..], &data[4096..4112]);
        assert_eq!(dev.read_at(0, 10_000, 10_000).unwrap().len(), 10_000);
        for (off, len, limit) in [(9_990, 11, 100), (0, 101, 100), (u64::MAX, 1, 1)] {
            assert!(
                matches!(
                    dev.read_at(off, len, limit),
                    Err(DeviceError::OutOfRange { .. })
                ),
                "{off} {len} {limit}"
            );
        }
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn only_block_devices_and_files() {
        for path in ["/dev/null", "/tmp"] {
            assert!(matches!(
                Device::open(path),
                Err(DeviceError::NotABlockDevice { .. })
            ));
        }
        let Err(e) = Device::open("/no/such/disk") else {
            panic!("opened")
        };
        assert!(
            e.to_string()
                .starts_with("/no/such/disk: stat: No such file"),
            "{e}"
        );
    }

    #[test]
    fn find_by_content_refuses_two_matches() {
        let a = temp_image("a", b"MAGIC-A and more");
        let b = temp_image("b", b"MAGIC-B and more");
        let c = temp_image("c", b"MAGIC-A again...");
        let short = temp_image("s", b"MAG");
        let all = [a.clone(), short.clone(), b.clone(), "/no/such".into()];
        assert_eq!(find(&all, 7, "magic A", |h| h == b"MAGIC-A").unwrap(), a);
        assert_eq!(find(&all, 7, "magic B", |h| h == b"MAGIC-B").unwrap(), b);
        let e = find(&all, 7, "magic C", |h| h == b"MAGIC-C").unwrap_err();
        assert_eq!(e.to_string(), "no block device with magic C");
        let two = [a.clone(), c.clone()];
        let e = find(&two, 7, "magic A", |h| h == b"MAGIC-A").unwrap_err();
        assert!(matches!(e, DeviceError::Ambiguous { .. }), "{e}");
        for p in [a, b, c, short] {
            std::fs::remove_file(p).unwrap();
        }
    }

    /// The real sysfs listing: every entry is a /dev node that opens as a block device
    /// (this machine has loop devices at least).
    #[test]
    fn lists_the_machines_block_devices() {
        let devs = list().unwrap();
        assert!(!devs.is_empty());
        for d in &devs {
            assert!(d.starts_with("/dev/"));
        }
    }
}
