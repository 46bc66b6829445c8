//! CDH `SecureMount` for `block-device` volumes with `encryptionType = "luks2"` (kata's
//! secure storage), on the volume code of `[[volume]]` ([`crate::volume`]): the same
//! device lookup, LUKS2 parser, keyslot opener, keyring hand-over, device-mapper calls and
//! mount.
//!
//! - `sourceType = "encrypted"`: a LUKS2 volume (made by cryptsetup) opened with the
//!   passphrase the `key` option names: a KBS resource (`kbs:///…`, through the hub's
//!   shared session) or a sealed secret (`sealed.…`, unsealed by the hub with its
//!   signature rules). `file://` keys are refused: the request comes from the host, and a
//!   guest file the host names is not a measured key source.
//! - `sourceType = "empty"`: an ephemeral volume. Upstream formats LUKS2 with a detached
//!   header in tmpfs, which is lost at reboot; sealgate maps plain dm-crypt
//!   (aes-xts-plain64, 4096-byte sectors) with a fresh 512-bit key from the OS RNG that
//!   goes to the kernel keyring and is wiped, so the data is unreadable once the mapping
//!   is gone. A `key` option is not needed for that and is not fetched.
//! - `targetType = "fileSystem"`: for an empty source, the image's `mkfs.<filesystemType>`
//!   (looked up only in `/sbin`, `/usr/sbin`, `/bin`, `/usr/bin`) makes the filesystem
//!   with `mkfsOpts`; then the volume is mounted (`nosuid,nodev`) on the mount point.
//!   `targetType = "device"`: the mount point becomes a symbolic link to
//!   `/dev/mapper/NAME`.
//! - `dataIntegrity = "true"` (kata's default), empty source: authenticated encryption
//!   ([`sealgate_core::volume::integrity`]): dm-integrity (`NAME_dif`, direct mode, 48-byte
//!   tags) under dm-crypt `authenc(hmac(sha256),xts(aes))` with random IVs and 4096-byte
//!   sectors, keyed by a fresh 768-bit key (XTS + HMAC) from the OS RNG, as upstream's
//!   `luksFormat --integrity hmac-sha256 --integrity-no-wipe --integrity-no-journal`. The
//!   data area is not wiped, so for ext* mkfs runs as upstream's: a dry run names the
//!   superblock blocks, which are zeroed through the mapping first, and
//!   `lazy_itable_init=0` is added unless the caller set it. With an encrypted source
//!   it is refused (UNIMPLEMENTED): sealgate opens LUKS2 volumes without integrity only.
//!
//! A failure at any step removes what was made (the mapping, the mount).

use super::hub::{Hub, HubError};
use crate::prelude::*;
use crate::volume::{self, VolumeFailure};
use core::fmt;
use core::time::Duration;
use rustix::fs::FileType;
use rustix::io::Errno;
use sealgate_core::config::{DeviceMatch, PlainParams, VolumeSpec, VolumeType};
use sealgate_core::proto::cdh;
use sealgate_core::volume::VolumeKey;
use sealgate_core::volume::integrity;
use sealgate_core::volume::secure_mount::{
    self, DeviceRef, KeyRef, RequestError, SecureMount, Source, Target,
};
use sealgate_linux::blockdev::{self, DeviceError};
use sealgate_linux::spawn::{self, SpawnError};
use sealgate_linux::time::Instant;
use sealgate_linux::{info, warn};
use zeroize::Zeroizing;

/// Where `mkfs.<type>` is looked for: the image's own directories, never `PATH`.
pub const MKFS_DIRS: [&str; 4] = ["/sbin", "/usr/sbin", "/bin", "/usr/bin"];
/// The environment mkfs runs with (nothing from sealgate's own).
pub const MKFS_ENV: [&str; 1] = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"];
/// How long mkfs may run at most (the server answers no other call meanwhile); less when
/// the caller's timeout leaves less.
pub const MKFS_LIMIT: Duration = Duration::from_secs(120);
/// The key of an empty volume: 512 bits (AES-256 in XTS).
const EPHEMERAL_KEY_BITS: u32 = 512;
/// Its encryption sector size, as upstream's `--sector-size 4096`.
const EPHEMERAL_SECTOR_SIZE: u32 = 4096;

