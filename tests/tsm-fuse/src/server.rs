//! FUSE request dispatch: maps kernel requests onto the configfs-tsm model ([`crate::tsm`])
//! and implements the configfs per-open-file buffering of attributes.
//!
//! Node ids: `1` is the mount root (configfs `tsm/`), `2` is `report/`, an entry with id
//! `k >= 1` is `k << 4`, and its attribute `a` is `(k << 4) | (a + 1)`. With a provider
//! that has them, `3` is `measurements/` (TDX's sysfs measurement files, beside `report/`),
//! `4` its `mrconfigid` and `5..=8` `rtmr0:sha384`..`rtmr3:sha384`. Entry ids are never
//! reused, so node ids are unique for the life of the mount and lookups need no counting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use rustix::io::Errno;

use crate::Register;
use crate::proto::{self, Attr, InHeader, Reader, Writer};
use crate::tsm::{Attribute, TEXT_ATTR_SIZE, TEXT_WRITE_MAX, Tsm};

/// Largest WRITE payload we accept in one request (negotiated in INIT).
pub(crate) const MAX_WRITE: u32 = 16 * 1024;
/// Size of the buffer requests are read into: the kernel wants room for a full WRITE.
pub(crate) const READ_BUFFER: usize = MAX_WRITE as usize + 4096;

const REPORT_ID: u64 = 2;
const REPORT_NAME: &[u8] = b"report";
const MEASUREMENTS_ID: u64 = 3;
const MEASUREMENTS_NAME: &[u8] = b"measurements";
const MRCONFIGID_ID: u64 = 4;
const RTMR0_ID: u64 = 5;
/// The size of every measurement file (SHA-384).
const REGISTER_LEN: usize = 48;

fn register_name(r: Register) -> String {
    match r {
        Register::MrConfigId => "mrconfigid".into(),
        Register::Rtmr(i) => format!("rtmr{i}:sha384"),
    }
}

const REGISTERS: [Register; 5] = [
    Register::MrConfigId,
    Register::Rtmr(0),
    Register::Rtmr(1),
    Register::Rtmr(2),
    Register::Rtmr(3),
];

/// Locks the shared model, ignoring poisoning: a panicking provider must not wedge the mount.
pub(crate) fn lock(m: &Mutex<Tsm>) -> MutexGuard<'_, Tsm> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Root,
    Report,
    Entry(u64),
    Attr(u64, Attribute),
    Measurements,
    Register(Register),
}

impl Node {
    fn decode(nodeid: u64) -> Option<Node> {
        match nodeid {
            proto::ROOT_ID => Some(Node::Root),
            REPORT_ID => Some(Node::Report),
            MEASUREMENTS_ID => Some(Node::Measurements),
            MRCONFIGID_ID => Some(Node::Register(Register::MrConfigId)),
            RTMR0_ID..=8 => Some(Node::Register(Register::Rtmr((nodeid - RTMR0_ID) as u8))),
            0..16 => None,
            _ => {
                let id = nodeid >> 4;
                match nodeid & 0xf {
                    0 => Some(Node::Entry(id)),
                    low => Attribute::from_index(low - 1).map(|a| Node::Attr(id, a)),
                }
            }
        }
    }

    fn encode(self) -> u64 {
        match self {
            Node::Root => proto::ROOT_ID,
            Node::Report => REPORT_ID,
            Node::Entry(id) => id << 4,
            Node::Attr(id, a) => (id << 4) | (a.index() + 1),
            Node::Measurements => MEASUREMENTS_ID,
            Node::Register(Register::MrConfigId) => MRCONFIGID_ID,
            Node::Register(Register::Rtmr(i)) => RTMR0_ID + u64::from(i),
        }
    }
}

/// One open attribute file: the configfs `struct configfs_buffer`.
struct AttrFile {
    entry: u64,
    attr: Attribute,
    /// Content served to reads, filled by the first read (text: `show`, bin: the blob).
    read_buf: Option<Vec<u8>>,
    read_in_progress: bool,
    /// Bin attributes: data written so far; `Some` once a write was attempted
    /// (`write_in_progress`), committed when the file is released.
    write_buf: Option<Vec<u8>>,
}

struct DirEntry {
    ino: u64,
    typ: u32,
    name: Vec<u8>,
}

enum Handle {
    Dir(Vec<DirEntry>),
    File(AttrFile),
    /// A measurement file: its content as the first read saw it.
    Register(Register, Option<Vec<u8>>),
}

