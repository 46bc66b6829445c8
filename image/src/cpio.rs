//! The cpio "newc" format (the kernel's initramfs format, `070701`), written
//! deterministically, and read back.
//!
//! Each entry is a 110-byte ASCII header — `070701` then thirteen 8-digit hex fields:
//! ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor,
//! rdevminor, namesize (with the NUL), check — then the name and a NUL padded to a
//! multiple of 4 bytes, then the data padded to a multiple of 4 bytes. The archive ends
//! with an entry named `TRAILER!!!` and is padded to 512 bytes, as GNU cpio does.
//!
//! What makes the output reproducible: entries sorted by path component (so every
//! directory precedes its contents), inode numbers assigned in that order from 1, uid
//! and gid 0, one fixed mtime for every entry, device fields of the host never used.
//! Device nodes are plain header fields, so creating `/dev/console` needs no root.

use std::collections::BTreeMap;
use std::fmt;

/// `S_IFDIR`.
pub const S_IFDIR: u32 = 0o040000;
/// `S_IFREG`.
pub const S_IFREG: u32 = 0o100000;
/// `S_IFLNK`.
pub const S_IFLNK: u32 = 0o120000;
/// `S_IFCHR`.
pub const S_IFCHR: u32 = 0o020000;
const S_IFMT: u32 = 0o170000;

/// What an entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file with its content.
    File(Vec<u8>),
    /// A symbolic link to the target.
    Symlink(String),
    /// A character device node.
    CharDev {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
}

/// One entry: what it is and its permission bits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The kind (and content).
    pub kind: Kind,
    /// Permission bits (`0o7777` at most).
    pub perm: u32,
}

/// A path error while adding entries.
#[derive(Debug, PartialEq, Eq)]
pub struct PathError(pub String);

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Normalises an archive path: absolute or relative in, `a/b/c` out; rejects `..`, `.`
/// components and empty names.
pub fn normalize(path: &str) -> Result<String, PathError> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return Err(PathError(format!("'{path}': empty path")));
    }
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return Err(PathError(format!("'{path}': '.' and '..' are not allowed")));
    }
    Ok(parts.join("/"))
}

/// The archive being built: path (normalised) to entry, kept in component order.
#[derive(Clone, Debug, Default)]
pub struct Archive {
    entries: BTreeMap<Vec<String>, Entry>,
}

impl Archive {
    /// An empty archive.
    pub fn new() -> Archive {
        Archive::default()
    }

    fn key(path: &str) -> Result<Vec<String>, PathError> {
        Ok(normalize(path)?.split('/').map(String::from).collect())
    }

    /// Adds `entry` at `path`, creating missing parent directories (mode 0755). Adding a
    /// path twice is an error unless both are directories (the mode given last wins), or
    /// `replace` is set.
    pub fn add(&mut self, path: &str, entry: Entry, replace: bool) -> Result<(), PathError> {
        let key = Archive::key(path)?;
        for i in 1..key.len() {
            let parent = key[..i].to_vec();
            match self.entries.get(&parent) {
                None => {
                    self.entries.insert(
                        parent,
                        Entry {
                            kind: Kind::Dir,
                            perm: 0o755,
                        },
                    );
                }
                Some(Entry {
                    kind: Kind::Dir, ..
                }) => {}
                Some(_) => {
                    return Err(PathError(format!(
                        "'{path}': /{} is not a directory",
                        parent.join("/")
                    )));
                }
            }
        }
        match self.entries.get(&key) {
            Some(old) if !replace => {
                if old.kind == Kind::Dir && entry.kind == Kind::Dir {
                    // A directory given again (or after its contents created it
                    // implicitly): the mode given last wins.
                    self.entries.insert(key, entry);
                    return Ok(());
                }
                return Err(PathError(format!("/{} is added twice", key.join("/"))));
            }
            Some(Entry {
                kind: Kind::Dir, ..
            }) if self
                .entries
                .keys()
                .any(|k| k.len() > key.len() && k.starts_with(&key)) =>
            {
                return Err(PathError(format!(
                    "/{}: cannot replace a non-empty directory",
                    key.join("/")
                )));
            }
            _ => {}
        }
        self.entries.insert(key, entry);
        Ok(())
    }