/// Why a `SecureMount` failed. Never carries key material.
#[derive(Debug)]
pub enum SecureMountError {
    /// The request is refused (malformed or unsupported).
    Request(RequestError),
    /// `dataIntegrity = "true"` with an encrypted source.
    Integrity,
    /// Zeroing what mkfs reads on an integrity volume.
    Zero {
        /// Why.
        errno: Errno,
    },
    /// The key could not be obtained.
    Key {
        /// Its kind (`KBS resource`, `sealed secret`).
        kind: &'static str,
        /// Why.
        error: HubError,
    },
    /// The source device.
    Device(DeviceError),
    /// The mount point cannot be used.
    MountPoint {
        /// It.
        path: String,
        /// Why.
        why: String,
    },
    /// Opening, mapping or mounting.
    Volume(Box<VolumeFailure>),
    /// No `mkfs.<type>` in the image.
    NoMkfs(String),
    /// mkfs failed.
    Mkfs(SpawnError),
    /// The caller's ttrpc timeout passed before the volume was ready: what was made is
    /// undone, so the answer and the guest agree.
    Deadline,
    /// The symbolic link of a device target.
    Symlink {
        /// The mount point.
        path: String,
        /// Why.
        errno: Errno,
    },
}

impl SecureMountError {
    /// The ttrpc status code: INVALID_ARGUMENT or UNIMPLEMENTED for a refused request,
    /// INTERNAL for operational failures (as upstream's CDH answers every failure).
    pub fn code(&self) -> i32 {
        use sealgate_core::ttrpc::code;
        match self {
            SecureMountError::Request(e) => match e.class() {
                secure_mount::ErrorClass::InvalidArgument => code::INVALID_ARGUMENT,
                secure_mount::ErrorClass::Unimplemented => code::UNIMPLEMENTED,
            },
            SecureMountError::Integrity => code::UNIMPLEMENTED,
            SecureMountError::Deadline => code::DEADLINE_EXCEEDED,
            _ => code::INTERNAL,
        }
    }
}

impl fmt::Display for SecureMountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecureMountError::Request(e) => write!(f, "{e}"),
            SecureMountError::Integrity => f.write_str(
                "dataIntegrity=true with sourceType=encrypted is not supported: sealgate \
                 opens LUKS2 volumes without dm-integrity only (integrity is supported for \
                 sourceType=empty)",
            ),
            SecureMountError::Zero { errno } => write!(
                f,
                "cannot zero the filesystem's superblock blocks on the integrity volume: {}",
                sealgate_linux::os(errno)
            ),
            SecureMountError::Key { kind, error } => {
                write!(f, "cannot get the volume's key ({kind}): {error}")
            }
            SecureMountError::Device(e) => write!(f, "source device: {e}"),
            SecureMountError::MountPoint { path, why } => {
                write!(f, "mount point {path}: {why}")
            }
            SecureMountError::Volume(e) => write!(f, "{e}"),
            SecureMountError::NoMkfs(fstype) => write!(
                f,
                "the image has no mkfs.{fstype} (looked in /sbin, /usr/sbin, /bin, /usr/bin)"
            ),
            SecureMountError::Mkfs(e) => write!(f, "making the filesystem: {e}"),
            SecureMountError::Deadline => f.write_str(
                "the volume was not ready within the caller's timeout: it was closed again",
            ),
            SecureMountError::Symlink { path, errno } => write!(
                f,
                "cannot make {path} a link to the mapped device: {}",
                sealgate_linux::os(errno)
            ),
        }
    }
}

