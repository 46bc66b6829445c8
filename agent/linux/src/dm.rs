//! Device-mapper without libdevmapper and without udev: the ioctls on
//! `/dev/mapper/control` that create a mapped device, load its table, resume it and
//! remove it, and the `/dev/mapper/NAME` node that udev would otherwise make.
//!
//! The ABI is `include/uapi/linux/dm-ioctl.h` (interface version 4): every call passes
//! one buffer that starts with `struct dm_ioctl` (312 bytes) and goes on with the
//! command's data (`data_start`, `data_size`). A table is a list of `struct
//! dm_target_spec` (40 bytes), each followed by its NUL-terminated parameter string,
//! padded to 8 bytes. The layouts are checked by size and offset tests below.
//!
//! [`Mapping`] is the guard of one activation: it removes the device (and the node it
//! made) when dropped, unless [`Mapping::keep`] was called once everything that depends
//! on it (the mount) succeeded. So a failure at any step leaves nothing half-open.

use crate::fs::exists;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;
use rustix::ioctl::{Opcode, Updater, ioctl};

/// The control device.
pub const CONTROL: &str = "/dev/mapper/control";
/// Where the control device's `MAJOR:MINOR` is published (a misc device).
const CONTROL_SYSFS_DEV: &str = "/sys/class/misc/device-mapper/dev";
/// `DM_NAME_LEN`.
pub const NAME_LEN: usize = 128;
/// `DM_UUID_LEN`.
pub const UUID_LEN: usize = 129;
/// `DM_MAX_TYPE_NAME`.
const TYPE_NAME_LEN: usize = 16;
/// The interface version spoken (`DM_VERSION_MAJOR`); the minor is the oldest we need.
const VERSION: [u32; 3] = [4, 0, 0];
/// Room for the command data after the header: a table of one crypt target (its
/// parameters are a few hundred bytes), or a table status.
const DATA_LEN: usize = (16 << 10) - core::mem::size_of::<DmIoctl>();

/// `DM_READONLY_FLAG`.
const READONLY_FLAG: u32 = 1 << 0;
/// `DM_SUSPEND_FLAG`.
const SUSPEND_FLAG: u32 = 1 << 1;
/// `DM_STATUS_TABLE_FLAG`: DM_TABLE_STATUS returns the table, not the status.
const STATUS_TABLE_FLAG: u32 = 1 << 4;
/// `DM_ACTIVE_PRESENT_FLAG`.
const ACTIVE_PRESENT_FLAG: u32 = 1 << 5;
/// `DM_BUFFER_FULL_FLAG`.
const BUFFER_FULL_FLAG: u32 = 1 << 8;
/// `DM_SECURE_DATA_FLAG`: the kernel wipes its copy of the buffer.
const SECURE_DATA_FLAG: u32 = 1 << 15;

/// `struct dm_ioctl`.
#[repr(C)]
#[derive(Clone, Copy)]
struct DmIoctl {
    version: [u32; 3],
    data_size: u32,
    data_start: u32,
    target_count: u32,
    open_count: i32,
    flags: u32,
    event_nr: u32,
    padding: u32,
    dev: u64,
    name: [u8; NAME_LEN],
    uuid: [u8; UUID_LEN],
    data: [u8; 7],
}

/// `struct dm_target_spec`.
#[repr(C)]
#[derive(Clone, Copy)]
struct DmTargetSpec {
    sector_start: u64,
    length: u64,
    status: i32,
    next: u32,
    target_type: [u8; TYPE_NAME_LEN],
}

const HEADER: usize = core::mem::size_of::<DmIoctl>();
const SPEC: usize = core::mem::size_of::<DmTargetSpec>();

/// One ioctl buffer: the header, then the command's data.
#[repr(C, align(8))]
struct Buffer {
    hdr: DmIoctl,
    data: [u8; DATA_LEN],
}

/// The ioctl commands (`enum` in dm-ioctl.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Cmd {
    Version = 0,
    DevCreate = 3,
    DevRemove = 4,
    DevSuspend = 6,
    DevStatus = 7,
    TableLoad = 9,
    TableStatus = 12,
}

