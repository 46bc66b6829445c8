//! Where init-data comes from: a TOML file, kata's init-data block device (`"initdata"`
//! magic, length, gzip), or `scan` — every virtio/SCSI disk searched for that magic, as
//! the kata agent does.

use crate::prelude::*;
use core::fmt;
use sealgate_core::initdata::{self, BLOCK_MAGIC, InitData, InitDataError, MAX_INITDATA_LEN};
use sealgate_linux::debug;
use sealgate_linux::fs::{self, Kind, ReadError};

/// The most a disk listing may hold while scanning.
const MAX_BLOCK_DEVICES: usize = 1024;

/// Why init-data could not be loaded. Names the source, never the content.
#[derive(Debug)]
pub enum InitDataSourceError {
    /// The file or device could not be read.
    Read {
        /// The path.
        source: String,
        /// Why.
        error: ReadError,
    },
    /// It was read but is not valid init-data.
    Invalid {
        /// The path (file or device).
        source: String,
        /// Why.
        error: InitDataError,
    },
    /// `scan` could not list the disks.
    Scan(ReadError),
    /// `scan` found no disk with the init-data magic.
    NotFound,
}

impl fmt::Display for InitDataSourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitDataSourceError::Read { source, error } => write!(f, "init-data {source}: {error}"),
            InitDataSourceError::Invalid { source, error } => {
                if source.starts_with("/dev/") {
                    write!(f, "init-data on {source}: {error}")
                } else {
                    write!(f, "init-data {source}: {error}")
                }
            }
            InitDataSourceError::Scan(e) => write!(f, "init-data scan: /sys/block: {e}"),
            InitDataSourceError::NotFound => {
                f.write_str("init-data scan: no disk carries the init-data magic")
            }
        }
    }
}

/// Loads init-data from `spec`: a path (file or block device), or `scan`.
pub fn load(spec: &str) -> Result<InitData, InitDataSourceError> {
    if spec == "scan" {
        return scan();
    }
    let bytes = read_head(spec).map_err(|error| InitDataSourceError::Read {
        source: spec.into(),
        error,
    })?;
    decode(&bytes).map_err(|error| InitDataSourceError::Invalid {
        source: spec.into(),
        error,
    })
}

/// Reads at most what a maximal init-data can occupy (header + a gzip stream or TOML).
/// A regular file or a block device; a FIFO or socket is refused without blocking.
fn read_head(path: &str) -> Result<Vec<u8>, ReadError> {
    let fd = fs::open_checked(path, Kind::RegularOrBlock)?;
    fs::read_prefix(&fd, 16 + MAX_INITDATA_LEN + 1)
}

fn decode(bytes: &[u8]) -> Result<InitData, InitDataError> {
    if bytes.starts_with(BLOCK_MAGIC) {
        InitData::parse(&initdata::from_block_device(bytes)?)
    } else {
        InitData::parse(bytes)
    }
}

fn scan() -> Result<InitData, InitDataSourceError> {
    let names = fs::list_dir("/sys/block", MAX_BLOCK_DEVICES).map_err(InitDataSourceError::Scan)?;
    for name in names
        .iter()
        .filter(|n| n.starts_with("vd") || n.starts_with("sd"))
    {
        let dev = format!("/dev/{name}");
        match read_head(&dev) {
            Ok(bytes) if bytes.starts_with(BLOCK_MAGIC) => {
                return decode(&bytes)
                    .map_err(|error| InitDataSourceError::Invalid { source: dev, error });
            }
            Ok(_) => debug!("{dev}: no init-data magic"),
            Err(e) => debug!("{dev}: {e}"),
        }
    }
    Err(InitDataSourceError::NotFound)
}
