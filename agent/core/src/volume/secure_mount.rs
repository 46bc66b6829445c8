//! CDH `SecureMount` requests (kata's secure storage): the `block-device` volume type with
//! `encryptionType = "luks2"`, parsed and checked before anything touches a device.
//!
//! The kata agent sends `volume_type = "block-device"`, no flags, a mount point and an
//! options map (guest-components' `BlockDeviceParameters` + `Luks2MountParameters`):
//! `deviceId` (`MAJ:MIN`) or `devicePath`, `sourceType` (`empty` | `encrypted`),
//! `targetType` (`fileSystem` | `device`), `filesystemType` (default `ext4`), `mkfsOpts`,
//! `encryptionType` (`luks2`), `dataIntegrity` (`true` | `false`, default false), `key`
//! (`sealed.…` | `kbs:///…` | `file://…`) and `mapperName`.
//!
//! Everything here comes from the host (through the kata agent): it is bounded and parsed
//! strictly, and no error message repeats the `key` option's value.

use crate::escape;
use crate::uri::ResourceUri;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The only volume type served.
pub const BLOCK_DEVICE: &str = "block-device";
/// The most options one request may carry (kata sends 7).
pub const MAX_OPTIONS: usize = 32;
/// The longest option name.
pub const MAX_OPTION_NAME: usize = 64;
/// The longest option value (a sealed secret is the longest kata could send).
pub const MAX_OPTION_VALUE: usize = 64 << 10;
/// The most flags (kata sends none; upstream ignores them).
pub const MAX_FLAGS: usize = 16;
/// The longest mount point or device path.
pub const MAX_PATH: usize = 1024;
/// The most words in `mkfsOpts`.
pub const MAX_MKFS_ARGS: usize = 32;
/// The longest word in `mkfsOpts`.
pub const MAX_MKFS_ARG: usize = 256;
/// The default filesystem, as upstream's `FsType`.
pub const DEFAULT_FSTYPE: &str = "ext4";
/// Mount points may not be at or under these: sealgate's own secrets, the guest
/// components' state, and the kernel's pseudo filesystems.
pub const FORBIDDEN_MOUNT_PREFIXES: [&str; 5] = [
    "/sealed",
    "/run/confidential-containers",
    "/proc",
    "/sys",
    "/dev",
];

/// The class of a refusal, for the status code the server answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The request is malformed.
    InvalidArgument,
    /// Well-formed but not supported by sealgate.
    Unimplemented,
}

/// Why a request was refused. Messages never carry the `key` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// `volume_type` is not `block-device`.
    VolumeType(String),
    /// Too many options or flags, or an option name or value too long.
    TooLarge(String),
    /// A required option is missing.
    Missing(&'static str),
    /// `sourceType = "encrypted"` without a `key`.
    KeyRequired,
    /// An option has a value outside what it accepts.
    Invalid {
        /// The option.
        option: &'static str,
        /// Its value (shown escaped and bounded; never the key's).
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// A known, well-formed setting sealgate does not implement.
    Unsupported(String),
    /// The mount point is refused.
    MountPoint {
        /// It (escaped, bounded).
        path: String,
        /// Why.
        why: &'static str,
    },
}

impl RequestError {
    /// The status class.
    pub fn class(&self) -> ErrorClass {
        match self {
            RequestError::VolumeType(_) | RequestError::Unsupported(_) => ErrorClass::Unimplemented,
            _ => ErrorClass::InvalidArgument,
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::VolumeType(t) => write!(
                f,
                "volume type '{t}' is not supported: sealgate mounts only '{BLOCK_DEVICE}' \
                 volumes"
            ),
            RequestError::TooLarge(what) => write!(f, "secure mount request: {what}"),
            RequestError::Missing(option) => {
                write!(f, "secure mount request: option '{option}' is missing")
            }
            RequestError::KeyRequired => f.write_str(
                "secure mount request: an encrypted source needs the option 'key' \
                 (kbs:///repo/type/tag or sealed.…)",
            ),
            RequestError::Invalid {
                option,
                value,
                expected,
            } => write!(
                f,
                "secure mount request: option '{option}' is '{value}': expected {expected}"
            ),
            RequestError::Unsupported(what) => f.write_str(what),
            RequestError::MountPoint { path, why } => {
                write!(f, "secure mount request: mount point '{path}': {why}")
            }
        }
    }
}

/// How the source device is named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceRef {
    /// `deviceId = "MAJ:MIN"` (resolved through `/sys/dev/block/MAJ:MIN`).
    Id {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// `devicePath`, a path under `/dev/`.
    Path(String),
}

impl fmt::Display for DeviceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceRef::Id { major, minor } => write!(f, "{major}:{minor}"),
            DeviceRef::Path(p) => f.write_str(p),
        }
    }
}

