//! The server's platform layer: one epoll instance, non-blocking listening and client
//! sockets (unix and TCP), peer credentials, and handing a listening socket to another
//! process with `SCM_RIGHTS`. Every call is rustix's safe API: no unsafe here.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::net::SocketAddr;
use rustix::event::epoll;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::{Errno, IoSlice, IoSliceMut};
use rustix::net::{
    self, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};

use crate::os;

/// What woke a watched descriptor.
#[derive(Debug, Clone, Copy)]
pub struct Ready {
    /// The token given to [`Poller::add`].
    pub token: u64,
    /// Readable (or a peer hang-up / error: a read then reports it).
    pub readable: bool,
    /// Writable.
    pub writable: bool,
}

/// An epoll instance.
#[derive(Debug)]
pub struct Poller {
    epoll: OwnedFd,
}

fn flags(readable: bool, writable: bool) -> epoll::EventFlags {
    let mut f = epoll::EventFlags::empty();
    if readable {
        f |= epoll::EventFlags::IN | epoll::EventFlags::RDHUP;
    }
    if writable {
        f |= epoll::EventFlags::OUT;
    }
    f
}

impl Poller {
    /// A new epoll instance (close-on-exec).
    pub fn new() -> Result<Poller, String> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)
            .map_err(|e| format!("cannot create an epoll instance: {}", os(e)))?;
        Ok(Poller { epoll })
    }

    /// Watches `fd` for reading (and writing if `writable`), level-triggered.
    pub fn add(&self, fd: BorrowedFd<'_>, token: u64, writable: bool) -> Result<(), Errno> {
        epoll::add(
            &self.epoll,
            fd,
            epoll::EventData::new_u64(token),
            flags(true, writable),
        )
    }

    /// Changes whether `fd` is watched for reading and for writing.
    pub fn modify(
        &self,
        fd: BorrowedFd<'_>,
        token: u64,
        readable: bool,
        writable: bool,
    ) -> Result<(), Errno> {
        epoll::modify(
            &self.epoll,
            fd,
            epoll::EventData::new_u64(token),
            flags(readable, writable),
        )
    }

    /// Stops watching `fd` (closing it does too).
    pub fn remove(&self, fd: BorrowedFd<'_>) -> Result<(), Errno> {
        epoll::delete(&self.epoll, fd)
    }

    /// Waits for events (at most `out`'s capacity, at least 1), forever if `timeout_ms`
    /// is None. An interrupted wait returns no events.
    pub fn wait(&self, out: &mut Vec<Ready>, timeout_ms: Option<u64>) -> Result<(), Errno> {
        out.clear();
        let mut events: Vec<epoll::Event> = Vec::with_capacity(out.capacity().max(1));
        let ts = timeout_ms.map(|ms| rustix::time::Timespec {
            tv_sec: (ms / 1000) as i64,
            tv_nsec: ((ms % 1000) * 1_000_000) as _,
        });
        match epoll::wait(
            &self.epoll,
            rustix::buffer::spare_capacity(&mut events),
            ts.as_ref(),
        ) {
            Ok(_) => {}
            Err(Errno::INTR) => return Ok(()),
            Err(e) => return Err(e),
        }
        for e in &events {
            let f = e.flags;
            out.push(Ready {
                token: e.data.u64(),
                readable: f.intersects(
                    epoll::EventFlags::IN
                        | epoll::EventFlags::HUP
                        | epoll::EventFlags::RDHUP
                        | epoll::EventFlags::ERR,
                ),
                writable: f.intersects(epoll::EventFlags::OUT | epoll::EventFlags::ERR),
            });
        }
        Ok(())
    }
}

/// Which kind of socket a listening descriptor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    /// A unix stream socket.
    Unix,
    /// A TCP socket (IPv4 or IPv6).
    Tcp,
}

/// The kind of a (received) listening socket; an error for anything else.
pub fn listener_kind(fd: BorrowedFd<'_>) -> Result<ListenerKind, String> {
    let ty = net::sockopt::socket_type(fd).map_err(|e| format!("not a socket: {}", os(e)))?;
    let listening =
        net::sockopt::socket_acceptconn(fd).map_err(|e| format!("not a socket: {}", os(e)))?;
    if ty != SocketType::STREAM || !listening {
        return Err(String::from("not a listening stream socket"));
    }
    match net::sockopt::socket_domain(fd).map_err(|e| format!("not a socket: {}", os(e)))? {
        AddressFamily::UNIX => Ok(ListenerKind::Unix),
        AddressFamily::INET | AddressFamily::INET6 => Ok(ListenerKind::Tcp),
        _ => Err(String::from("a socket of an unsupported address family")),
    }
}