impl Cmd {
    fn name(self) -> &'static str {
        match self {
            Cmd::Version => "DM_VERSION",
            Cmd::DevCreate => "DM_DEV_CREATE",
            Cmd::DevRemove => "DM_DEV_REMOVE",
            Cmd::DevSuspend => "DM_DEV_SUSPEND",
            Cmd::DevStatus => "DM_DEV_STATUS",
            Cmd::TableLoad => "DM_TABLE_LOAD",
            Cmd::TableStatus => "DM_TABLE_STATUS",
        }
    }
}

/// `_IOWR(DM_IOCTL, cmd, struct dm_ioctl)`.
const fn opcode(cmd: u8) -> Opcode {
    rustix::ioctl::opcode::read_write::<DmIoctl>(0xfd, cmd)
}

/// Why a device-mapper call failed. Never carries key material (tables hold a keyring
/// reference, never a key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DmError {
    /// `/dev/mapper/control` is missing and cannot be made: no device-mapper in the kernel.
    NoDeviceMapper,
    /// Opening the control device failed.
    Open(Errno),
    /// An ioctl failed.
    Ioctl {
        /// Which.
        cmd: &'static str,
        /// The device it was about.
        name: String,
        /// The kernel's answer.
        errno: Errno,
    },
    /// A name, uuid or target does not fit the ABI.
    Invalid(&'static str),
    /// The kernel's answer does not parse (truncated or malformed).
    BadReply(&'static str),
    /// The device node could not be made.
    Node {
        /// Its path.
        path: String,
        /// Why.
        errno: Errno,
    },
}

impl fmt::Display for DmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DmError::NoDeviceMapper => write!(
                f,
                "no device-mapper: {CONTROL} does not exist and the kernel publishes no \
                 device-mapper misc device (CONFIG_BLK_DEV_DM; load dm_mod and dm_crypt)"
            ),
            DmError::Open(e) => write!(f, "cannot open {CONTROL}: {}", crate::os(e)),
            DmError::Ioctl { cmd, name, errno } => {
                write!(f, "device-mapper {cmd} for '{name}': {}", crate::os(errno))?;
                match (*cmd, *errno) {
                    ("DM_TABLE_LOAD", Errno::INVAL | Errno::NOENT) => f.write_str(
                        " (the kernel log says why: is dm_crypt loaded, and the cipher's \
                         modules, e.g. xts (with integrity: dm_integrity, authenc)? is the \
                         key in the keyring? is the device large enough?)",
                    ),
                    ("DM_DEV_CREATE", Errno::BUSY) => {
                        f.write_str(" (a device of that name exists already)")
                    }
                    _ => Ok(()),
                }
            }
            DmError::Invalid(what) => write!(f, "device-mapper: {what}"),
            DmError::BadReply(what) => write!(f, "device-mapper: malformed reply: {what}"),
            DmError::Node { path, errno } => {
                write!(
                    f,
                    "cannot create the device node {path}: {}",
                    crate::os(errno)
                )
            }
        }
    }
}

impl core::error::Error for DmError {}

/// Whether `name` is usable as a device-mapper name and a file name under `/dev/mapper`:
/// 1 to 64 characters of `A-Z a-z 0-9 _ - . +`, not `.`, `..` or `control`.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'+'))
        && !matches!(name, "." | ".." | "control")
}

/// One target of a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// First sector (512 bytes) of the mapped device it covers.
    pub start: u64,
    /// Its length, sectors.
    pub length: u64,
    /// The target type (`crypt`).
    pub kind: String,
    /// The parameter string.
    pub params: String,
}

/// What DM_DEV_STATUS says about a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// The block device (`makedev(major, minor)` as the kernel encodes it).
    pub dev: u64,
    /// Openers (a mount counts).
    pub open_count: i32,
    /// Targets of the live table.
    pub target_count: u32,
    /// A live table is present.
    pub active: bool,
    /// Suspended.
    pub suspended: bool,
    /// Read-only.
    pub read_only: bool,
}

/// An open `/dev/mapper/control`.
pub struct Control {
    fd: OwnedFd,
}