/// What to do with one request.
pub(crate) struct Outcome {
    /// The reply to write to the device, if the opcode has one.
    pub reply: Option<Vec<u8>>,
    /// Set after DESTROY: the server loop should end.
    pub stop: bool,
}

/// The request handler; owned by the server thread.
pub(crate) struct Server {
    tsm: Arc<Mutex<Tsm>>,
    handles: HashMap<u64, Handle>,
    next_fh: u64,
    uid: u32,
    gid: u32,
    mounted_at: u64,
    initialized: bool,
}

type R<T> = Result<T, Errno>;

impl Server {
    pub(crate) fn new(tsm: Arc<Mutex<Tsm>>, uid: u32, gid: u32, mounted_at: u64) -> Self {
        Self {
            tsm,
            handles: HashMap::new(),
            next_fh: 1,
            uid,
            gid,
            mounted_at,
            initialized: false,
        }
    }

    pub(crate) fn initialized(&self) -> bool {
        self.initialized
    }

    /// Handles one raw request as read from `/dev/fuse`. Malformed requests get an `EIO`
    /// reply when their header can be parsed, and are dropped otherwise.
    pub(crate) fn handle(&mut self, msg: &[u8]) -> Outcome {
        let (hdr, body) = match proto::parse_header(msg) {
            Ok(parsed) => parsed,
            Err(e) => {
                // Reply to what looks like a unique id if there is one, so the caller does
                // not hang; a message too short to carry one cannot be answered.
                let reply = (msg.len() >= 16).then(|| {
                    let mut u = [0u8; 8];
                    u.copy_from_slice(&msg[8..16]);
                    proto::reply_err(u64::from_le_bytes(u), e)
                });
                return Outcome { reply, stop: false };
            }
        };
        match hdr.opcode {
            // No reply for these.
            proto::FORGET | proto::BATCH_FORGET | proto::INTERRUPT => Outcome {
                reply: None,
                stop: false,
            },
            proto::DESTROY => Outcome {
                reply: Some(proto::reply_ok(hdr.unique, &[])),
                stop: true,
            },
            op => {
                let result = if op == proto::INIT {
                    self.init(body)
                } else if !self.initialized {
                    Err(Errno::IO)
                } else {
                    self.dispatch(hdr, body)
                };
                let reply = match result {
                    Ok(payload) => proto::reply_ok(hdr.unique, &payload),
                    Err(e) => proto::reply_err(hdr.unique, e),
                };
                Outcome {
                    reply: Some(reply),
                    stop: false,
                }
            }
        }
    }

    fn init(&mut self, body: &[u8]) -> R<Vec<u8>> {
        let mut r = Reader::new(body);
        let major = r.u32()?;
        let minor = r.u32()?;
        let max_readahead = r.u32()?;
        let flags = r.u32()?;
        if major != proto::KERNEL_VERSION {
            return Err(Errno::PROTO);
        }
        if minor < proto::MIN_KERNEL_MINOR {
            return Err(Errno::PROTO);
        }
        let mut w = Writer::new();
        w.u32(proto::KERNEL_VERSION)
            .u32(minor.min(proto::KERNEL_MINOR))
            .u32(max_readahead)
            .u32(flags & (proto::FUSE_ATOMIC_O_TRUNC | proto::FUSE_BIG_WRITES))
            .u16(256) // max_background: keep async RELEASEs flowing in order
            .u16(192) // congestion_threshold
            .u32(MAX_WRITE)
            .u32(1) // time_gran
            .u16(0) // max_pages: default
            .u16(0) // map_alignment
            .zeros(32); // unused[8]
        self.initialized = true;
        Ok(w.into_inner())
    }