/// Serves one `SecureMount` request. `deadline`: the caller's ttrpc timeout (less a
/// margin), if it set one: mkfs gets at most what is left of it, and a volume that is ready
/// only after it is closed again (the caller has given up and answers an error).
pub fn secure_mount(
    hub: &mut Hub,
    req: &cdh::SecureMountRequest,
    deadline: Option<Instant>,
) -> Result<(), SecureMountError> {
    let m = secure_mount::parse(&req.volume_type, &req.options, &req.flags, &req.mount_point)
        .map_err(SecureMountError::Request)?;
    if m.integrity && m.source == Source::Encrypted {
        return Err(SecureMountError::Integrity);
    }
    if !req.flags.is_empty() {
        warn!("SecureMount: flags are ignored, as upstream ignores them");
    }
    let device = match &m.device {
        DeviceRef::Id { major, minor } => {
            blockdev::by_number(*major, *minor).map_err(SecureMountError::Device)?
        }
        DeviceRef::Path(p) => p.clone(),
    };
    check_mount_point(&m)?;
    let name = match &m.mapper_name {
        Some(n) => n.clone(),
        None => generated_name(),
    };
    let secret = match (m.source, &m.key) {
        (Source::Encrypted, Some(key)) => fetch_key(hub, key)?,
        (Source::Encrypted, None) => {
            // parse() refuses this; kept total.
            return Err(SecureMountError::Request(RequestError::KeyRequired));
        }
        (Source::Empty, key) => {
            if let Some(key) = key {
                info!(
                    "SecureMount: the {} given for the empty volume is not used: its key \
                     is generated and never leaves the kernel",
                    key.kind()
                );
            }
            let len = if m.integrity {
                integrity::KEY_BYTES
            } else {
                (EPHEMERAL_KEY_BITS / 8) as usize
            };
            let mut k = Zeroizing::new(vec![0u8; len]);
            sealgate_linux::os_rng::fill(&mut k);
            k
        }
    };
    let spec = volume_spec(&m, &name, &device);
    let mapped = if m.integrity {
        volume::map_integrity(&spec, VolumeKey::new(secret))
    } else {
        volume::prepare_one(&spec).and_then(|p| p.map(secret))
    }
    .map_err(SecureMountError::Volume)?;
    if let (Source::Empty, Target::FileSystem { fstype, mkfs_args }) = (m.source, &m.target) {
        // On failure `mapped` is dropped: the mapping is removed.
        let limit = deadline.map_or(MKFS_LIMIT, |d| {
            d.saturating_duration_until().min(MKFS_LIMIT)
        });
        if m.integrity && fstype.starts_with("ext") {
            let args = integrity::ext4_args(mkfs_args);
            prepare_ext_on_integrity(fstype, &args, mapped.node(), limit)?;
            mkfs(fstype, &args, mapped.node(), limit)?;
        } else {
            mkfs(fstype, mkfs_args, mapped.node(), limit)?;
        }
    }
    let opened = mapped.finish().map_err(SecureMountError::Volume)?;
    let linked = match m.target {
        Target::Device => link(&opened.node, &m.mount_point),
        Target::FileSystem { .. } => Ok(()),
    };
    let late = deadline.is_some_and(|d| d.saturating_duration_until().is_zero());
    if linked.is_err() || late {
        if linked.is_ok() && m.target == Target::Device {
            let _ = rustix::fs::unlink(m.mount_point.as_str());
        }
        if let Err(close) = opened.close() {
            warn!("SecureMount: cannot remove {}: {close}", opened.node);
        }
        linked?;
        return Err(SecureMountError::Deadline);
    }
    info!(
        "SecureMount: {device} ({}) as {} on {}",
        match (m.source, m.integrity) {
            (Source::Empty, false) => "empty source, ephemeral key",
            (Source::Empty, true) => "empty source, ephemeral key, dm-integrity",
            (Source::Encrypted, _) => "encrypted source",
        },
        opened.node,
        m.mount_point
    );
    Ok(())
}

fn fetch_key(hub: &mut Hub, key: &KeyRef) -> Result<Zeroizing<Vec<u8>>, SecureMountError> {
    let result = match key {
        KeyRef::Kbs(uri) => hub.fetch_resource(uri),
        KeyRef::Sealed(sealed) => hub.unseal_secret(sealed.as_bytes()),
    };
    result.map_err(|error| SecureMountError::Key {
        kind: key.kind(),
        error,
    })
}

