//! CDH `SecureMount` requests as the server parses them: any bytes decoded as a
//! `SecureMountRequest` (prost), then `volume::secure_mount::parse`.
//! Asserts: an accepted mount point is normalised and outside the forbidden prefixes, an
//! accepted device path is under /dev, mkfs words carry no path, a mapper name follows
//! device-mapper's rules, and no error message repeats the `key` option's value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use sealgate_core::proto::cdh::SecureMountRequest;
use sealgate_core::volume::secure_mount::{
    self, DeviceRef, FORBIDDEN_MOUNT_PREFIXES, MAX_MKFS_ARGS, Target,
};

fuzz_target!(|data: &[u8]| {
    let Ok(req) = SecureMountRequest::decode(data) else {
        return;
    };
    match secure_mount::parse(&req.volume_type, &req.options, &req.flags, &req.mount_point) {
        Ok(m) => {
            let mp = &m.mount_point;
            assert!(mp.starts_with('/') && mp.len() > 1, "{mp}");
            assert!(!mp.ends_with('/') && !mp.contains("//"), "{mp}");
            assert!(!mp.split('/').any(|c| c == ".." || c == "."), "{mp}");
            for pre in FORBIDDEN_MOUNT_PREFIXES {
                assert!(mp != pre && !mp.starts_with(&format!("{pre}/")), "{mp}");
            }
            if let DeviceRef::Path(p) = &m.device {
                assert!(
                    p.starts_with("/dev/") && !p.starts_with("/dev/mapper/"),
                    "{p}"
                );
                assert!(!p.split('/').any(|c| c == ".." || c == "."), "{p}");
            }
            if let Target::FileSystem { mkfs_args, fstype } = &m.target {
                assert!(mkfs_args.len() <= MAX_MKFS_ARGS);
                assert!(mkfs_args.iter().all(|w| !w.is_empty() && !w.contains('/')));
                assert!(!fstype.is_empty() && !fstype.contains('/'));
            }
            if let Some(n) = &m.mapper_name {
                assert!(secure_mount::valid_mapper_name(n), "{n}");
            }
        }
        Err(e) => {
            let text = e.to_string();
            if let Some(key) = req.options.get("key")
                && key.len() >= 12
                && !req.mount_point.contains(key.as_str())
                && !req.volume_type.contains(key.as_str())
                && !req.options.iter().any(|(k, v)| {
                    k.contains(key.as_str()) || (k != "key" && v.contains(key.as_str()))
                })
            {
                assert!(!text.contains(key.as_str()), "the key in {text:?}");
            }
        }
    }
});