    fn dispatch(&mut self, hdr: InHeader, body: &[u8]) -> R<Vec<u8>> {
        let mut r = Reader::new(body);
        let node = Node::decode(hdr.nodeid);
        match hdr.opcode {
            proto::LOOKUP => {
                let name = r.name()?;
                let child = self.lookup(node.ok_or(Errno::NOENT)?, name)?;
                Ok(proto::entry_out(&self.attr_of(child)?))
            }
            proto::GETATTR => {
                // fuse_getattr_in: flags, dummy, fh; we answer by node id either way.
                r.skip(16)?;
                Ok(proto::attr_out(&self.attr_of(node.ok_or(Errno::NOENT)?)?))
            }
            proto::SETATTR => self.setattr(node.ok_or(Errno::NOENT)?, &mut r),
            proto::MKDIR => {
                r.skip(8)?; // fuse_mkdir_in: mode, umask
                let name = r.name()?;
                let child = self.mkdir(node.ok_or(Errno::NOENT)?, name)?;
                Ok(proto::entry_out(&self.attr_of(child)?))
            }
            proto::RMDIR => {
                let name = r.name()?;
                self.rmdir(node.ok_or(Errno::NOENT)?, name)?;
                Ok(Vec::new())
            }
            proto::UNLINK => {
                let name = r.name()?;
                let child = self.lookup(node.ok_or(Errno::NOENT)?, name)?;
                // configfs has no unlink for attributes (only for symlinks).
                Err(if matches!(child, Node::Attr(..) | Node::Register(_)) {
                    Errno::PERM
                } else {
                    Errno::ISDIR
                })
            }
            proto::CREATE | proto::MKNOD | proto::SYMLINK => {
                let name = match hdr.opcode {
                    proto::CREATE => {
                        r.skip(16)?; // fuse_create_in
                        r.name()?
                    }
                    proto::MKNOD => {
                        r.skip(16)?; // fuse_mknod_in
                        r.name()?
                    }
                    _ => r.name()?, // SYMLINK: link name, then target
                };
                let parent = node.ok_or(Errno::NOENT)?;
                if matches!(parent, Node::Attr(..) | Node::Register(_)) {
                    return Err(Errno::NOTDIR);
                }
                if self.lookup(parent, name).is_ok() {
                    return Err(Errno::EXIST);
                }
                // configfs directories have no ->create (VFS: EACCES), no ->mknod (EPERM),
                // and tsm items do not allow links (EPERM).
                Err(if hdr.opcode == proto::CREATE {
                    Errno::ACCESS
                } else {
                    Errno::PERM
                })
            }
            proto::RENAME | proto::RENAME2 | proto::LINK => Err(Errno::PERM),
            proto::OPEN => {
                let flags = r.u32()?;
                r.skip(4)?;
                self.open(node.ok_or(Errno::NOENT)?, flags)
            }
            proto::READ => {
                let fh = r.u64()?;
                let offset = r.u64()?;
                let size = r.u32()?;
                self.read(fh, offset, size)
            }
            proto::WRITE => {
                let fh = r.u64()?;
                let offset = r.u64()?;
                let size = r.u32()?;
                // write_flags, lock_owner, flags, padding
                r.skip(4 + 8 + 4 + 4)?;
                let size = usize::try_from(size).map_err(|_| Errno::IO)?;
                let data = r.bytes(size)?;
                self.write(fh, offset, data)
            }
            proto::FLUSH => Ok(Vec::new()),
            proto::RELEASE => {
                let fh = r.u64()?;
                self.release(fh);
                Ok(Vec::new())
            }
            proto::OPENDIR => self.opendir(node.ok_or(Errno::NOENT)?),
            proto::READDIR => {
                let fh = r.u64()?;
                let offset = r.u64()?;
                let size = r.u32()?;
                self.readdir(fh, offset, size)
            }
            proto::RELEASEDIR => {
                let fh = r.u64()?;
                self.handles.remove(&fh);
                Ok(Vec::new())
            }
            proto::STATFS => Ok(proto::statfs_out()),
            proto::ACCESS => {
                self.attr_of(node.ok_or(Errno::NOENT)?)?;
                Ok(Vec::new())
            }
            _ => Err(Errno::NOSYS),
        }
    }

    fn lookup(&self, parent: Node, name: &[u8]) -> R<Node> {
        let tsm = lock(&self.tsm);
        match parent {
            Node::Root if name == REPORT_NAME => Ok(Node::Report),
            Node::Root if name == MEASUREMENTS_NAME && has_measurements(&tsm) => {
                Ok(Node::Measurements)
            }
            Node::Root => Err(Errno::NOENT),
            Node::Measurements => REGISTERS
                .into_iter()
                .find(|r| register_name(*r).as_bytes() == name)
                .map(Node::Register)
                .ok_or(Errno::NOENT),
            Node::Register(_) => Err(Errno::NOTDIR),
            Node::Report => tsm.find(name).map(Node::Entry).ok_or(Errno::NOENT),
            Node::Entry(id) => {
                let entry = tsm.entry(id).ok_or(Errno::NOENT)?;
                match Attribute::from_name(name) {
                    Some(a) if entry.is_visible(a) => Ok(Node::Attr(id, a)),
                    _ => Err(Errno::NOENT),
                }
            }
            Node::Attr(..) => Err(Errno::NOTDIR),
        }
    }