/// What is on the device now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Nothing to keep: encrypt it afresh.
    Empty,
    /// A LUKS2 volume to open.
    Encrypted,
}

/// What the caller gets at the mount point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// The filesystem, mounted there (made first when the source is empty).
    FileSystem {
        /// Its type (`ext4`).
        fstype: String,
        /// More arguments for `mkfs.<fstype>` (empty source only).
        mkfs_args: Vec<String>,
    },
    /// A symbolic link to `/dev/mapper/NAME`.
    Device,
}

/// Where the key comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRef {
    /// A KBS resource (through the hub's session).
    Kbs(ResourceUri),
    /// A sealed secret (unsealed by the hub, with its signature rules).
    Sealed(String),
}

impl KeyRef {
    /// What kind of key, for messages (never the value).
    pub fn kind(&self) -> &'static str {
        match self {
            KeyRef::Kbs(_) => "KBS resource",
            KeyRef::Sealed(_) => "sealed secret",
        }
    }
}

/// A checked `SecureMount` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecureMount {
    /// The source device.
    pub device: DeviceRef,
    /// What is on it.
    pub source: Source,
    /// What to make at the mount point.
    pub target: Target,
    /// The key (`None`: none given).
    pub key: Option<KeyRef>,
    /// `dataIntegrity = "true"`.
    pub integrity: bool,
    /// `mapperName`, checked against device-mapper's name rules.
    pub mapper_name: Option<String>,
    /// The mount point, normalised (no trailing or double slash).
    pub mount_point: String,
}

fn shown(value: &str) -> String {
    escape::escape(value, 96)
}

fn invalid(option: &'static str, value: &str, expected: &'static str) -> RequestError {
    RequestError::Invalid {
        option,
        value: shown(value),
        expected,
    }
}

/// Whether `name` is usable as a device-mapper name and a file under `/dev/mapper`:
/// 1 to 64 of `A-Z a-z 0-9 _ - . +`, not `.`, `..` or `control`.
pub fn valid_mapper_name(name: &str) -> bool {
    crate::config::valid_volume_name(name)
}

/// Parses `MAJ:MIN` strictly: decimal, no sign, no spaces, no leading zeros (but `0`),
/// major below 4096 and minor below 2^20 (the kernel's `dev_t` limits).
pub fn parse_device_id(s: &str) -> Option<(u32, u32)> {
    fn number(s: &str, limit: u32) -> Option<u32> {
        if s.is_empty() || s.len() > 7 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if s.len() > 1 && s.starts_with('0') {
            return None;
        }
        let n: u32 = s.parse().ok()?;
        (n < limit).then_some(n)
    }
    let (a, b) = s.split_once(':')?;
    Some((number(a, 1 << 12)?, number(b, 1 << 20)?))
}

/// Normalises an absolute path: no `.`/`..` components, no NUL, bounded; double and
/// trailing slashes dropped. `None` if refused.
fn normal_path(p: &str) -> Option<String> {
    if !p.starts_with('/') || p.len() > MAX_PATH || p.contains('\0') {
        return None;
    }
    let mut out = String::new();
    for part in p.split('/').filter(|c| !c.is_empty()) {
        if part == "." || part == ".." {
            return None;
        }
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        out.push('/');
    }
    Some(out)
}

