//! The subset of the FUSE kernel ABI (`include/uapi/linux/fuse.h`) this server speaks,
//! as plain little-endian byte encoding: a bounds-checked request reader and reply writers.
//!
//! Every struct layout below is the one of protocol 7.31, which is what we negotiate; the
//! kernel keeps using these sizes for a server that answers INIT with that minor version.

use rustix::io::Errno;

/// Major protocol version we speak.
pub(crate) const KERNEL_VERSION: u32 = 7;
/// Minor protocol version we answer with (the kernel then uses the smaller of both).
pub(crate) const KERNEL_MINOR: u32 = 31;
/// The oldest minor version whose struct layouts we parse (write_in/read_in with lock_owner).
pub(crate) const MIN_KERNEL_MINOR: u32 = 13;

/// Node id of the file system root.
pub(crate) const ROOT_ID: u64 = 1;

/// `sizeof(struct fuse_in_header)`.
pub(crate) const IN_HEADER_LEN: usize = 40;
/// `sizeof(struct fuse_out_header)`.
pub(crate) const OUT_HEADER_LEN: usize = 16;

// Opcodes (enum fuse_opcode).
pub(crate) const LOOKUP: u32 = 1;
pub(crate) const FORGET: u32 = 2;
pub(crate) const GETATTR: u32 = 3;
pub(crate) const SETATTR: u32 = 4;
pub(crate) const SYMLINK: u32 = 6;
pub(crate) const MKNOD: u32 = 8;
pub(crate) const MKDIR: u32 = 9;
pub(crate) const UNLINK: u32 = 10;
pub(crate) const RMDIR: u32 = 11;
pub(crate) const RENAME: u32 = 12;
pub(crate) const LINK: u32 = 13;
pub(crate) const OPEN: u32 = 14;
pub(crate) const READ: u32 = 15;
pub(crate) const WRITE: u32 = 16;
pub(crate) const STATFS: u32 = 17;
pub(crate) const RELEASE: u32 = 18;
pub(crate) const FLUSH: u32 = 25;
pub(crate) const INIT: u32 = 26;
pub(crate) const OPENDIR: u32 = 27;
pub(crate) const READDIR: u32 = 28;
pub(crate) const RELEASEDIR: u32 = 29;
pub(crate) const ACCESS: u32 = 34;
pub(crate) const CREATE: u32 = 35;
pub(crate) const INTERRUPT: u32 = 36;
pub(crate) const DESTROY: u32 = 38;
pub(crate) const BATCH_FORGET: u32 = 42;
pub(crate) const RENAME2: u32 = 45;

// INIT flags we may accept.
pub(crate) const FUSE_ATOMIC_O_TRUNC: u32 = 1 << 3;
pub(crate) const FUSE_BIG_WRITES: u32 = 1 << 5;

// fuse_setattr_in.valid
pub(crate) const FATTR_SIZE: u32 = 1 << 3;

// fuse_open_out.open_flags
pub(crate) const FOPEN_DIRECT_IO: u32 = 1 << 0;

// d_type values for fuse_dirent.type
pub(crate) const DT_DIR: u32 = 4;
pub(crate) const DT_REG: u32 = 8;

// File type bits for fuse_attr.mode
pub(crate) const S_IFDIR: u32 = 0o040_000;
pub(crate) const S_IFREG: u32 = 0o100_000;

/// `struct fuse_in_header`, decoded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InHeader {
    pub opcode: u32,
    pub unique: u64,
    pub nodeid: u64,
}

/// A bounds-checked little-endian reader over one request. Every accessor fails with
/// `EIO` instead of panicking when the request is shorter than its struct claims.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Takes `n` bytes.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], Errno> {
        if self.buf.len() < n {
            return Err(Errno::IO);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Skips `n` bytes.
    pub(crate) fn skip(&mut self, n: usize) -> Result<(), Errno> {
        self.bytes(n).map(|_| ())
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Errno> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, Errno> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A NUL-terminated name (as in LOOKUP, MKDIR, …). Empty names, names with a `/`
    /// and missing terminators are malformed.
    pub(crate) fn name(&mut self) -> Result<&'a [u8], Errno> {
        let nul = self.buf.iter().position(|&b| b == 0).ok_or(Errno::IO)?;
        let name = self.bytes(nul)?;
        self.skip(1)?;
        if name.is_empty() || name.contains(&b'/') {
            return Err(Errno::IO);
        }
        Ok(name)
    }

    /// Everything not read yet.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }
}

/// Parses the fixed request header and checks that its `len` matches what was read.
pub(crate) fn parse_header(buf: &[u8]) -> Result<(InHeader, &[u8]), Errno> {
    if buf.len() < IN_HEADER_LEN {
        return Err(Errno::IO);
    }
    let mut r = Reader::new(buf);
    let len = r.u32()?;
    let opcode = r.u32()?;
    let unique = r.u64()?;
    let nodeid = r.u64()?;
    // uid, gid, pid, total_extlen + padding: not needed.
    r.skip(16)?;
    if usize::try_from(len).ok() != Some(buf.len()) {
        return Err(Errno::IO);
    }
    Ok((
        InHeader {
            opcode,
            unique,
            nodeid,
        },
        r.rest(),
    ))
}

/// Little-endian byte sink for reply payloads.
#[derive(Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Self::default()
    }
    pub(crate) fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }
    pub(crate) fn zeros(&mut self, n: usize) -> &mut Self {
        self.buf.resize(self.buf.len() + n, 0);
        self
    }
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }
    pub(crate) fn into_inner(self) -> Vec<u8> {
        self.buf
    }
}