    fn attr_of(&self, node: Node) -> R<Attr> {
        let tsm = lock(&self.tsm);
        let dir = |time: u64| Attr {
            ino: node.encode(),
            size: 0,
            time,
            mode: proto::S_IFDIR | 0o755,
            nlink: 2,
            uid: self.uid,
            gid: self.gid,
        };
        match node {
            Node::Root | Node::Report => Ok(dir(self.mounted_at)),
            Node::Measurements if has_measurements(&tsm) => Ok(dir(self.mounted_at)),
            Node::Register(r) if has_measurements(&tsm) => Ok(Attr {
                ino: node.encode(),
                size: REGISTER_LEN as u64,
                time: self.mounted_at,
                mode: proto::S_IFREG
                    | match r {
                        Register::MrConfigId => 0o444,
                        Register::Rtmr(_) => 0o644,
                    },
                nlink: 1,
                uid: self.uid,
                gid: self.gid,
            }),
            Node::Measurements | Node::Register(_) => Err(Errno::NOENT),
            Node::Entry(id) => Ok(dir(tsm.entry(id).ok_or(Errno::NOENT)?.created)),
            Node::Attr(id, a) => {
                let entry = tsm.entry(id).ok_or(Errno::NOENT)?;
                if !entry.is_visible(a) {
                    return Err(Errno::NOENT);
                }
                Ok(Attr {
                    ino: node.encode(),
                    size: if a.is_bin() { 0 } else { TEXT_ATTR_SIZE },
                    time: entry.created,
                    mode: proto::S_IFREG | a.perm(),
                    nlink: 1,
                    uid: self.uid,
                    gid: self.gid,
                })
            }
        }
    }

    fn setattr(&mut self, node: Node, r: &mut Reader<'_>) -> R<Vec<u8>> {
        let valid = r.u32()?;
        r.skip(4 + 8)?; // padding, fh
        let _size = r.u64()?;
        let attr = self.attr_of(node)?;
        if valid & proto::FATTR_SIZE != 0 && attr.mode & proto::S_IFDIR != 0 {
            return Err(Errno::ISDIR);
        }
        // configfs accepts truncation (O_TRUNC) and metadata changes without touching the
        // attribute's content; we accept them too but keep no metadata changes.
        Ok(proto::attr_out(&attr))
    }

    fn mkdir(&mut self, parent: Node, name: &[u8]) -> R<Node> {
        if let Ok(_existing) = self.lookup(parent, name) {
            return Err(Errno::EXIST);
        }
        match parent {
            Node::Report => {
                let now = unix_now();
                lock(&self.tsm).mkdir(name, now).map(Node::Entry)
            }
            // Only report/ has make_item; the tsm root and report items do not (nor
            // sysfs).
            Node::Root | Node::Entry(_) | Node::Measurements => {
                self.attr_of(parent)?;
                Err(Errno::PERM)
            }
            Node::Attr(..) | Node::Register(_) => Err(Errno::NOTDIR),
        }
    }

    fn rmdir(&mut self, parent: Node, name: &[u8]) -> R<()> {
        match self.lookup(parent, name)? {
            Node::Entry(_) => lock(&self.tsm).rmdir(name),
            // report/ is a default group: configfs refuses to remove it.
            Node::Report | Node::Measurements => Err(Errno::PERM),
            Node::Attr(..) | Node::Register(_) => Err(Errno::NOTDIR),
            Node::Root => Err(Errno::BUSY),
        }
    }