/// The volume as `[[volume]]` would declare it: a LUKS2 volume, or for an empty source a
/// plain dm-crypt one with the ephemeral parameters; mounted only for a filesystem target.
fn volume_spec(m: &SecureMount, name: &str, device: &str) -> VolumeSpec {
    let kind = match m.source {
        Source::Encrypted => VolumeType::Luks2,
        Source::Empty => VolumeType::Plain(PlainParams {
            cipher: sealgate_core::config::DEFAULT_PLAIN_CIPHER.into(),
            key_bits: EPHEMERAL_KEY_BITS,
            sector_size: EPHEMERAL_SECTOR_SIZE,
            offset_sectors: 0,
        }),
    };
    let (mount, fstype) = match &m.target {
        Target::FileSystem { fstype, .. } => (Some(m.mount_point.clone()), fstype.clone()),
        Target::Device => (None, String::from(secure_mount::DEFAULT_FSTYPE)),
    };
    VolumeSpec {
        name: name.into(),
        device: DeviceMatch::Path(device.into()),
        resource: None,
        kind,
        mount,
        fstype,
        options: String::new(),
        read_only: false,
        root: false,
    }
}

/// `sealgate-<16 hex digits>` from the OS RNG.
fn generated_name() -> String {
    let mut b = [0u8; 8];
    sealgate_linux::os_rng::fill(&mut b);
    let mut name = String::from("sealgate-");
    for x in b {
        name.push_str(&format!("{x:02x}"));
    }
    name
}

/// The mount point's existing parts must not be symbolic links (the checked path is the
/// path used), and a filesystem target must not be mounted already.
fn check_mount_point(m: &SecureMount) -> Result<(), SecureMountError> {
    let refuse = |why: &str| SecureMountError::MountPoint {
        path: m.mount_point.clone(),
        why: why.into(),
    };
    let mut at = String::new();
    for part in m.mount_point.split('/').filter(|p| !p.is_empty()) {
        at.push('/');
        at.push_str(part);
        match rustix::fs::lstat(at.as_str()) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
                return Err(refuse(&format!("{at} is a symbolic link")));
            }
            Ok(_) => {}
            Err(Errno::NOENT) => break,
            Err(e) => return Err(refuse(&format!("{at}: {}", sealgate_linux::os(e)))),
        }
    }
    match (&m.target, rustix::fs::stat(m.mount_point.as_str())) {
        (Target::FileSystem { .. }, Ok(st)) => {
            if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                return Err(refuse("not a directory"));
            }
            if sealgate_linux::mounts::is_mount_point(&m.mount_point) {
                return Err(refuse("something is mounted there already"));
            }
        }
        (Target::Device, Ok(_)) => return Err(refuse("exists already (a link is made there)")),
        (_, Err(_)) => {}
    }
    Ok(())
}

fn find_mkfs(fstype: &str) -> Option<String> {
    MKFS_DIRS.iter().find_map(|dir| {
        let path = format!("{dir}/mkfs.{fstype}");
        let st = rustix::fs::stat(path.as_str()).ok()?;
        (FileType::from_raw_mode(st.st_mode) == FileType::RegularFile && st.st_mode & 0o111 != 0)
            .then_some(path)
    })
}

/// Runs the image's `mkfs.<fstype> [-F] ARGS… NODE`, its output to the log.
fn mkfs(
    fstype: &str,
    args: &[String],
    node: &str,
    limit: Duration,
) -> Result<(), SecureMountError> {
    run_mkfs(fstype, &[], args, node, limit, |line| {
        info!("mkfs.{fstype}: {line}")
    })
}