fn copy_name(dst: &mut [u8], src: &str) -> Result<(), DmError> {
    if src.len() >= dst.len() || src.as_bytes().contains(&0) {
        return Err(DmError::Invalid("name or uuid too long"));
    }
    dst[..src.len()].copy_from_slice(src.as_bytes());
    Ok(())
}

/// `(major, minor)` from the kernel's `dev_t` encoding (`new_encode_dev`, as returned in
/// `dm_ioctl.dev`: the huge encoding of `MKDEV`).
pub fn split_dev(dev: u64) -> (u32, u32) {
    let major = ((dev >> 8) & 0xfff) as u32 | (((dev >> 32) & !0xfff) as u32);
    let minor = (dev & 0xff) as u32 | (((dev >> 12) & !0xff) as u32);
    (major, minor)
}

impl Control {
    /// Opens the control device, making its node first if devtmpfs has none (the
    /// kernel publishes its number in sysfs once dm_mod is loaded).
    pub fn open() -> Result<Control, DmError> {
        if !exists(CONTROL) {
            make_control_node()?;
        }
        let fd = crate::fs::retry(|| {
            rustix::fs::open(CONTROL, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        })
        .map_err(|e| match e {
            Errno::NOENT | Errno::NODEV | Errno::NXIO => DmError::NoDeviceMapper,
            e => DmError::Open(e),
        })?;
        let st = rustix::fs::fstat(&fd).map_err(DmError::Open)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::CharacterDevice {
            return Err(DmError::Invalid(
                "/dev/mapper/control is not a character device",
            ));
        }
        let c = Control { fd };
        c.version()?;
        Ok(c)
    }

    fn call(&self, cmd: Cmd, name: &str, buf: &mut Buffer) -> Result<(), DmError> {
        buf.hdr.version = VERSION;
        buf.hdr.data_size = core::mem::size_of::<Buffer>() as u32;
        if buf.hdr.data_start == 0 {
            buf.hdr.data_start = HEADER as u32;
        }
        if !name.is_empty() {
            buf.hdr.name = [0; NAME_LEN];
            copy_name(&mut buf.hdr.name, name)?;
        }
        let r = match cmd {
            Cmd::Version => self.raw::<{ opcode(Cmd::Version as u8) }>(buf),
            Cmd::DevCreate => self.raw::<{ opcode(Cmd::DevCreate as u8) }>(buf),
            Cmd::DevRemove => self.raw::<{ opcode(Cmd::DevRemove as u8) }>(buf),
            Cmd::DevSuspend => self.raw::<{ opcode(Cmd::DevSuspend as u8) }>(buf),
            Cmd::DevStatus => self.raw::<{ opcode(Cmd::DevStatus as u8) }>(buf),
            Cmd::TableLoad => self.raw::<{ opcode(Cmd::TableLoad as u8) }>(buf),
            Cmd::TableStatus => self.raw::<{ opcode(Cmd::TableStatus as u8) }>(buf),
        };
        r.map_err(|errno| DmError::Ioctl {
            cmd: cmd.name(),
            name: name.into(),
            errno,
        })
    }

    #[allow(unsafe_code)]
    fn raw<const OPCODE: Opcode>(&self, buf: &mut Buffer) -> Result<(), Errno> {
        // SAFETY: every device-mapper command is `_IOWR(0xfd, cmd, struct dm_ioctl)`, and
        // `buf` is a `#[repr(C)]` `struct dm_ioctl` (layout tested below) followed by
        // `DATA_LEN` bytes of the same allocation. `call` set `data_size` to the size of
        // the whole `Buffer`, so the kernel's `copy_params` reads and its `copy_to_user`
        // writes at most that many bytes at this exclusive borrow, which outlives the
        // call. Every field of `Buffer` accepts any bit pattern the kernel writes.
        unsafe { ioctl(self.fd.as_fd(), Updater::<OPCODE, Buffer>::new(buf)) }
    }

    /// The kernel's device-mapper interface version (DM_VERSION).
    pub fn version(&self) -> Result<[u32; 3], DmError> {
        let mut buf = new_buffer();
        self.call(Cmd::Version, "", &mut buf)?;
        Ok(buf.hdr.version)
    }

    /// Creates an empty device `name` (no table yet) with `uuid` (may be empty); returns
    /// its block device number.
    pub fn create(&self, name: &str, uuid: &str) -> Result<u64, DmError> {
        if !valid_name(name) {
            return Err(DmError::Invalid("invalid device name"));
        }
        let mut buf = new_buffer();
        copy_name(&mut buf.hdr.uuid, uuid)?;
        self.call(Cmd::DevCreate, name, &mut buf)?;
        Ok(buf.hdr.dev)
    }

    /// Loads `targets` as the inactive table of `name` (DM_TABLE_LOAD with the secure-data
    /// flag: the kernel wipes its copy of the buffer).
    pub fn load_table(
        &self,
        name: &str,
        targets: &[Target],
        read_only: bool,
    ) -> Result<(), DmError> {
        let mut buf = new_buffer();
        let mut at = 0usize;
        for t in targets {
            if t.kind.len() >= TYPE_NAME_LEN || t.params.as_bytes().contains(&0) {
                return Err(DmError::Invalid("target type or parameters malformed"));
            }
            let len = SPEC + t.params.len() + 1;
            let padded = len.next_multiple_of(8);
            if at + padded > DATA_LEN {
                return Err(DmError::Invalid("table too large"));
            }
            let mut spec = DmTargetSpec {
                sector_start: t.start,
                length: t.length,
                status: 0,
                next: padded as u32,
                target_type: [0; TYPE_NAME_LEN],
            };
            spec.target_type[..t.kind.len()].copy_from_slice(t.kind.as_bytes());
            write_spec(&mut buf.data[at..at + SPEC], &spec);
            buf.data[at + SPEC..at + SPEC + t.params.len()].copy_from_slice(t.params.as_bytes());
            at += padded;
        }
        buf.hdr.target_count = targets.len() as u32;
        buf.hdr.flags = SECURE_DATA_FLAG | if read_only { READONLY_FLAG } else { 0 };
        let r = self.call(Cmd::TableLoad, name, &mut buf);
        zeroize::Zeroize::zeroize(&mut buf.data[..]);
        r
    }

    /// Makes the loaded table live (DM_DEV_SUSPEND without the suspend flag: resume);
    /// returns the device number.
    pub fn resume(&self, name: &str) -> Result<u64, DmError> {
        let mut buf = new_buffer();
        self.call(Cmd::DevSuspend, name, &mut buf)?;
        Ok(buf.hdr.dev)
    }

    /// Removes `name` (DM_DEV_REMOVE); fails with `EBUSY` while it is open (mounted).
    pub fn remove(&self, name: &str) -> Result<(), DmError> {
        let mut buf = new_buffer();
        self.call(Cmd::DevRemove, name, &mut buf)
    }

    /// DM_DEV_STATUS of `name`.
    pub fn status(&self, name: &str) -> Result<Status, DmError> {
        let mut buf = new_buffer();
        self.call(Cmd::DevStatus, name, &mut buf)?;
        let h = &buf.hdr;
        Ok(Status {
            dev: h.dev,
            open_count: h.open_count,
            target_count: h.target_count,
            active: h.flags & ACTIVE_PRESENT_FLAG != 0,
            suspended: h.flags & SUSPEND_FLAG != 0,
            read_only: h.flags & READONLY_FLAG != 0,
        })
    }

    /// The live table of `name` as the kernel prints it (DM_TABLE_STATUS with the table
    /// flag: what `dmsetup table` shows). A crypt target loaded from the keyring shows
    /// the key reference, never the key.
    pub fn table(&self, name: &str) -> Result<Vec<Target>, DmError> {
        let mut buf = new_buffer();
        buf.hdr.flags = STATUS_TABLE_FLAG;
        self.call(Cmd::TableStatus, name, &mut buf)?;
        if buf.hdr.flags & BUFFER_FULL_FLAG != 0 {
            return Err(DmError::BadReply("table larger than the buffer"));
        }
        parse_table(&buf)
    }
}

fn new_buffer() -> alloc::boxed::Box<Buffer> {
    alloc::boxed::Box::new(Buffer {
        hdr: DmIoctl {
            version: VERSION,
            data_size: 0,
            data_start: 0,
            target_count: 0,
            open_count: 0,
            flags: 0,
            event_nr: 0,
            padding: 0,
            dev: 0,
            name: [0; NAME_LEN],
            uuid: [0; UUID_LEN],
            data: [0; 7],
        },
        data: [0; DATA_LEN],
    })
}

fn write_spec(dst: &mut [u8], s: &DmTargetSpec) {
    dst[0..8].copy_from_slice(&s.sector_start.to_ne_bytes());
    dst[8..16].copy_from_slice(&s.length.to_ne_bytes());
    dst[16..20].copy_from_slice(&s.status.to_ne_bytes());
    dst[20..24].copy_from_slice(&s.next.to_ne_bytes());
    dst[24..40].copy_from_slice(&s.target_type);
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_ne_bytes(a)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_ne_bytes(a)
}

/// Reads the targets of a DM_TABLE_STATUS reply: `next` counts from the first spec.
fn parse_table(buf: &Buffer) -> Result<Vec<Target>, DmError> {
    let start = (buf.hdr.data_start as usize)
        .checked_sub(HEADER)
        .ok_or(DmError::BadReply("data_start inside the header"))?;
    let data = buf
        .data
        .get(start..)
        .ok_or(DmError::BadReply("data_start outside the buffer"))?;
    let mut targets = Vec::new();
    let mut at = 0usize;
    for _ in 0..buf.hdr.target_count.min(1024) {
        let spec = data
            .get(at..at + SPEC)
            .ok_or(DmError::BadReply("target outside the buffer"))?;
        let kind = &spec[24..40];
        let kind_end = kind.iter().position(|&b| b == 0).unwrap_or(kind.len());
        let params = &data[at + SPEC..];
        let params_end = params
            .iter()
            .position(|&b| b == 0)
            .ok_or(DmError::BadReply("unterminated parameters"))?;
        targets.push(Target {
            start: u64_at(spec, 0),
            length: u64_at(spec, 8),
            kind: String::from_utf8_lossy(&kind[..kind_end]).into_owned(),
            params: String::from_utf8_lossy(&params[..params_end]).into_owned(),
        });
        let next = u32_at(spec, 20) as usize;
        if next <= at {
            break;
        }
        at = next;
    }
    Ok(targets)
}

/// Makes `/dev/mapper/control` from the number sysfs publishes (no udev, and a devtmpfs
/// that was not mounted when dm_mod registered it, or no devtmpfs at all).
fn make_control_node() -> Result<(), DmError> {
    let text = crate::fs::read_file(CONTROL_SYSFS_DEV, 64).map_err(|_| DmError::NoDeviceMapper)?;
    let (major, minor) = parse_major_minor(&text).ok_or(DmError::BadReply("misc device number"))?;
    make_node(CONTROL, FileType::CharacterDevice, major, minor)
}

/// Parses sysfs's `MAJOR:MINOR\n`.
pub fn parse_major_minor(text: &[u8]) -> Option<(u32, u32)> {
    let s = core::str::from_utf8(text).ok()?.trim();
    let (a, b) = s.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Creates a device node (mode 0600) at `path`, replacing whatever is there; creates
/// `/dev/mapper` if needed.
fn make_node(path: &str, kind: FileType, major: u32, minor: u32) -> Result<(), DmError> {
    let err = |errno| DmError::Node {
        path: path.into(),
        errno,
    };
    if let Some((dir, _)) = path.rsplit_once('/')
        && !dir.is_empty()
        && !exists(dir)
    {
        match rustix::fs::mkdir(dir, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(err(e)),
        }
    }
    match rustix::fs::unlink(path) {
        Ok(()) | Err(Errno::NOENT) => {}
        Err(e) => return Err(err(e)),
    }
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        kind,
        Mode::from_raw_mode(0o600),
        rustix::fs::makedev(major, minor),
    )
    .map_err(err)
}

/// The node path of a mapped device.
pub fn node_path(name: &str) -> String {
    alloc::format!("/dev/mapper/{name}")
}

/// A live mapped device, removed (with its node) when dropped unless [`Mapping::keep`]
/// is called.
pub struct Mapping {
    control: Control,
    name: String,
    dev: u64,
    node: Option<String>,
    armed: bool,
}

impl Mapping {
    /// Creates `name`, loads `targets`, resumes it and makes `/dev/mapper/NAME`. Any
    /// failure removes what was created. `before_resume` runs between the table load
    /// and the resume (the caller drops the keyring key there: dm-crypt read it at load).
    pub fn activate(
        name: &str,
        uuid: &str,
        targets: &[Target],
        read_only: bool,
        before_resume: impl FnOnce(),
    ) -> Result<Mapping, DmError> {
        let control = Control::open()?;
        let dev = control.create(name, uuid)?;
        let mut m = Mapping {
            control,
            name: name.into(),
            dev,
            node: None,
            armed: true,
        };
        let loaded = m.control.load_table(name, targets, read_only);
        before_resume();
        loaded?;
        m.dev = m.control.resume(name)?;
        let path = node_path(name);
        let (major, minor) = split_dev(m.dev);
        make_node(&path, FileType::BlockDevice, major, minor)?;
        m.node = Some(path);
        Ok(m)
    }