fn under(path: &str, prefix: &str) -> bool {
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Checks a mount point: absolute, no `..`, not `/`, not at or under
/// [`FORBIDDEN_MOUNT_PREFIXES`]; returns it normalised.
pub fn check_mount_point(p: &str) -> Result<String, RequestError> {
    let refuse = |why| RequestError::MountPoint {
        path: shown(p),
        why,
    };
    if p.is_empty() {
        return Err(RequestError::Missing("mount_point"));
    }
    let path = normal_path(p).ok_or_else(|| {
        refuse("expected an absolute path without '.' or '..' components (at most 1024 bytes)")
    })?;
    if path == "/" {
        return Err(refuse("not the root directory"));
    }
    if FORBIDDEN_MOUNT_PREFIXES.iter().any(|pre| under(&path, pre)) {
        return Err(refuse(
            "not at or under /sealed, /run/confidential-containers, /proc, /sys or /dev",
        ));
    }
    Ok(path)
}

/// Checks `devicePath`: a normalised absolute path under `/dev/` (not `/dev` itself).
fn check_device_path(p: &str) -> Result<String, RequestError> {
    let path = normal_path(p)
        .filter(|path| path.len() > 5 && under(path, "/dev") && !under(path, "/dev/mapper"))
        .ok_or_else(|| {
            invalid(
                "devicePath",
                p,
                "a block device path under /dev (not /dev/mapper), without '..'",
            )
        })?;
    Ok(path)
}

/// Splits `mkfsOpts` on ASCII whitespace: at most [`MAX_MKFS_ARGS`] words of at most
/// [`MAX_MKFS_ARG`] bytes from `A-Z a-z 0-9 - _ = , . : + ^`. No `/`: no word can name
/// a path (another device, a directory to copy in), so the device sealgate appends is
/// the only one mkfs sees.
pub fn parse_mkfs_opts(s: &str) -> Result<Vec<String>, RequestError> {
    let words: Vec<&str> = s.split_ascii_whitespace().collect();
    if words.len() > MAX_MKFS_ARGS {
        return Err(invalid(
            "mkfsOpts",
            s,
            "at most 32 words separated by spaces",
        ));
    }
    let ok = |w: &str| {
        w.len() <= MAX_MKFS_ARG
            && w.bytes().all(|b| {
                b.is_ascii_alphanumeric()
                    || matches!(b, b'-' | b'_' | b'=' | b',' | b'.' | b':' | b'+' | b'^')
            })
    };
    if let Some(bad) = words.iter().find(|w| !ok(w)) {
        return Err(invalid(
            "mkfsOpts",
            bad,
            "words of at most 256 bytes of A-Z a-z 0-9 - _ = , . : + ^ (no paths, no \
             quoting: the words go to mkfs as they are)",
        ));
    }
    Ok(words.into_iter().map(String::from).collect())
}

fn parse_key(value: &str) -> Result<KeyRef, RequestError> {
    if value.starts_with("sealed.") {
        return Ok(KeyRef::Sealed(value.into()));
    }
    if value.starts_with("file://") {
        return Err(RequestError::Invalid {
            option: "key",
            value: String::from("file://…"),
            expected: "a 'kbs:///repo/type/tag' resource or a 'sealed.' secret: sealgate \
                       refuses file:// keys (the request comes from the host, and a file the \
                       host names is not a measured key source)",
        });
    }
    if value.starts_with("kbs://") {
        return ResourceUri::parse(value)
            .map(KeyRef::Kbs)
            .map_err(|_| RequestError::Invalid {
                option: "key",
                value: String::from("kbs://…"),
                expected: "a resource URI kbs:///repo/type/tag",
            });
    }
    Err(RequestError::Invalid {
        option: "key",
        value: String::from("(not shown)"),
        expected: "a 'kbs:///repo/type/tag' resource or a 'sealed.' secret",
    })
}

fn parse_bool(option: &'static str, v: &str) -> Result<bool, RequestError> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(option, v, "true or false")),
    }
}