    /// The entry at `path`, if any.
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(&Archive::key(path).ok()?)
    }

    /// Number of entries (without the trailer).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the archive has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The newc bytes, every entry with modification time `mtime`.
    pub fn write(&self, mtime: u32) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, (key, e)) in self.entries.iter().enumerate() {
            let (ty, nlink, data): (u32, u32, &[u8]) = match &e.kind {
                Kind::Dir => (S_IFDIR, 2, &[]),
                Kind::File(d) => (S_IFREG, 1, d),
                Kind::Symlink(t) => (S_IFLNK, 1, t.as_bytes()),
                Kind::CharDev { .. } => (S_IFCHR, 1, &[]),
            };
            let (rmaj, rmin) = match e.kind {
                Kind::CharDev { major, minor } => (major, minor),
                _ => (0, 0),
            };
            let header = Header {
                ino: i as u32 + 1,
                mode: ty | (e.perm & 0o7777),
                uid: 0,
                gid: 0,
                nlink,
                mtime,
                filesize: data.len() as u32,
                rdevmajor: rmaj,
                rdevminor: rmin,
            };
            header.write(&mut out, &key.join("/"));
            out.extend_from_slice(data);
            pad4(&mut out);
        }
        Header {
            ino: 0,
            mode: 0,
            uid: 0,
            gid: 0,
            nlink: 1,
            mtime: 0,
            filesize: 0,
            rdevmajor: 0,
            rdevminor: 0,
        }
        .write(&mut out, TRAILER);
        out.resize(out.len().div_ceil(512) * 512, 0);
        out
    }
}

/// The name of the last entry.
pub const TRAILER: &str = "TRAILER!!!";

fn pad4(out: &mut Vec<u8>) {
    out.resize(out.len().div_ceil(4) * 4, 0);
}

struct Header {
    ino: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    mtime: u32,
    filesize: u32,
    rdevmajor: u32,
    rdevminor: u32,
}

impl Header {
    fn write(&self, out: &mut Vec<u8>, name: &str) {
        let fields = [
            self.ino,
            self.mode,
            self.uid,
            self.gid,
            self.nlink,
            self.mtime,
            self.filesize,
            0, // devmajor
            0, // devminor
            self.rdevmajor,
            self.rdevminor,
            name.len() as u32 + 1,
            0, // check
        ];
        out.extend_from_slice(b"070701");
        for f in fields {
            out.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        pad4(out);
    }
}

/// An entry read back from an archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadEntry {
    /// The name as stored.
    pub name: String,
    /// `c_ino`.
    pub ino: u32,
    /// `c_mode` (type and permission bits).
    pub mode: u32,
    /// `c_uid`.
    pub uid: u32,
    /// `c_gid`.
    pub gid: u32,
    /// `c_nlink`.
    pub nlink: u32,
    /// `c_mtime`.
    pub mtime: u32,
    /// `(rdevmajor, rdevminor)`.
    pub rdev: (u32, u32),
    /// File content or symlink target.
    pub data: Vec<u8>,
}

impl ReadEntry {
    /// `d`, `-`, `l`, `c` or `?`.
    pub fn type_char(&self) -> char {
        match self.mode & S_IFMT {
            S_IFDIR => 'd',
            S_IFREG => '-',
            S_IFLNK => 'l',
            S_IFCHR => 'c',
            _ => '?',
        }
    }
}

