//! Encrypted volumes: a `[[volume]]` of the configuration opened with a key from the KBS,
//! mapped through device-mapper (`/dev/mapper/NAME`) and mounted, all in-process.
//!
//! Two phases, so that the run's order holds (everything local is checked before the
//! first byte goes to the KBS):
//! 1. [`prepare`], before the network: find the device (a path, or the one block device
//!    whose LUKS header has the configured UUID), open it, and for LUKS2 read and parse
//!    both header copies ([`sealgate_core::volume::luks2`]); for plain volumes check the
//!    parameters against the device.
//! 2. [`Prepared::open`], with the resource the KBS released: LUKS2: open a keyslot
//!    (KDF costs bounded by [`KdfLimits::DEFAULT`], checked before anything is allocated),
//!    which verifies the volume key against the header's digest, so a wrong passphrase
//!    fails here with "keyslot did not open" and nothing has been created; plain: the
//!    resource is the key. Then the key goes into the kernel keyring as a `logon` key,
//!    the crypt table references it (`:<size>:logon:<description>`, so `dmsetup table`
//!    never shows the key), the key is dropped from the keyring as soon as the table is
//!    loaded (dm-crypt holds its own copy), and the mapped device is mounted.
//!
//! Any failure after the device-mapper device exists removes it (and the mount point's
//! mount, if any): nothing is left half-open. [`Open::close`] undoes a successful open
//! (when a later step of the run fails).

use crate::prelude::*;
use core::fmt;
use rustix::io::Errno;
use rustix::mount::{MountFlags, UnmountFlags};
use sealgate_core::config::{DeviceMatch, VolumeSpec, VolumeType};
use sealgate_core::volume::integrity::{self, Superblock, SuperblockError};
use sealgate_core::volume::luks2::{self, Header, HeaderError, OpenError};
use sealgate_core::volume::plain::{self, PlainError};
use sealgate_core::volume::{KdfLimits, Segment, SegmentError, VolumeKey, keyring_key_ref};
use sealgate_linux::blockdev::{self, Device, DeviceError};
use sealgate_linux::dm::{DmError, Mapping, Target};
use sealgate_linux::keyring::{KeyringError, LogonKey};
use sealgate_linux::time::Instant;
use sealgate_linux::{debug, info, warn};
use zeroize::Zeroizing;

/// The first bytes of a device read to find a LUKS UUID (the binary header).
const UUID_PROBE_LEN: usize = 4096;
/// The LUKS magic (`LUKS\xba\xbe`) at the start of the primary header.
const LUKS_MAGIC: &[u8; 6] = b"LUKS\xba\xbe";

/// Why a volume could not be opened. No variant carries key material.
#[derive(Debug)]
pub enum VolumeError {
    /// The device could not be found, opened or read.
    Device(DeviceError),
    /// The LUKS2 header is refused.
    Header(HeaderError),
    /// No keyslot opened with the KBS's passphrase.
    Keyslot(OpenError),
    /// The plain volume's parameters or key are refused.
    Plain(PlainError),
    /// The data segment does not fit the device.
    Segment(SegmentError),
    /// The device is a regular file, which device-mapper cannot map.
    NotABlockDevice,
    /// The key could not be put into the kernel keyring.
    Keyring(KeyringError),
    /// Device-mapper refused.
    Dm(DmError),
    /// The mount point could not be created.
    MountPoint {
        /// It.
        path: String,
        /// Why.
        errno: Errno,
    },
    /// The volume names no key source (a `[[volume]]` always does).
    NoKeySource,
    /// The dm-integrity superblock area could not be zeroed or read back.
    IntegrityIo {
        /// What was being done.
        what: &'static str,
        /// Why.
        errno: Errno,
    },
    /// The kernel's dm-integrity superblock is refused.
    Integrity(SuperblockError),
    /// The mount failed.
    Mount {
        /// The mount point.
        target: String,
        /// The filesystem type.
        fstype: String,
        /// Why.
        errno: Errno,
    },
}