/// Builds a complete reply message: `fuse_out_header` followed by `payload`.
pub(crate) fn reply_ok(unique: u64, payload: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    let len = u32::try_from(OUT_HEADER_LEN + payload.len()).unwrap_or(u32::MAX);
    w.u32(len).u32(0).u64(unique).bytes(payload);
    w.into_inner()
}

/// Builds an error reply (`error` is the negated errno, no payload).
pub(crate) fn reply_err(unique: u64, err: Errno) -> Vec<u8> {
    let mut w = Writer::new();
    // Errno values are 1..=4095; the wire carries the negated value.
    let code = err.raw_os_error();
    let code = if (1..4096).contains(&code) {
        code
    } else {
        Errno::IO.raw_os_error()
    };
    w.u32(OUT_HEADER_LEN as u32).u32((-code) as u32).u64(unique);
    w.into_inner()
}

/// `struct fuse_attr`, the subset of fields we fill.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attr {
    pub ino: u64,
    pub size: u64,
    pub time: u64,
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Attr {
    /// Appends the 88-byte `struct fuse_attr`.
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u64(self.ino)
            .u64(self.size)
            .u64(0) // blocks
            .u64(self.time) // atime
            .u64(self.time) // mtime
            .u64(self.time) // ctime
            .u32(0) // atimensec
            .u32(0) // mtimensec
            .u32(0) // ctimensec
            .u32(self.mode)
            .u32(self.nlink)
            .u32(self.uid)
            .u32(self.gid)
            .u32(0) // rdev
            .u32(4096) // blksize
            .u32(0); // flags
    }
}

/// `struct fuse_entry_out` with zero entry and attribute timeouts.
pub(crate) fn entry_out(attr: &Attr) -> Vec<u8> {
    let mut w = Writer::new();
    w.u64(attr.ino) // nodeid
        .u64(0) // generation: node ids are never reused
        .u64(0) // entry_valid
        .u64(0) // attr_valid
        .u32(0)
        .u32(0);
    attr.encode(&mut w);
    w.into_inner()
}

/// `struct fuse_attr_out` with a zero attribute timeout.
pub(crate) fn attr_out(attr: &Attr) -> Vec<u8> {
    let mut w = Writer::new();
    w.u64(0).u32(0).u32(0);
    attr.encode(&mut w);
    w.into_inner()
}

/// `struct fuse_open_out`.
pub(crate) fn open_out(fh: u64, open_flags: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.u64(fh).u32(open_flags).u32(0);
    w.into_inner()
}

/// `struct fuse_write_out`.
pub(crate) fn write_out(size: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(size).u32(0);
    w.into_inner()
}

/// `struct fuse_statfs_out`.
pub(crate) fn statfs_out() -> Vec<u8> {
    let mut w = Writer::new();
    w.u64(0) // blocks
        .u64(0) // bfree
        .u64(0) // bavail
        .u64(0) // files
        .u64(0) // ffree
        .u32(4096) // bsize
        .u32(255) // namelen
        .u32(4096) // frsize
        .u32(0) // padding
        .zeros(24); // spare[6]
    w.into_inner()
}

/// Appends one `struct fuse_dirent` (8-byte aligned) if it fits in `max` bytes total.
pub(crate) fn push_dirent(
    w: &mut Writer,
    max: usize,
    ino: u64,
    next_off: u64,
    typ: u32,
    name: &[u8],
) -> bool {
    let unpadded = 24 + name.len();
    let padded = unpadded.div_ceil(8) * 8;
    if w.len() + padded > max {
        return false;
    }
    let Ok(namelen) = u32::try_from(name.len()) else {
        return false;
    };
    w.u64(ino)
        .u64(next_off)
        .u32(namelen)
        .u32(typ)
        .bytes(name)
        .zeros(padded - unpadded);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_len_must_match() {
        let mut w = Writer::new();
        w.u32(42).u32(LOOKUP).u64(7).u64(1).zeros(16).bytes(b"x");
        let mut msg = w.into_inner();
        assert_eq!(parse_header(&msg).err(), Some(Errno::IO));
        msg[0] = 41;
        let (hdr, body) = parse_header(&msg).unwrap();
        assert_eq!(
            (hdr.opcode, hdr.unique, hdr.nodeid, body),
            (LOOKUP, 7, 1, &b"x"[..])
        );
        assert!(parse_header(&msg[..39]).is_err());
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(Reader::new(b"abc\0").name().ok(), Some(&b"abc"[..]));
        assert!(Reader::new(b"abc").name().is_err());
        assert!(Reader::new(b"\0").name().is_err());
        assert!(Reader::new(b"a/b\0").name().is_err());
    }

    #[test]
    fn struct_sizes() {
        let a = Attr {
            ino: 1,
            size: 0,
            time: 0,
            mode: 0,
            nlink: 1,
            uid: 0,
            gid: 0,
        };
        assert_eq!(entry_out(&a).len(), 128);
        assert_eq!(attr_out(&a).len(), 104);
        assert_eq!(statfs_out().len(), 80);
        assert_eq!(open_out(1, 0).len(), 16);
        assert_eq!(reply_err(9, Errno::NOENT).len(), OUT_HEADER_LEN);
    }

    #[test]
    fn dirent_padding() {
        let mut w = Writer::new();
        assert!(push_dirent(&mut w, 4096, 5, 1, DT_REG, b"inblob"));
        assert_eq!(w.len(), 32);
        assert!(!push_dirent(&mut w, 40, 5, 2, DT_REG, b"outblob"));
    }
}