/// `mkfs.<fstype> [-F] PRE… ARGS… NODE`, each output line to `on_line`.
fn run_mkfs(
    fstype: &str,
    pre: &[&str],
    args: &[String],
    node: &str,
    limit: Duration,
    on_line: impl FnMut(&str),
) -> Result<(), SecureMountError> {
    let path = find_mkfs(fstype).ok_or_else(|| SecureMountError::NoMkfs(fstype.into()))?;
    let mut argv = vec![format!("mkfs.{fstype}")];
    if fstype.starts_with("ext") {
        // mke2fs: no question on the terminal (there is none), as upstream passes -F.
        argv.push("-F".into());
    }
    argv.extend(pre.iter().map(|s| String::from(*s)));
    argv.extend(args.iter().cloned());
    argv.push(node.into());
    info!("SecureMount: {}", argv.join(" "));
    spawn::run(&path, &argv, &MKFS_ENV, limit, on_line).map_err(SecureMountError::Mkfs)
}

/// On an integrity volume nothing is readable before it is written, and mke2fs reads its
/// superblock blocks: a dry run (`-n`) names them, and they are zeroed through the mapping
/// (each write computes its tag), as upstream does.
fn prepare_ext_on_integrity(
    fstype: &str,
    args: &[String],
    node: &str,
    limit: Duration,
) -> Result<(), SecureMountError> {
    let mut out = String::new();
    run_mkfs(fstype, &["-n"], args, node, limit, |line| {
        info!("mkfs.{fstype} -n: {line}");
        if out.len() < 64 << 10 {
            out.push_str(line);
            out.push('\n');
        }
    })?;
    let Some(layout) = integrity::Mke2fsLayout::parse(&out) else {
        warn!("SecureMount: mkfs.{fstype} -n announced no block size; zeroing block 0 only");
        return zero_ranges(node, &[(0, u64::from(integrity::BLOCK_SIZE))]);
    };
    info!("SecureMount: mkfs.{fstype} -n: {layout}");
    let size = blockdev::Device::open(node)
        .map_err(SecureMountError::Device)?
        .size();
    zero_ranges(node, &layout.zero_ranges(size))
}

fn zero_ranges(node: &str, ranges: &[(u64, u64)]) -> Result<(), SecureMountError> {
    let err = |errno| SecureMountError::Zero { errno };
    let fd = rustix::fs::open(
        node,
        rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(err)?;
    for &(offset, len) in ranges {
        let zeros = vec![0u8; len.min(1 << 20) as usize];
        volume::write_all_at(&fd, &zeros, offset).map_err(err)?;
    }
    rustix::fs::fsync(&fd).map_err(err)
}

/// `mount_point` → `node`, its parent directories made first.
fn link(node: &str, mount_point: &str) -> Result<(), SecureMountError> {
    let err = |errno| SecureMountError::Symlink {
        path: mount_point.into(),
        errno,
    };
    if let Some((parent, _)) = mount_point.rsplit_once('/')
        && !parent.is_empty()
    {
        volume::mkdir_p(parent).map_err(err)?;
    }
    rustix::fs::symlink(node, mount_point).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealgate_core::ttrpc::code;

    #[test]
    fn integrity_errors() {
        // Integrity on an existing LUKS2 volume is refused as not supported.
        let e = SecureMountError::Integrity;
        assert_eq!(e.code(), code::UNIMPLEMENTED);
        assert!(
            e.to_string()
                .starts_with("dataIntegrity=true with sourceType=encrypted is not supported")
        );
        // Operational failures of the integrity path are INTERNAL and name the step.
        let e = SecureMountError::Zero { errno: Errno::IO };
        assert_eq!(e.code(), code::INTERNAL);
        assert!(e.to_string().contains("superblock blocks"), "{e}");
        let e = SecureMountError::Volume(Box::new(VolumeFailure {
            name: "integ".into(),
            device: "/dev/vdd".into(),
            error: volume::VolumeError::Integrity(integrity::SuperblockError::NoMagic),
        }));
        assert_eq!(e.code(), code::INTERNAL);
        assert_eq!(
            e.to_string(),
            "volume 'integ' (/dev/vdd): dm-integrity superblock: no 'integrt' magic: the \
             kernel did not format the device"
        );
    }
}