impl fmt::Display for VolumeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VolumeError::Device(e) => write!(f, "{e}"),
            VolumeError::Header(e) => write!(f, "{e}"),
            VolumeError::Keyslot(e) => write!(f, "{e}"),
            VolumeError::Plain(e) => write!(f, "{e}"),
            VolumeError::Segment(e) => write!(f, "{e}"),
            VolumeError::NotABlockDevice => f.write_str(
                "not a block device: device-mapper maps block devices only (attach an image \
                 file with losetup)",
            ),
            VolumeError::Keyring(e) => write!(f, "{e}"),
            VolumeError::Dm(e) => write!(f, "{e}"),
            VolumeError::NoKeySource => f.write_str("no KBS resource holds its key"),
            VolumeError::IntegrityIo { what, errno } => {
                write!(
                    f,
                    "dm-integrity: cannot {what}: {}",
                    sealgate_linux::os(errno)
                )
            }
            VolumeError::Integrity(e) => write!(f, "{e}"),
            VolumeError::MountPoint { path, errno } => {
                write!(
                    f,
                    "cannot create the mount point {path}: {}",
                    sealgate_linux::os(errno)
                )
            }
            VolumeError::Mount {
                target,
                fstype,
                errno,
            } => {
                write!(
                    f,
                    "cannot mount it on {target} as {fstype}: {}",
                    sealgate_linux::os(errno)
                )?;
                if *errno == Errno::INVAL {
                    f.write_str(
                        " (no such filesystem on it: a wrong key for a plain volume reads as \
                         noise, or the filesystem type is wrong)",
                    )?;
                }
                Ok(())
            }
        }
    }
}

/// A volume's failure, naming the volume.
#[derive(Debug)]
pub struct VolumeFailure {
    /// The volume's name.
    pub name: String,
    /// Its device as configured.
    pub device: String,
    /// Why.
    pub error: VolumeError,
}

impl VolumeFailure {
    /// `error` of the volume `spec` declares.
    fn of(spec: &VolumeSpec, error: VolumeError) -> Box<VolumeFailure> {
        Box::new(VolumeFailure {
            name: spec.name.clone(),
            device: spec.device.to_string(),
            error,
        })
    }
}

impl fmt::Display for VolumeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "volume '{}' ({}): {}",
            self.name, self.device, self.error
        )
    }
}

/// A volume whose device is found and whose header is parsed; waiting for its key.
pub struct Prepared {
    spec: VolumeSpec,
    device: Device,
    header: Option<Header>,
}

/// Whether `head` (the first bytes of a device) is a LUKS header with `uuid`.
pub fn luks_uuid_matches(head: &[u8], uuid: &str) -> bool {
    if head.len() < 208 || &head[..6] != LUKS_MAGIC {
        return false;
    }
    let field = &head[168..208];
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    core::str::from_utf8(&field[..end]).is_ok_and(|u| u.eq_ignore_ascii_case(uuid))
}

/// Finds and opens the device of `spec`.
fn find_device(spec: &VolumeSpec) -> Result<Device, DeviceError> {
    let path = match &spec.device {
        DeviceMatch::Path(p) => p.clone(),
        DeviceMatch::LuksUuid(uuid) => {
            let candidates = blockdev::list().map_err(|e| DeviceError::NotFound {
                what: format!("LUKS UUID {uuid} (cannot list /sys/class/block: {e})"),
            })?;
            let path = blockdev::find(
                &candidates,
                UUID_PROBE_LEN,
                &format!("LUKS UUID {uuid}"),
                |head| luks_uuid_matches(head, uuid),
            )?;
            debug!("volume '{}': LUKS UUID {uuid} is {path}", spec.name);
            path
        }
    };
    Device::open(&path)
}

/// Phase 1 of every volume (see the module documentation): device, header, parameters.
pub fn prepare(specs: &[VolumeSpec]) -> Result<Vec<Prepared>, Box<VolumeFailure>> {
    specs.iter().map(prepare_one).collect()
}

/// Phase 1 of one volume: device, header, parameters.
pub fn prepare_one(spec: &VolumeSpec) -> Result<Prepared, Box<VolumeFailure>> {
    let fail = |error| VolumeFailure::of(spec, error);
    let device = find_device(spec).map_err(|e| fail(VolumeError::Device(e)))?;
    if device.rdev().is_none() {
        return Err(fail(VolumeError::NotABlockDevice));
    }
    let header = match &spec.kind {
        VolumeType::Luks2 => {
            let header = read_header(&device).map_err(fail)?;
            for note in header.notes() {
                warn!("volume '{}': {note}", spec.name);
            }
            if let DeviceMatch::LuksUuid(uuid) = &spec.device
                && !header.uuid().eq_ignore_ascii_case(uuid)
            {
                // The header copy in use (maybe the secondary) names another volume.
                return Err(fail(VolumeError::Header(HeaderError::Invalid(format!(
                    "the header in use has UUID {}, not {uuid}",
                    header.uuid()
                )))));
            }
            header
                .segment()
                .length_sectors(device.size())
                .map_err(|e| fail(VolumeError::Segment(e)))?;
            Some(header)
        }
        VolumeType::Plain(_) => {
            plain_segment(spec)
                .map_err(|e| fail(VolumeError::Plain(e)))?
                .length_sectors(device.size())
                .map_err(|e| fail(VolumeError::Segment(e)))?;
            None
        }
    };
    Ok(Prepared {
        spec: spec.clone(),
        device,
        header,
    })
}