    fn open(&mut self, node: Node, flags: u32) -> R<Vec<u8>> {
        if let Node::Register(r) = node {
            self.attr_of(node)?;
            let wants_write = flags & 0o3 != 0;
            if wants_write && r == Register::MrConfigId {
                return Err(Errno::ACCESS);
            }
            let fh = self.next_fh;
            self.next_fh += 1;
            self.handles.insert(fh, Handle::Register(r, None));
            return Ok(proto::open_out(fh, proto::FOPEN_DIRECT_IO));
        }
        let Node::Attr(entry, attr) = node else {
            self.attr_of(node)?;
            return Err(Errno::ISDIR);
        };
        self.attr_of(node)?;
        // configfs checks the attribute's own mode bits (even for root): reading needs
        // S_IRUGO and a show/read method, writing needs S_IWUGO and a store/write method.
        let accmode = flags & 0o3;
        let wants_read = accmode == 0 || accmode == 2;
        let wants_write = accmode == 1 || accmode == 2;
        if (wants_read && !attr.readable()) || (wants_write && !attr.writable()) {
            return Err(Errno::ACCESS);
        }
        let fh = self.next_fh;
        self.next_fh += 1;
        self.handles.insert(
            fh,
            Handle::File(AttrFile {
                entry,
                attr,
                read_buf: None,
                read_in_progress: false,
                write_buf: None,
            }),
        );
        Ok(proto::open_out(fh, proto::FOPEN_DIRECT_IO))
    }

    fn read(&mut self, fh: u64, offset: u64, size: u32) -> R<Vec<u8>> {
        if let Some(Handle::Register(r, buf)) = self.handles.get_mut(&fh) {
            if buf.is_none() {
                let provider = lock(&self.tsm).provider().cloned().ok_or(Errno::NODEV)?;
                *buf = Some(provider.read_register(*r)?.to_vec());
            }
            let buf = buf.as_deref().unwrap_or_default();
            let start = usize::try_from(offset).unwrap_or(usize::MAX).min(buf.len());
            let end = start
                .saturating_add(usize::try_from(size).unwrap_or(usize::MAX))
                .min(buf.len());
            return Ok(buf[start..end].to_vec());
        }
        let Some(Handle::File(file)) = self.handles.get_mut(&fh) else {
            return Err(Errno::BADF);
        };
        if file.attr.is_bin() {
            // configfs_bin_read_iter
            if file.write_buf.is_some() {
                return Err(Errno::TXTBSY);
            }
            file.read_in_progress = true;
            if file.read_buf.is_none() {
                let blob = lock(&self.tsm).bin_read(file.entry, file.attr)?;
                if blob.is_empty() {
                    return Ok(Vec::new());
                }
                if blob.len() > file.attr.bin_max() {
                    return Err(Errno::FBIG);
                }
                file.read_buf = Some(blob);
            }
        } else if file.read_buf.is_none() {
            // configfs_read_iter: show() once per fill.
            file.read_buf = Some(lock(&self.tsm).show(file.entry, file.attr)?);
        }
        let buf = file.read_buf.as_deref().unwrap_or_default();
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(buf.len());
        let len = usize::try_from(size).unwrap_or(usize::MAX);
        let end = start.saturating_add(len).min(buf.len());
        Ok(buf[start..end].to_vec())
    }

    fn write(&mut self, fh: u64, offset: u64, data: &[u8]) -> R<Vec<u8>> {
        if let Some(Handle::Register(r, buf)) = self.handles.get_mut(&fh) {
            // tsm-mr: "All writes must start at offset 0 and be 48 bytes in size".
            let Register::Rtmr(index) = *r else {
                return Err(Errno::ACCESS);
            };
            let digest: &[u8; REGISTER_LEN] = data.try_into().map_err(|_| Errno::INVAL)?;
            if offset != 0 {
                return Err(Errno::INVAL);
            }
            *buf = None;
            let provider = lock(&self.tsm).provider().cloned().ok_or(Errno::NODEV)?;
            provider.extend_rtmr(index, digest)?;
            return Ok(proto::write_out(REGISTER_LEN as u32));
        }
        let Some(Handle::File(file)) = self.handles.get_mut(&fh) else {
            return Err(Errno::BADF);
        };
        let written = if file.attr.is_bin() {
            // configfs_bin_write_iter: buffer, grow up to cb_max_size, commit on release.
            if file.read_in_progress {
                return Err(Errno::TXTBSY);
            }
            let buf = file.write_buf.get_or_insert_with(Vec::new);
            let start = usize::try_from(offset).map_err(|_| Errno::FBIG)?;
            let end = start.checked_add(data.len()).ok_or(Errno::FBIG)?;
            if end > buf.len() {
                if end > file.attr.bin_max() {
                    return Err(Errno::FBIG);
                }
                buf.resize(end, 0);
            }
            buf[start..end].copy_from_slice(data);
            data.len()
        } else {
            // configfs_write_iter: every write(2) is one store() of at most 4095 bytes,
            // whatever the file position.
            let chunk = &data[..data.len().min(TEXT_WRITE_MAX)];
            if chunk.is_empty() {
                return Err(Errno::FAULT);
            }
            file.read_buf = None;
            lock(&self.tsm).store(file.entry, file.attr, chunk)?
        };
        let written = u32::try_from(written).map_err(|_| Errno::IO)?;
        Ok(proto::write_out(written))
    }