/// Listens on the unix socket `path` without a window in which the path exists but does
/// not accept: binds `<path>.sealgate-new`, listens, then renames it over `path` (a
/// stale socket there is replaced). Non-blocking, close-on-exec.
pub fn unix_listener(path: &str) -> Result<OwnedFd, String> {
    let tmp = format!("{path}.sealgate-new");
    let _ = rustix::fs::unlink(tmp.as_str());
    let fd = net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )
    .map_err(|e| format!("cannot create a unix socket: {}", os(e)))?;
    let addr = SocketAddrUnix::new(tmp.as_str())
        .map_err(|e| format!("invalid socket path {path}: {}", os(e)))?;
    net::bind(&fd, &addr).map_err(|e| format!("cannot bind {tmp}: {}", os(e)))?;
    let result = net::listen(&fd, 128)
        .map_err(|e| format!("cannot listen on {tmp}: {}", os(e)))
        .and_then(|()| {
            rustix::fs::rename(tmp.as_str(), path)
                .map_err(|e| format!("cannot rename {tmp} to {path}: {}", os(e)))
        });
    if let Err(e) = result {
        let _ = rustix::fs::unlink(tmp.as_str());
        return Err(e);
    }
    Ok(fd)
}

/// Listens on TCP `addr` (`SO_REUSEADDR`), non-blocking, close-on-exec.
pub fn tcp_listener(addr: SocketAddr) -> Result<OwnedFd, String> {
    let family = if addr.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let fd = net::socket_with(
        family,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )
    .map_err(|e| format!("cannot create a TCP socket: {}", os(e)))?;
    net::sockopt::set_socket_reuseaddr(&fd, true)
        .map_err(|e| format!("cannot set SO_REUSEADDR: {}", os(e)))?;
    net::bind(&fd, &addr).map_err(|e| format!("cannot bind {addr}: {}", os(e)))?;
    net::listen(&fd, 128).map_err(|e| format!("cannot listen on {addr}: {}", os(e)))?;
    Ok(fd)
}

/// Who is at the other end of an accepted connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// A unix-socket peer's credentials at connect time.
    Unix {
        /// User id.
        uid: u32,
        /// Process id.
        pid: i32,
    },
    /// A TCP peer's address.
    Tcp(SocketAddr),
}

/// Accepts one connection (non-blocking, close-on-exec); `Ok(None)` when none is waiting.
/// Transient per-connection failures (the peer gave up before the accept) are `Ok(None)`.
pub fn accept(
    listener: BorrowedFd<'_>,
    kind: ListenerKind,
) -> Result<Option<(OwnedFd, Peer)>, Errno> {
    let flags = SocketFlags::CLOEXEC | SocketFlags::NONBLOCK;
    let (fd, addr) = match net::acceptfrom_with(listener, flags) {
        Ok(x) => x,
        Err(Errno::AGAIN | Errno::INTR | Errno::CONNABORTED | Errno::PROTO) => return Ok(None),
        Err(e) => return Err(e),
    };
    let peer = match kind {
        ListenerKind::Unix => {
            let cred = net::sockopt::socket_peercred(&fd)?;
            Peer::Unix {
                uid: cred.uid.as_raw(),
                pid: cred.pid.as_raw_nonzero().get(),
            }
        }
        ListenerKind::Tcp => match addr.and_then(|a| SocketAddr::try_from(a).ok()) {
            Some(a) => Peer::Tcp(a),
            None => return Ok(None),
        },
    };
    Ok(Some((fd, peer)))
}

/// The outcome of a non-blocking read.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// This many bytes.
    Data(usize),
    /// Nothing now.
    WouldBlock,
    /// The peer closed (or reset) the connection.
    Closed,
}