/// Parses a newc archive up to its trailer (every length bounds-checked).
pub fn read(data: &[u8]) -> Result<Vec<ReadEntry>, String> {
    let mut at = 0usize;
    let mut out = Vec::new();
    loop {
        let h = data
            .get(at..at + 110)
            .ok_or_else(|| format!("truncated header at offset {at}"))?;
        if &h[..6] != b"070701" && &h[..6] != b"070702" {
            return Err(format!("bad magic at offset {at}"));
        }
        let field = |i: usize| -> Result<u32, String> {
            let s = std::str::from_utf8(&h[6 + i * 8..14 + i * 8])
                .map_err(|_| format!("non-ASCII header at offset {at}"))?;
            u32::from_str_radix(s, 16).map_err(|_| format!("bad hex field at offset {at}"))
        };
        let namesize = field(11)? as usize;
        let filesize = field(6)? as usize;
        let name_end = at + 110 + namesize;
        let name = data
            .get(at + 110..name_end)
            .ok_or_else(|| format!("truncated name at offset {at}"))?;
        let name = name
            .strip_suffix(&[0])
            .ok_or_else(|| format!("name not NUL-terminated at offset {at}"))?;
        let name = String::from_utf8(name.to_vec())
            .map_err(|_| format!("non-UTF-8 name at offset {at}"))?;
        let data_start = name_end.div_ceil(4) * 4;
        let content = data
            .get(data_start..data_start + filesize)
            .ok_or_else(|| format!("truncated data of {name}"))?;
        if name == TRAILER {
            return Ok(out);
        }
        out.push(ReadEntry {
            name,
            ino: field(0)?,
            mode: field(1)?,
            uid: field(2)?,
            gid: field(3)?,
            nlink: field(4)?,
            mtime: field(5)?,
            rdev: (field(9)?, field(10)?),
            data: content.to_vec(),
        });
        at = (data_start + filesize).div_ceil(4) * 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(d: &[u8], perm: u32) -> Entry {
        Entry {
            kind: Kind::File(d.to_vec()),
            perm,
        }
    }

    #[test]
    fn exact_bytes_of_a_tiny_archive() {
        let mut a = Archive::new();
        a.add("/a", file(b"hi", 0o644), false).unwrap();
        let bytes = a.write(0);
        let expect = [
            "070701",
            "00000001", // ino
            "000081A4", // regular, 0644
            "00000000",
            "00000000",
            "00000001", // nlink
            "00000000", // mtime
            "00000002", // size
            "00000000",
            "00000000",
            "00000000",
            "00000000",
            "00000002", // namesize "a\0"
            "00000000",
            "a\0",    // 110 + 2 = 112: aligned
            "hi\0\0", // data padded to 4
            "070701",
            "00000000",
            "00000000",
            "00000000",
            "00000000",
            "00000001",
            "00000000",
            "00000000",
            "00000000",
            "00000000",
            "00000000",
            "00000000",
            "0000000B", // "TRAILER!!!\0"
            "00000000",
            "TRAILER!!!\0",
            "\0", // 110 + 11 = 121 -> 124
        ]
        .concat();
        assert_eq!(&bytes[..expect.len()], expect.as_bytes());
        assert_eq!(bytes.len(), 512);
        assert!(bytes[expect.len()..].iter().all(|b| *b == 0));
    }

    #[test]
    fn sorted_parents_first_and_read_back() {
        let mut a = Archive::new();
        a.add("/sbin/sealgate", file(b"ELF", 0o755), false).unwrap();
        a.add(
            "init",
            Entry {
                kind: Kind::Symlink("sbin/sealgate".into()),
                perm: 0o777,
            },
            false,
        )
        .unwrap();
        a.add(
            "/dev/console",
            Entry {
                kind: Kind::CharDev { major: 5, minor: 1 },
                perm: 0o600,
            },
            false,
        )
        .unwrap();
        a.add(
            "/tmp",
            Entry {
                kind: Kind::Dir,
                perm: 0o1777,
            },
            false,
        )
        .unwrap();
        a.add("/a-b/x", file(b"", 0o644), false).unwrap();
        a.add("/a/b", file(b"12345", 0o600), false).unwrap();
        let entries = read(&a.write(1_700_000_000)).unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "a",
                "a/b",
                "a-b",
                "a-b/x",
                "dev",
                "dev/console",
                "init",
                "sbin",
                "sbin/sealgate",
                "tmp"
            ]
        );
        let inos: Vec<u32> = entries.iter().map(|e| e.ino).collect();
        assert_eq!(inos, (1..=10).collect::<Vec<_>>());
        let console = &entries[5];
        assert_eq!(
            (console.type_char(), console.mode & 0o7777, console.rdev),
            ('c', 0o600, (5, 1))
        );
        assert_eq!(entries[6].type_char(), 'l');
        assert_eq!(entries[6].data, b"sbin/sealgate");
        assert_eq!(entries[9].mode, S_IFDIR | 0o1777);
        assert_eq!(entries[1].data, b"12345");
        assert!(
            entries
                .iter()
                .all(|e| e.mtime == 1_700_000_000 && e.uid == 0 && e.gid == 0)
        );
    }

    #[test]
    fn conflicts_and_bad_paths() {
        let mut a = Archive::new();
        a.add("/x/y", file(b"", 0o644), false).unwrap();
        assert!(a.add("/x/y", file(b"", 0o644), false).is_err());
        assert!(
            a.add("/x/y/z", file(b"", 0o644), false).is_err(),
            "parent is a file"
        );
        a.add("/x/y", file(b"new", 0o644), true).unwrap();
        assert_eq!(a.get("x/y").unwrap().kind, Kind::File(b"new".to_vec()));
        assert!(
            a.add("/x", file(b"", 0o644), true).is_err(),
            "non-empty directory"
        );
        a.add(
            "x",
            Entry {
                kind: Kind::Dir,
                perm: 0o700,
            },
            false,
        )
        .unwrap();
        assert_eq!(
            a.get("/x").unwrap().perm,
            0o700,
            "an explicit mode beats the implicit 0755"
        );
        for bad in ["", "/", "/a/../b", "./a"] {
            assert!(normalize(bad).is_err(), "{bad:?}");
        }
        assert_eq!(normalize("//a//b/").unwrap(), "a/b");
    }

    #[test]
    fn reader_rejects_truncation() {
        let mut a = Archive::new();
        a.add("/f", file(b"data", 0o644), false).unwrap();
        let bytes = a.write(0);
        for cut in [0, 5, 110, 113, 118] {
            assert!(read(&bytes[..cut]).is_err(), "cut {cut}");
        }
        let mut bad = bytes.clone();
        bad[0] = b'1';
        assert!(read(&bad).is_err());
    }
}