fn read_header(device: &Device) -> Result<Header, VolumeError> {
    let probe = (luks2::BINARY_HEADER_LEN).min(device.size()) as usize;
    let start = device
        .read_at(0, probe, probe)
        .map_err(VolumeError::Device)?;
    let len = luks2::metadata_read_len(&start, device.size());
    let limit = luks2::MAX_METADATA_LEN as usize;
    let metadata = device
        .read_at(0, len as usize, limit)
        .map_err(VolumeError::Device)?;
    Header::parse(&metadata, device.size()).map_err(VolumeError::Header)
}

fn plain_segment(spec: &VolumeSpec) -> Result<Segment, PlainError> {
    let VolumeType::Plain(p) = &spec.kind else {
        return Err(PlainError::UnsupportedCipher("luks2".into()));
    };
    plain::segment(&plain::PlainParams {
        cipher: &p.cipher,
        key_bits: p.key_bits,
        sector_size: p.sector_size,
        offset_bytes: p.offset_sectors.saturating_mul(512),
        size_bytes: None,
        iv_offset: 0,
        iv_large_sectors: false,
    })
}

/// An opened (mapped, and mounted if configured) volume.
pub struct Open {
    /// The volume's name.
    pub name: String,
    /// `/dev/mapper/NAME`.
    pub node: String,
    /// The backing device.
    pub device: String,
    /// Where it is mounted.
    pub mount: Option<String>,
    /// Its filesystem type.
    pub fstype: String,
    /// The next root.
    pub root: bool,
    /// LUKS2 or plain.
    pub kind: &'static str,
    /// The dm table as the kernel shows it (a key reference, never the key).
    pub table: String,
    /// Time to open it (KDF included), mount excluded, microseconds.
    pub open_us: u128,
    /// The dm-integrity device under it, if any (`NAME_dif`), removed after it.
    pub lower: Option<String>,
}