/// Reads from a non-blocking socket. Any descriptors passed along with the bytes
/// (`SCM_RIGHTS`) are appended to `fds` (at most `max_fds` kept: extra ones are closed).
pub fn recv(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
    max_fds: usize,
) -> ReadOutcome {
    let mut space = [core::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut iov = [IoSliceMut::new(buf)];
    match net::recvmsg(fd, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) {
        Ok(m) => {
            for msg in control.drain() {
                if let RecvAncillaryMessage::ScmRights(received) = msg {
                    for f in received {
                        if fds.len() < max_fds {
                            fds.push(f);
                        }
                    }
                }
            }
            if m.bytes == 0 {
                ReadOutcome::Closed
            } else {
                ReadOutcome::Data(m.bytes)
            }
        }
        Err(Errno::AGAIN | Errno::INTR) => ReadOutcome::WouldBlock,
        Err(_) => ReadOutcome::Closed,
    }
}

/// Writes to a non-blocking socket (never raising SIGPIPE): `Ok(0)` when it would block.
pub fn send(fd: BorrowedFd<'_>, data: &[u8]) -> Result<usize, Errno> {
    match net::send(fd, data, SendFlags::NOSIGNAL) {
        Ok(n) => Ok(n),
        Err(Errno::AGAIN | Errno::INTR) => Ok(0),
        Err(e) => Err(e),
    }
}

/// Sends `data` with `passed` attached (`SCM_RIGHTS`) on a blocking unix socket; all of
/// `data` or an error.
pub fn send_with_fd(
    sock: BorrowedFd<'_>,
    data: &[u8],
    passed: BorrowedFd<'_>,
) -> Result<(), Errno> {
    let mut space = [core::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [passed];
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(Errno::NOBUFS);
    }
    let n = net::sendmsg(
        sock,
        &[IoSlice::new(data)],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    if n < data.len() {
        write_all(sock, &data[n..])?;
    }
    Ok(())
}

/// Writes all of `data` to a blocking socket.
pub fn write_all(sock: BorrowedFd<'_>, mut data: &[u8]) -> Result<(), Errno> {
    while !data.is_empty() {
        match net::send(sock, data, SendFlags::NOSIGNAL) {
            Ok(0) => return Err(Errno::PIPE),
            Ok(n) => data = &data[n..],
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads from a blocking socket: the byte count (0 at end of stream).
pub fn read_blocking(sock: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        match net::recv(sock, &mut *buf, RecvFlags::empty()) {
            Ok((n, _)) => return Ok(n),
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Connects a blocking unix stream socket to `path` (close-on-exec).
pub fn connect_unix(path: &str) -> Result<OwnedFd, String> {
    let fd = net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| format!("cannot create a unix socket: {}", os(e)))?;
    let addr =
        SocketAddrUnix::new(path).map_err(|e| format!("invalid socket path {path}: {}", os(e)))?;
    net::connect(&fd, &addr).map_err(|e| format!("cannot connect to {path}: {}", os(e)))?;
    Ok(fd)
}

/// The credentials of the peer of a connected unix socket: (uid, pid).
pub fn peer_of(sock: impl AsFd) -> Result<(u32, i32), Errno> {
    let c = net::sockopt::socket_peercred(sock)?;
    Ok((c.uid.as_raw(), c.pid.as_raw_nonzero().get()))
}

/// This process's effective uid.
pub fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("sealgate-event-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn unix_listener_accept_peer_cred_and_fd_passing() {
        let d = tmpdir("unix");
        let path = d.join("s.sock");
        let path = path.to_str().unwrap();
        let l = unix_listener(path).unwrap();
        assert!(!d.join("s.sock.sealgate-new").exists());
        assert_eq!(listener_kind(l.as_fd()).unwrap(), ListenerKind::Unix);
        let poller = Poller::new().unwrap();
        poller.add(l.as_fd(), 1, false).unwrap();
        assert_eq!(accept(l.as_fd(), ListenerKind::Unix).unwrap(), None);
        let c = connect_unix(path).unwrap();
        let mut ready = Vec::with_capacity(8);
        poller.wait(&mut ready, Some(10_000)).unwrap();
        assert_eq!(ready[0].token, 1);
        let (server, peer) = accept(l.as_fd(), ListenerKind::Unix).unwrap().unwrap();
        assert_eq!(
            peer,
            Peer::Unix {
                uid: euid(),
                pid: std::process::id() as i32
            }
        );
        // Pass a TCP listener over the connection, with bytes.
        let tcp = tcp_listener("127.0.0.1:0".parse().unwrap()).unwrap();
        send_with_fd(c.as_fd(), b"hello", tcp.as_fd()).unwrap();
        let mut buf = [0u8; 16];
        let mut fds = Vec::new();
        let mut got = ReadOutcome::WouldBlock;
        for _ in 0..1000 {
            got = recv(server.as_fd(), &mut buf, &mut fds, 1);
            if got != ReadOutcome::WouldBlock {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(got, ReadOutcome::Data(5));
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(fds.len(), 1);
        assert_eq!(listener_kind(fds[0].as_fd()).unwrap(), ListenerKind::Tcp);
        assert!(listener_kind(c.as_fd()).is_err());
        drop(c);
        let mut got = ReadOutcome::WouldBlock;
        for _ in 0..1000 {
            got = recv(server.as_fd(), &mut buf, &mut fds, 1);
            if got != ReadOutcome::WouldBlock {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(got, ReadOutcome::Closed);
        let _ = std::fs::remove_dir_all(&d);
    }
}