    fn release(&mut self, fh: u64) {
        if let Some(Handle::File(file)) = self.handles.remove(&fh)
            && let Some(buf) = file.write_buf
        {
            // configfs_release_bin_file: the write result is ignored.
            let _ = lock(&self.tsm).bin_write(file.entry, file.attr, &buf);
        }
    }

    fn opendir(&mut self, node: Node) -> R<Vec<u8>> {
        let mut list = vec![
            DirEntry {
                ino: node.encode(),
                typ: proto::DT_DIR,
                name: b".".to_vec(),
            },
            DirEntry {
                ino: match node {
                    Node::Root | Node::Report | Node::Measurements => proto::ROOT_ID,
                    _ => REPORT_ID,
                },
                typ: proto::DT_DIR,
                name: b"..".to_vec(),
            },
        ];
        {
            let tsm = lock(&self.tsm);
            match node {
                Node::Root => {
                    list.push(DirEntry {
                        ino: REPORT_ID,
                        typ: proto::DT_DIR,
                        name: REPORT_NAME.to_vec(),
                    });
                    if has_measurements(&tsm) {
                        list.push(DirEntry {
                            ino: MEASUREMENTS_ID,
                            typ: proto::DT_DIR,
                            name: MEASUREMENTS_NAME.to_vec(),
                        });
                    }
                }
                Node::Measurements => list.extend(REGISTERS.into_iter().map(|r| DirEntry {
                    ino: Node::Register(r).encode(),
                    typ: proto::DT_REG,
                    name: register_name(r).into_bytes(),
                })),
                Node::Report => list.extend(tsm.entries().map(|(id, e)| DirEntry {
                    ino: Node::Entry(id).encode(),
                    typ: proto::DT_DIR,
                    name: e.name.to_vec(),
                })),
                Node::Entry(id) => {
                    let entry = tsm.entry(id).ok_or(Errno::NOENT)?;
                    list.extend(entry.attributes().map(|a| DirEntry {
                        ino: Node::Attr(id, a).encode(),
                        typ: proto::DT_REG,
                        name: a.name().as_bytes().to_vec(),
                    }));
                }
                Node::Attr(..) | Node::Register(_) => return Err(Errno::NOTDIR),
            }
        }
        let fh = self.next_fh;
        self.next_fh += 1;
        self.handles.insert(fh, Handle::Dir(list));
        Ok(proto::open_out(fh, 0))
    }

    fn readdir(&mut self, fh: u64, offset: u64, size: u32) -> R<Vec<u8>> {
        let Some(Handle::Dir(list)) = self.handles.get(&fh) else {
            return Err(Errno::BADF);
        };
        let max = usize::try_from(size).unwrap_or(usize::MAX);
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let mut w = Writer::new();
        for (i, e) in list.iter().enumerate().skip(start) {
            if !proto::push_dirent(&mut w, max, e.ino, i as u64 + 1, e.typ, &e.name) {
                break;
            }
        }
        Ok(w.into_inner())
    }
}

/// Whether the registered provider shows `measurements/`.
fn has_measurements(tsm: &Tsm) -> bool {
    tsm.provider().is_some_and(|p| p.has_measurements())
}