impl Open {
    /// Unmounts and removes the mapped device (undoing [`Prepared::open`]).
    pub fn close(&self) -> Result<(), String> {
        if let Some(m) = &self.mount {
            rustix::mount::unmount(m.as_str(), UnmountFlags::empty())
                .map_err(|e| format!("unmount {m}: {}", sealgate_linux::os(e)))?;
        }
        let _ = rustix::fs::unlink(self.node.as_str());
        let control = sealgate_linux::dm::Control::open().map_err(|e| e.to_string())?;
        control.remove(&self.name).map_err(|e| e.to_string())?;
        if let Some(lower) = &self.lower {
            let _ = rustix::fs::unlink(sealgate_linux::dm::node_path(lower).as_str());
            control.remove(lower).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

impl Prepared {
    /// The volume's declaration.
    pub fn spec(&self) -> &VolumeSpec {
        &self.spec
    }

    /// Phase 2: opens the volume with `secret` (the passphrase for LUKS2, the key for
    /// plain), maps it and mounts it. On failure nothing stays mapped or mounted.
    pub fn open(self, secret: Zeroizing<Vec<u8>>) -> Result<Open, Box<VolumeFailure>> {
        self.map(secret)?.finish()
    }

    /// The first half of [`Prepared::open`]: opens the volume with `secret` and maps it.
    /// The mapping is removed when the [`Mapped`] is dropped, unless
    /// [`Mapped::finish`] mounts it (if configured) and keeps it.
    pub fn map(self, secret: Zeroizing<Vec<u8>>) -> Result<Mapped, Box<VolumeFailure>> {
        let spec = &self.spec;
        let fail = |error| VolumeFailure::of(spec, error);
        let started = Instant::now();
        let (key, segment, description, dm_uuid) = match &self.header {
            Some(header) => {
                let opened = luks2::open(header, &secret, &KdfLimits::DEFAULT, |offset, len| {
                    self.device.read_at(offset, len, len).map(|b| b.to_vec())
                })
                .map_err(|e| fail(VolumeError::Keyslot(e)))?;
                // The passphrase has done its work: wiped now, not at the end.
                drop(secret);
                debug!("volume '{}': keyslot {} opened", spec.name, opened.slot);
                let uuid: String = header.uuid().chars().filter(|c| *c != '-').collect();
                (
                    opened.key,
                    header.segment().clone(),
                    header.keyring_description(),
                    format!("CRYPT-LUKS2-{uuid}-{}", spec.name),
                )
            }
            None => {
                let segment = plain_segment(spec).map_err(|e| fail(VolumeError::Plain(e)))?;
                if secret.len() != segment.key_bytes {
                    return Err(fail(VolumeError::Plain(PlainError::KeyLength {
                        expected: segment.key_bytes,
                        got: secret.len(),
                    })));
                }
                (
                    VolumeKey::new(secret),
                    segment,
                    format!("sealgate:plain-{}", spec.name),
                    format!("CRYPT-PLAIN-{}", spec.name),
                )
            }
        };
        let length = segment
            .length_sectors(self.device.size())
            .map_err(|e| fail(VolumeError::Segment(e)))?;
        let rdev = self
            .device
            .rdev()
            .ok_or_else(|| fail(VolumeError::NotABlockDevice))?;
        let (major, minor) = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
        let mapping = activate(
            spec,
            key,
            &segment,
            length,
            &description,
            &dm_uuid,
            major,
            minor,
        )
        .map_err(fail)?;
        let open_us = started.elapsed().as_micros();
        let table = mapping
            .control()
            .table(mapping.name())
            .map(|t| {
                t.iter()
                    .map(|t| format!("{} {} {} {}", t.start, t.length, t.kind, t.params))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default();
        Ok(Mapped {
            kind: if self.header.is_some() {
                "luks2"
            } else {
                "plain"
            },
            device: self.device.path().to_string(),
            spec: self.spec,
            mapping,
            lower: None,
            table,
            open_us,
        })
    }
}

/// A volume that is mapped (`/dev/mapper/NAME`) and not mounted yet; dropping it removes
/// the mapping.
pub struct Mapped {
    spec: VolumeSpec,
    device: String,
    // Declared before `lower`: dropped (removed) first.
    mapping: Mapping,
    lower: Option<Mapping>,
    kind: &'static str,
    table: String,
    open_us: u128,
}

impl Mapped {
    /// `/dev/mapper/NAME`.
    pub fn node(&self) -> &str {
        self.mapping.node()
    }

    /// Mounts the volume if its declaration says where, and keeps the mapping. On failure
    /// the mapping is removed.
    pub fn finish(self) -> Result<Open, Box<VolumeFailure>> {
        let spec = &self.spec;
        let node = self.mapping.node().to_string();
        if let Some(target) = &spec.mount {
            mount(spec, &node, target).map_err(|error| VolumeFailure::of(spec, error))?;
        }
        info!(
            "volume '{}': {} opened as {node}{} in {} ms",
            spec.name,
            self.device,
            spec.mount
                .as_deref()
                .map(|m| format!(", mounted on {m}"))
                .unwrap_or_default(),
            self.open_us / 1000
        );
        self.mapping.keep();
        let lower = self.lower.map(|l| {
            let name = l.name().to_string();
            l.keep();
            name
        });
        Ok(Open {
            lower,
            name: self.spec.name,
            node,
            device: self.device,
            mount: self.spec.mount,
            fstype: self.spec.fstype,
            root: self.spec.root,
            kind: self.kind,
            table: self.table,
            open_us: self.open_us,
        })
    }
}

/// Puts the key into the keyring, creates the mapped device with a table that references
/// it, drops the key from the keyring once the table is loaded (and the plaintext key
/// from memory with it), and resumes the device.
#[allow(clippy::too_many_arguments)]
fn activate(
    spec: &VolumeSpec,
    key: VolumeKey,
    segment: &Segment,
    length: u64,
    description: &str,
    dm_uuid: &str,
    major: u32,
    minor: u32,
) -> Result<Mapping, VolumeError> {
    let logon = LogonKey::add(description, key.as_bytes()).map_err(VolumeError::Keyring)?;
    let key_len = key.len();
    // The kernel holds the key now: wipe ours.
    drop(key);
    let params = segment.crypt_params(
        &keyring_key_ref(key_len, "logon", description),
        &format!("{major}:{minor}"),
    );
    let target = Target {
        start: 0,
        length,
        kind: "crypt".into(),
        params,
    };
    Mapping::activate(&spec.name, dm_uuid, &[target], spec.read_only, || {
        drop(logon)
    })
    .map_err(VolumeError::Dm)
}

/// Maps the device of `spec` (a path) as an ephemeral volume with authenticated
/// encryption ([`sealgate_core::volume::integrity`]): zeroes the dm-integrity superblock
/// area, lets the kernel format it (a short-lived table of one block), reads back how many
/// data sectors it provides, maps dm-integrity (`NAME_dif`) over that and dm-crypt
/// (`NAME`) on top with `key` (XTS key, then HMAC key) through the keyring. The data area
/// is not wiped (as `cryptsetup --integrity-no-wipe`): a block never written fails its
/// read. On failure nothing stays mapped.
pub fn map_integrity(spec: &VolumeSpec, key: VolumeKey) -> Result<Mapped, Box<VolumeFailure>> {
    let fail = |error| VolumeFailure::of(spec, error);
    let started = Instant::now();
    let device = find_device(spec).map_err(|e| fail(VolumeError::Device(e)))?;
    let rdev = device
        .rdev()
        .ok_or_else(|| fail(VolumeError::NotABlockDevice))?;
    if key.len() != integrity::KEY_BYTES {
        return Err(fail(VolumeError::Plain(PlainError::KeyLength {
            expected: integrity::KEY_BYTES,
            got: key.len(),
        })));
    }
    let lower_name = format!("{}_dif", spec.name);
    if !sealgate_linux::dm::valid_name(&lower_name) {
        return Err(fail(VolumeError::Dm(DmError::Invalid(
            "the mapper name is too long for its dm-integrity device (NAME_dif: 64 at most)",
        ))));
    }
    let io = |what| move |errno| fail(VolumeError::IntegrityIo { what, errno });
    let raw = rustix::fs::open(
        device.path(),
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(io("open the device for writing"))?;
    let zeros = vec![0u8; integrity::SUPERBLOCK_AREA];
    write_all_at(&raw, &zeros, 0).map_err(io("zero the superblock area"))?;
    rustix::fs::fsync(&raw).map_err(io("flush the superblock area"))?;
    let dev = format!("{}:{}", rustix::fs::major(rdev), rustix::fs::minor(rdev));
    let uuid = format!("SEALGATE-INTEGRITY-{}", spec.name);
    let table = |length| Target {
        start: 0,
        length,
        kind: "integrity".into(),
        params: integrity::integrity_params(&dev),
    };
    // The kernel formats a zeroed device when the table is loaded; one block is enough.
    Mapping::activate(
        &lower_name,
        &uuid,
        &[table(integrity::SECTORS_PER_BLOCK)],
        false,
        || {},
    )
    .and_then(Mapping::remove)
    .map_err(|e| fail(VolumeError::Dm(e)))?;
    // The kernel wrote the superblock past our page cache: drop it, then read.
    let _ = rustix::fs::fadvise(&raw, 0, None, rustix::fs::Advice::DontNeed);
    let mut sb = vec![0u8; integrity::SUPERBLOCK_AREA];
    read_exact_at(&raw, &mut sb, 0).map_err(io("read the superblock"))?;
    drop(raw);
    let sb = Superblock::parse(&sb).map_err(|e| fail(VolumeError::Integrity(e)))?;
    let length = sb.provided_data_sectors;
    debug!(
        "volume '{}': dm-integrity provides {length} sectors of {} ({} bytes)",
        spec.name,
        device.size() / 512,
        device.size()
    );
    let lower = Mapping::activate(&lower_name, &uuid, &[table(length)], false, || {})
        .map_err(|e| fail(VolumeError::Dm(e)))?;
    let (lmaj, lmin) = sealgate_linux::dm::split_dev(lower.dev());
    let description = format!("sealgate:integrity-{}", spec.name);
    let logon =
        LogonKey::add(&description, key.as_bytes()).map_err(|e| fail(VolumeError::Keyring(e)))?;
    drop(key);
    let target = Target {
        start: 0,
        length,
        kind: "crypt".into(),
        params: integrity::crypt_params(
            &keyring_key_ref(integrity::KEY_BYTES, "logon", &description),
            &format!("{lmaj}:{lmin}"),
        ),
    };
    // On failure `lower` is dropped: removed.
    let mapping = Mapping::activate(
        &spec.name,
        &format!("CRYPT-INTEGRITY-{}", spec.name),
        &[target],
        false,
        || drop(logon),
    )
    .map_err(|e| fail(VolumeError::Dm(e)))?;
    let open_us = started.elapsed().as_micros();
    let table = [mapping.name(), lower.name()]
        .iter()
        .filter_map(|n| mapping.control().table(n).ok())
        .flatten()
        .map(|t| format!("{} {} {} {}", t.start, t.length, t.kind, t.params))
        .collect::<Vec<_>>()
        .join("; ");
    Ok(Mapped {
        kind: "integrity",
        device: device.path().to_string(),
        spec: spec.clone(),
        mapping,
        lower: Some(lower),
        table,
        open_us,
    })
}

/// `pwrite` until all of `buf` is written at `offset`.
pub(crate) fn write_all_at(
    fd: impl rustix::fd::AsFd,
    buf: &[u8],
    offset: u64,
) -> Result<(), Errno> {
    let mut done = 0;
    while done < buf.len() {
        match rustix::io::pwrite(&fd, &buf[done..], offset + done as u64) {
            Ok(0) => return Err(Errno::NOSPC),
            Ok(n) => done += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `pread` until `buf` is full.
fn read_exact_at(fd: impl rustix::fd::AsFd, buf: &mut [u8], offset: u64) -> Result<(), Errno> {
    let mut done = 0;
    while done < buf.len() {
        match rustix::io::pread(&fd, &mut buf[done..], offset + done as u64) {
            Ok(0) => return Err(Errno::NXIO),
            Ok(n) => done += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Creates the mount point (and its parents) and mounts `node` there.
fn mount(spec: &VolumeSpec, node: &str, target: &str) -> Result<(), VolumeError> {
    mkdir_p(target).map_err(|errno| VolumeError::MountPoint {
        path: target.into(),
        errno,
    })?;
    let mut flags = MountFlags::empty();
    if spec.read_only {
        flags |= MountFlags::RDONLY;
    }
    if !spec.root {
        // A data volume holds data: no device nodes, no set-id programs from it.
        flags |= MountFlags::NOSUID | MountFlags::NODEV;
    }
    let data = alloc::ffi::CString::new(spec.options.as_str()).map_err(|_| VolumeError::Mount {
        target: target.into(),
        fstype: spec.fstype.clone(),
        errno: Errno::INVAL,
    })?;
    rustix::mount::mount(node, target, spec.fstype.as_str(), flags, data.as_c_str()).map_err(
        |errno| VolumeError::Mount {
            target: target.into(),
            fstype: spec.fstype.clone(),
            errno,
        },
    )
}

/// `mkdir -p` with mode 0755.
pub(crate) fn mkdir_p(path: &str) -> Result<(), Errno> {
    let mut at = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        at.push('/');
        at.push_str(part);
        match rustix::fs::mkdir(at.as_str(), rustix::fs::Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Closes `opened` in reverse order (after a later failure of the run); logs what
/// cannot be undone.
pub fn close_all(opened: &[Open]) {
    for v in opened.iter().rev() {
        match v.close() {
            Ok(()) => info!("volume '{}': closed", v.name),
            Err(e) => warn!("volume '{}': cannot close: {e}", v.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luks_uuid_probe() {
        let mut head = vec![0u8; 4096];
        head[..6].copy_from_slice(LUKS_MAGIC);
        let uuid = "16dccb90-64f0-4482-affe-c0ead93bc0f5";
        head[168..168 + 36].copy_from_slice(uuid.as_bytes());
        assert!(luks_uuid_matches(&head, uuid));
        assert!(luks_uuid_matches(&head, &uuid.to_uppercase()));
        assert!(!luks_uuid_matches(
            &head,
            "16dccb90-64f0-4482-affe-c0ead93bc0f6"
        ));
        assert!(!luks_uuid_matches(&head[..100], uuid));
        head[0] = b'X';
        assert!(!luks_uuid_matches(&head, uuid));
    }
}