/// Parses and checks a whole request. Unknown options are ignored, as upstream's serde
/// structs ignore them (they are still bounded); flags are ignored, as upstream does.
pub fn parse(
    volume_type: &str,
    options: &BTreeMap<String, String>,
    flags: &[String],
    mount_point: &str,
) -> Result<SecureMount, RequestError> {
    if volume_type != BLOCK_DEVICE {
        return Err(RequestError::VolumeType(shown(volume_type)));
    }
    if options.len() > MAX_OPTIONS {
        return Err(RequestError::TooLarge(format!(
            "{} options (at most {MAX_OPTIONS})",
            options.len()
        )));
    }
    if flags.len() > MAX_FLAGS || flags.iter().any(|f| f.len() > MAX_OPTION_NAME) {
        return Err(RequestError::TooLarge(format!(
            "{} flags (at most {MAX_FLAGS} of at most {MAX_OPTION_NAME} bytes)",
            flags.len()
        )));
    }
    for (name, value) in options {
        if name.len() > MAX_OPTION_NAME || value.len() > MAX_OPTION_VALUE {
            return Err(RequestError::TooLarge(format!(
                "option '{}' is too long (names at most {MAX_OPTION_NAME} bytes, values \
                 at most {MAX_OPTION_VALUE})",
                escape::escape(name, MAX_OPTION_NAME)
            )));
        }
    }
    let get = |name: &str| options.get(name).map(String::as_str);

    match get("encryptionType") {
        Some("luks2") => {}
        Some("zfs") => {
            return Err(RequestError::Unsupported(String::from(
                "encryption type 'zfs' is not supported: sealgate serves luks2 only",
            )));
        }
        Some(other) => return Err(invalid("encryptionType", other, "luks2")),
        None => return Err(RequestError::Missing("encryptionType")),
    }
    let device = match (get("deviceId"), get("devicePath")) {
        // Upstream: deviceId wins when both are set.
        (Some(id), _) => {
            let (major, minor) = parse_device_id(id)
                .ok_or_else(|| invalid("deviceId", id, "MAJ:MIN, two decimal numbers"))?;
            DeviceRef::Id { major, minor }
        }
        (None, Some(path)) => DeviceRef::Path(check_device_path(path)?),
        (None, None) => return Err(RequestError::Missing("deviceId (or devicePath)")),
    };
    let source = match get("sourceType") {
        Some("empty") => Source::Empty,
        Some("encrypted") => Source::Encrypted,
        Some(other) => return Err(invalid("sourceType", other, "empty or encrypted")),
        None => return Err(RequestError::Missing("sourceType")),
    };
    let target = match get("targetType") {
        Some("fileSystem") => {
            let fstype = get("filesystemType").unwrap_or(DEFAULT_FSTYPE);
            let fs_ok = (1..=16).contains(&fstype.len())
                && fstype
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            if !fs_ok {
                return Err(invalid(
                    "filesystemType",
                    fstype,
                    "a filesystem type such as ext4 (1 to 16 of a-z 0-9)",
                ));
            }
            Target::FileSystem {
                fstype: fstype.into(),
                mkfs_args: parse_mkfs_opts(get("mkfsOpts").unwrap_or(""))?,
            }
        }
        Some("device") => Target::Device,
        Some(other) => return Err(invalid("targetType", other, "fileSystem or device")),
        None => return Err(RequestError::Missing("targetType")),
    };
    let integrity = match get("dataIntegrity") {
        Some(v) => parse_bool("dataIntegrity", v)?,
        None => false,
    };
    let key = get("key").map(parse_key).transpose()?;
    if source == Source::Encrypted && key.is_none() {
        return Err(RequestError::KeyRequired);
    }
    let mapper_name = match get("mapperName") {
        Some(n) if valid_mapper_name(n) => Some(n.into()),
        Some(n) => {
            return Err(invalid(
                "mapperName",
                n,
                "1 to 64 of A-Z a-z 0-9 _ - . + (not '.', '..' or 'control')",
            ));
        }
        None => None,
    };
    let mount_point = check_mount_point(mount_point)?;
    Ok(SecureMount {
        device,
        source,
        target,
        key,
        integrity,
        mapper_name,
        mount_point,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    fn kata(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut m: BTreeMap<String, String> = [
            ("deviceId", "254:16"),
            ("sourceType", "empty"),
            ("targetType", "fileSystem"),
            ("filesystemType", "ext4"),
            ("mkfsOpts", "-O ^has_journal -m 0 -i 163840 -I 128"),
            ("encryptionType", "luks2"),
            ("dataIntegrity", "false"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            m.insert(k.to_string(), v.to_string());
        }
        m
    }

    fn err(extra: &[(&str, &str)], mp: &str) -> RequestError {
        parse(BLOCK_DEVICE, &kata(extra), &[], mp).unwrap_err()
    }

    #[test]
    fn katas_request_parses() {
        let m = parse(BLOCK_DEVICE, &kata(&[]), &[], "/run/kata-containers/image/").unwrap();
        assert_eq!(
            m.device,
            DeviceRef::Id {
                major: 254,
                minor: 16
            }
        );
        assert_eq!(m.source, Source::Empty);
        assert_eq!(
            m.target,
            Target::FileSystem {
                fstype: "ext4".into(),
                mkfs_args: vec![
                    "-O".into(),
                    "^has_journal".into(),
                    "-m".into(),
                    "0".into(),
                    "-i".into(),
                    "163840".into(),
                    "-I".into(),
                    "128".into()
                ],
            }
        );
        assert!(!m.integrity);
        assert_eq!(m.key, None);
        assert_eq!(m.mapper_name, None);
        assert_eq!(m.mount_point, "/run/kata-containers/image");
        let m = parse(
            BLOCK_DEVICE,
            &kata(&[
                ("dataIntegrity", "true"),
                ("mkfsOpts", "-E lazy_journal_init"),
            ]),
            &[],
            "/mnt//x",
        )
        .unwrap();
        assert!(m.integrity);
        assert_eq!(m.mount_point, "/mnt/x");
    }

    #[test]
    fn encrypted_sources_need_a_measured_key() {
        let enc = [("sourceType", "encrypted"), ("targetType", "device")];
        assert_eq!(err(&enc, "/mnt/x"), RequestError::KeyRequired);
        let e = err(
            &[enc[0], enc[1], ("key", "file:///etc/secret-passphrase")],
            "/mnt/x",
        );
        let text = e.to_string();
        assert!(text.contains("refuses file:// keys"), "{text}");
        assert!(!text.contains("secret-passphrase"), "{text}");
        assert_eq!(e.class(), ErrorClass::InvalidArgument);
        let e = err(&[("key", "hunter2")], "/mnt/x");
        assert!(!e.to_string().contains("hunter2"));
        let e = err(&[("key", "kbs:///only/two")], "/mnt/x");
        assert!(e.to_string().contains("kbs:///repo/type/tag"), "{e}");
        let m = parse(
            BLOCK_DEVICE,
            &kata(&[
                enc[0],
                enc[1],
                ("key", "kbs:///default/volume/pass"),
                ("mapperName", "data-1"),
            ]),
            &[],
            "/mnt/x",
        )
        .unwrap();
        assert_eq!(m.target, Target::Device);
        assert_eq!(
            m.key,
            Some(KeyRef::Kbs(
                ResourceUri::parse("kbs:///default/volume/pass").unwrap()
            ))
        );
        assert_eq!(m.mapper_name.as_deref(), Some("data-1"));
        let m = parse(
            BLOCK_DEVICE,
            &kata(&[enc[0], ("key", "sealed.a.b.c")]),
            &[],
            "/mnt/x",
        )
        .unwrap();
        assert_eq!(m.key, Some(KeyRef::Sealed("sealed.a.b.c".into())));
    }

    #[test]
    fn device_ids_are_strict() {
        assert_eq!(parse_device_id("254:16"), Some((254, 16)));
        assert_eq!(parse_device_id("0:0"), Some((0, 0)));
        assert_eq!(parse_device_id("4095:1048575"), Some((4095, 1048575)));
        for bad in [
            "",
            ":",
            "254",
            "254:",
            ":16",
            " 254:16",
            "254:16 ",
            "+254:16",
            "-1:0",
            "254:016",
            "4096:0",
            "0:1048576",
            "1:2:3",
            "a:b",
            "254:16\n",
            "99999999999:1",
        ] {
            assert_eq!(parse_device_id(bad), None, "{bad:?}");
        }
        let e = err(&[("deviceId", "../../sda")], "/mnt/x");
        assert!(matches!(
            e,
            RequestError::Invalid {
                option: "deviceId",
                ..
            }
        ));
        let mut m = kata(&[("devicePath", "/dev/vdb")]);
        m.remove("deviceId");
        let r = parse(BLOCK_DEVICE, &m, &[], "/mnt/x").unwrap();
        assert_eq!(r.device, DeviceRef::Path("/dev/vdb".into()));
        for bad in [
            "/dev",
            "/dev/",
            "vdb",
            "/etc/passwd",
            "/dev/../etc/x",
            "/dev/mapper/x",
        ] {
            m.insert("devicePath".into(), bad.into());
            assert!(
                matches!(
                    parse(BLOCK_DEVICE, &m, &[], "/mnt/x"),
                    Err(RequestError::Invalid {
                        option: "devicePath",
                        ..
                    })
                ),
                "{bad}"
            );
        }
        m.remove("devicePath");
        assert_eq!(
            parse(BLOCK_DEVICE, &m, &[], "/mnt/x").unwrap_err(),
            RequestError::Missing("deviceId (or devicePath)")
        );
    }

    #[test]
    fn mount_points_are_checked() {
        for bad in [
            "",
            "relative",
            "/",
            "//",
            "/mnt/../sealed",
            "/mnt/./x",
            "/sealed",
            "/sealed/x",
            "/run/confidential-containers/cdh",
            "/proc/1",
            "/sys",
            "/dev/shm",
            "/a\0b",
        ] {
            assert!(
                matches!(
                    check_mount_point(bad),
                    Err(RequestError::MountPoint { .. } | RequestError::Missing(_))
                ),
                "{bad:?}"
            );
        }
        assert_eq!(check_mount_point("/sealedx").unwrap(), "/sealedx");
        assert_eq!(check_mount_point("/devices/").unwrap(), "/devices");
        assert_eq!(
            check_mount_point("/run/kata-containers/sandbox/storage/x").unwrap(),
            "/run/kata-containers/sandbox/storage/x"
        );
    }

    #[test]
    fn mkfs_options_are_words_without_paths() {
        assert_eq!(
            parse_mkfs_opts("  -E lazy_itable_init=0,lazy_journal_init=0 \t-b 4096 ").unwrap(),
            vec!["-E", "lazy_itable_init=0,lazy_journal_init=0", "-b", "4096"]
        );
        assert!(parse_mkfs_opts("").unwrap().is_empty());
        for bad in [
            "-d /etc",
            "/dev/vda",
            "-L 'x'",
            "$(reboot)",
            "-E a;b",
            "-L \u{e9}",
        ] {
            assert!(parse_mkfs_opts(bad).is_err(), "{bad}");
        }
        let many = "-F ".repeat(33);
        assert!(parse_mkfs_opts(&many).is_err());
        let long = "a".repeat(257);
        assert!(parse_mkfs_opts(&long).is_err());
    }

    #[test]
    fn unknown_and_unsupported_settings() {
        let e = parse("alibaba-cloud-oss", &kata(&[]), &[], "/mnt/x").unwrap_err();
        assert_eq!(e.class(), ErrorClass::Unimplemented);
        assert!(e.to_string().contains("'alibaba-cloud-oss'"));
        let e = err(&[("encryptionType", "zfs")], "/mnt/x");
        assert_eq!(e.class(), ErrorClass::Unimplemented);
        let e = err(&[("encryptionType", "luks1")], "/mnt/x");
        assert_eq!(e.class(), ErrorClass::InvalidArgument);
        for (k, v) in [
            ("sourceType", "full"),
            ("targetType", "filesystem"),
            ("dataIntegrity", "yes"),
            ("filesystemType", "EXT4"),
            ("filesystemType", "ext4;x"),
            ("mapperName", "control"),
            ("mapperName", "../x"),
        ] {
            assert!(
                matches!(err(&[(k, v)], "/mnt/x"), RequestError::Invalid { .. }),
                "{k}={v}"
            );
        }
        let mut m = kata(&[]);
        m.remove("targetType");
        assert_eq!(
            parse(BLOCK_DEVICE, &m, &[], "/mnt/x").unwrap_err(),
            RequestError::Missing("targetType")
        );
        // Unknown options are ignored, flags too, within bounds.
        let r = parse(
            BLOCK_DEVICE,
            &kata(&[("somethingNew", "1")]),
            &["ro".into()],
            "/mnt/x",
        );
        assert!(r.is_ok());
        let mut big = kata(&[]);
        for i in 0..40 {
            big.insert(format!("o{i}"), String::new());
        }
        assert!(matches!(
            parse(BLOCK_DEVICE, &big, &[], "/mnt/x"),
            Err(RequestError::TooLarge(_))
        ));
        let long = "x".repeat(MAX_OPTION_VALUE + 1);
        assert!(matches!(
            err(&[("key", &long)], "/mnt/x"),
            RequestError::TooLarge(_)
        ));
    }
}
