//! Where init-data comes from: a TOML file, kata's init-data block device (`"initdata"`
//! magic, length, gzip), or `scan` — every virtio/SCSI disk searched for that magic, as
//! the kata agent does.

use crate::run::Failure;
use sealgate_core::initdata::{self, BLOCK_MAGIC, InitData, MAX_INITDATA_LEN};
use sealgate_linux::debug;
use std::io::Read;
use std::path::Path;

/// Loads init-data from `spec`: a path (file or block device), or `scan`.
pub fn load(spec: &str) -> Result<InitData, Failure> {
    if spec == "scan" {
        return scan();
    }
    let bytes =
        read_head(Path::new(spec)).map_err(|e| Failure(format!("init-data {spec}: {e}")))?;
    decode(&bytes).map_err(|e| Failure(format!("init-data {spec}: {e}")))
}

/// Reads at most what a maximal init-data can occupy (header + a gzip stream or TOML).
fn read_head(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::fs::File::open(path)?
        .take((16 + MAX_INITDATA_LEN + 1) as u64)
        .read_to_end(&mut buf)?;
    Ok(buf)
}

fn decode(bytes: &[u8]) -> Result<InitData, initdata::InitDataError> {
    if bytes.starts_with(BLOCK_MAGIC) {
        InitData::parse(&initdata::from_block_device(bytes)?)
    } else {
        InitData::parse(bytes)
    }
}

fn scan() -> Result<InitData, Failure> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/block")
        .map_err(|e| Failure(format!("init-data scan: /sys/block: {e}")))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("vd") || n.starts_with("sd"))
        .collect();
    names.sort();
    for name in names {
        let dev = format!("/dev/{name}");
        match read_head(Path::new(&dev)) {
            Ok(bytes) if bytes.starts_with(BLOCK_MAGIC) => {
                return decode(&bytes).map_err(|e| Failure(format!("init-data on {dev}: {e}")));
            }
            Ok(_) => debug!("{dev}: no init-data magic"),
            Err(e) => debug!("{dev}: {e}"),
        }
    }
    Err(Failure(
        "init-data scan: no disk carries the init-data magic".into(),
    ))
}