/// The `EIO` reply for a request whose handling panicked (`None` for opcodes without reply
/// or a header that cannot be parsed).
pub(crate) fn panic_reply(msg: &[u8]) -> Option<Vec<u8>> {
    let (hdr, _) = proto::parse_header(msg).ok()?;
    match hdr.opcode {
        proto::FORGET | proto::BATCH_FORGET | proto::INTERRUPT => None,
        _ => Some(proto::reply_err(hdr.unique, Errno::IO)),
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Provider, Report, ReportRequest};

    struct Echo;
    impl Provider for Echo {
        fn name(&self) -> &str {
            "echo"
        }
        fn report(&self, req: &ReportRequest<'_>) -> Result<Report, Errno> {
            Ok(Report::new(req.inblob.to_vec()))
        }
    }

    fn server() -> Server {
        let tsm = Arc::new(Mutex::new(Tsm::new(Some(Arc::new(Echo)))));
        Server::new(tsm, 0, 0, 0)
    }

    fn request(opcode: u32, unique: u64, nodeid: u64, body: &[u8]) -> Vec<u8> {
        let mut w = Writer::new();
        let len = (proto::IN_HEADER_LEN + body.len()) as u32;
        w.u32(len)
            .u32(opcode)
            .u64(unique)
            .u64(nodeid)
            .zeros(16)
            .bytes(body);
        w.into_inner()
    }

    fn init_body() -> Vec<u8> {
        let mut w = Writer::new();
        w.u32(7).u32(44).u32(0).u32(u32::MAX).zeros(48);
        w.into_inner()
    }

    fn error_of(reply: &[u8]) -> i32 {
        i32::from_le_bytes([reply[4], reply[5], reply[6], reply[7]])
    }

    #[test]
    fn node_ids_round_trip() {
        for node in [
            Node::Root,
            Node::Report,
            Node::Entry(1),
            Node::Entry(12345),
            Node::Attr(1, Attribute::Inblob),
            Node::Attr(7, Attribute::Manifestblob),
            Node::Measurements,
            Node::Register(Register::MrConfigId),
            Node::Register(Register::Rtmr(0)),
            Node::Register(Register::Rtmr(3)),
        ] {
            assert_eq!(Node::decode(node.encode()), Some(node));
        }
        assert_eq!(Node::decode(0), None);
        // 3..=8: measurements/ and its files; the rest of the low ids are unused.
        assert_eq!(Node::decode(9), None);
        assert_eq!(Node::decode(0x1c), None);
    }

    #[test]
    fn requests_before_init_fail() {
        let mut s = server();
        let out = s.handle(&request(proto::GETATTR, 5, 1, &[0; 16]));
        let reply = out.reply.unwrap();
        assert_eq!(error_of(&reply), -Errno::IO.raw_os_error());
    }

    #[test]
    fn init_negotiates() {
        let mut s = server();
        let reply = s
            .handle(&request(proto::INIT, 1, 0, &init_body()))
            .reply
            .unwrap();
        assert_eq!(error_of(&reply), 0);
        assert_eq!(reply.len(), proto::OUT_HEADER_LEN + 64);
        let minor = u32::from_le_bytes([reply[20], reply[21], reply[22], reply[23]]);
        assert_eq!(minor, proto::KERNEL_MINOR);
        let flags = u32::from_le_bytes([reply[28], reply[29], reply[30], reply[31]]);
        assert_eq!(flags, proto::FUSE_ATOMIC_O_TRUNC | proto::FUSE_BIG_WRITES);
        assert!(s.initialized());
    }

    /// Every truncation of every request we understand must produce an error reply or a
    /// valid one, never a panic.
    #[test]
    fn truncated_and_garbage_requests_never_panic() {
        let mut s = server();
        s.handle(&request(proto::INIT, 1, 0, &init_body()));
        let mkdir = request(proto::MKDIR, 2, 2, b"\xed\x01\0\0\x12\0\0\0e1\0");
        assert_eq!(error_of(&s.handle(&mkdir).reply.unwrap()), 0);
        let bodies: Vec<Vec<u8>> = vec![
            b"report\0".to_vec(),
            [0u8; 88].to_vec(),
            [0u8; 40].to_vec(),
            b"\x01\0\0\0\0\0\0\0inblob\0".to_vec(),
            vec![0xff; 64],
        ];
        for opcode in 0..=50u32 {
            if opcode == proto::DESTROY {
                continue;
            }
            for nodeid in [0u64, 1, 2, 3, 16, 17, 24, 0x1b, u64::MAX] {
                for body in &bodies {
                    for cut in 0..=body.len() {
                        let msg = request(opcode, 9, nodeid, &body[..cut]);
                        let _ = s.handle(&msg);
                        // Header claiming a different length than delivered.
                        let mut bad = msg.clone();
                        bad[0] ^= 0x40;
                        let out = s.handle(&bad);
                        if let Some(reply) = out.reply {
                            assert_eq!(error_of(&reply), -Errno::IO.raw_os_error());
                        }
                    }
                }
            }
        }
        for n in 0..40 {
            let _ = s.handle(&vec![0xa5; n]);
        }
    }
}