    /// The mapped device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its node, `/dev/mapper/NAME`.
    pub fn node(&self) -> &str {
        self.node.as_deref().unwrap_or_default()
    }

    /// Its device number.
    pub fn dev(&self) -> u64 {
        self.dev
    }

    /// The control device it was made with.
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// Keeps the device after this guard is dropped.
    pub fn keep(mut self) {
        self.armed = false;
    }

    /// Removes the device now (and its node); the error if the kernel refused.
    pub fn remove(mut self) -> Result<(), DmError> {
        self.armed = false;
        self.teardown()
    }

    fn teardown(&mut self) -> Result<(), DmError> {
        if let Some(node) = self.node.take() {
            let _ = rustix::fs::unlink(node.as_str());
        }
        self.control.remove(&self.name)
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if self.armed {
            match self.teardown() {
                Ok(()) => crate::info!("removed the half-open device {}", self.name),
                Err(e) => crate::warn!("cannot remove the half-open device {}: {e}", self.name),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn structs_have_the_kernel_layout() {
        assert_eq!(size_of::<DmIoctl>(), 312);
        assert_eq!(offset_of!(DmIoctl, data_size), 12);
        assert_eq!(offset_of!(DmIoctl, data_start), 16);
        assert_eq!(offset_of!(DmIoctl, target_count), 20);
        assert_eq!(offset_of!(DmIoctl, open_count), 24);
        assert_eq!(offset_of!(DmIoctl, flags), 28);
        assert_eq!(offset_of!(DmIoctl, event_nr), 32);
        assert_eq!(offset_of!(DmIoctl, dev), 40);
        assert_eq!(offset_of!(DmIoctl, name), 48);
        assert_eq!(offset_of!(DmIoctl, uuid), 176);
        assert_eq!(offset_of!(DmIoctl, data), 305);
        assert_eq!(size_of::<DmTargetSpec>(), 40);
        assert_eq!(offset_of!(DmTargetSpec, next), 20);
        assert_eq!(offset_of!(DmTargetSpec, target_type), 24);
        assert_eq!(offset_of!(Buffer, data), 312);
        assert_eq!(size_of::<Buffer>(), 16 << 10);
    }

    /// The opcodes as linux-raw-sys (generated from the kernel's headers) has them.
    #[test]
    fn opcodes_match_the_kernel_headers() {
        use linux_raw_sys::ioctl as k;
        assert_eq!(opcode(Cmd::Version as u8), k::DM_VERSION as Opcode);
        assert_eq!(opcode(Cmd::DevCreate as u8), k::DM_DEV_CREATE as Opcode);
        assert_eq!(opcode(Cmd::DevRemove as u8), k::DM_DEV_REMOVE as Opcode);
        assert_eq!(opcode(Cmd::DevSuspend as u8), k::DM_DEV_SUSPEND as Opcode);
        assert_eq!(opcode(Cmd::DevStatus as u8), k::DM_DEV_STATUS as Opcode);
        assert_eq!(opcode(Cmd::TableLoad as u8), k::DM_TABLE_LOAD as Opcode);
        assert_eq!(opcode(Cmd::TableStatus as u8), k::DM_TABLE_STATUS as Opcode);
    }

    #[test]
    fn device_numbers_decode_as_the_kernel_encodes_them() {
        // new_encode_dev(MKDEV(254, 0)) and MKDEV(259, 300).
        assert_eq!(split_dev(254 << 8), (254, 0));
        let enc = |ma: u64, mi: u64| (mi & 0xff) | (ma << 8) | ((mi & !0xff) << 12);
        assert_eq!(split_dev(enc(259, 300)), (259, 300));
        assert_eq!(split_dev(enc(4095, 1 << 19)), (4095, 1 << 19));
        assert_eq!(parse_major_minor(b"10:236\n"), Some((10, 236)));
        assert_eq!(parse_major_minor(b"10"), None);
        assert_eq!(parse_major_minor(b"a:b"), None);
    }

    #[test]
    fn names() {
        assert!(valid_name("data"));
        assert!(valid_name("root-1.x_y+z"));
        for bad in [
            "",
            ".",
            "..",
            "control",
            "a/b",
            "a b",
            "a\0",
            &"x".repeat(65),
        ] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }

    /// A table is written as the kernel reads it on DM_TABLE_LOAD (`next` relative to
    /// each spec) and read back the way DM_TABLE_STATUS answers (`next` from the first).
    #[test]
    fn table_encoding_round_trip() {
        let mut buf = new_buffer();
        let targets = [
            Target {
                start: 0,
                length: 2048,
                kind: "crypt".into(),
                params: "aes-xts-plain64 :64:logon:sealgate:data 0 /dev/vdb 32768".into(),
            },
            Target {
                start: 2048,
                length: 8,
                kind: "zero".into(),
                params: String::new(),
            },
        ];
        let mut at = 0;
        for t in &targets {
            let padded = (SPEC + t.params.len() + 1).next_multiple_of(8);
            let spec = DmTargetSpec {
                sector_start: t.start,
                length: t.length,
                status: 0,
                next: (at + padded) as u32,
                target_type: {
                    let mut k = [0; 16];
                    k[..t.kind.len()].copy_from_slice(t.kind.as_bytes());
                    k
                },
            };
            write_spec(&mut buf.data[at..at + SPEC], &spec);
            buf.data[at + SPEC..at + SPEC + t.params.len()].copy_from_slice(t.params.as_bytes());
            at += padded;
        }
        buf.hdr.data_start = HEADER as u32;
        buf.hdr.target_count = 2;
        assert_eq!(parse_table(&buf).unwrap(), targets);
        // A reply that claims more targets than it holds stops at the end of the data.
        buf.hdr.target_count = 1000;
        assert!(parse_table(&buf).is_ok());
        buf.hdr.data_start = 4;
        assert!(parse_table(&buf).is_err());
    }

    /// On a kernel without device-mapper (this build machine's has none) opening the
    /// control device says so; with one, the version is 4.x.
    #[test]
    fn control_device_opens_or_says_why_not() {
        let has_dm = exists("/sys/class/misc/device-mapper");
        match Control::open() {
            Ok(c) => {
                assert!(has_dm);
                assert_eq!(c.version().unwrap()[0], 4);
                let e = c.status("sealgate-no-such-device").unwrap_err();
                assert!(
                    matches!(
                        e,
                        DmError::Ioctl {
                            errno: Errno::NXIO,
                            ..
                        }
                    ),
                    "{e}"
                );
            }
            Err(e) => {
                assert!(!has_dm, "{e}");
                assert_eq!(e, DmError::NoDeviceMapper);
                assert!(e.to_string().contains("dm_mod"), "{e}");
            }
        }
    }
}
