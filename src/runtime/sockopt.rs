//! Socket options for BGP transport: RFC 2385 TCP-MD5, RFC 5082 GTSM, eBGP-multihop TTL, and the
//! listener / active-connect sockets that carry them (Linux); batched UDP I/O for the LISP
//! socket (`recvmmsg`/`sendmmsg`: one system call for up to `BATCH` datagrams each way).
//!
//! Owns: every `setsockopt`/`getsockopt` the speaker needs, and the crate's only `unsafe` (the
//! libc FFI for `TCP_MD5SIG`, `IP_MINTTL`, `IPV6_MINHOPCOUNT`, `recvmmsg`, `sendmmsg`, and one
//! `mallopt` at start-up, `limit_malloc_arenas`). Must not: protocol logic — which peer gets
//! which key, hop count or TTL is decided by the caller, what a datagram means by `lisp/`.
//!
//! Dual stack: a `[::]` listener also accepts IPv4 peers as `::ffff:a.b.c.d`, so on an IPv6 socket
//! an IPv4 peer's MD5 key is keyed by the IPv4-mapped address, and GTSM/TTL set the IPv4 options
//! as well as the IPv6 ones (the kernel checks `IP_MINTTL` for IPv4 segments on an IPv6 socket).

#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // runtime/: the clock, tasks and sockets live here
#![allow(unsafe_code)]

use std::ffi::c_int;
use std::io;
use std::mem::{offset_of, size_of};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// `TCP_MD5SIG_MAXKEYLEN` from linux/tcp.h.
pub const MD5_MAX_KEY_LEN: usize = libc::TCP_MD5SIG_MAXKEYLEN;

/// One glibc malloc arena for the whole daemon, unless `MALLOC_ARENA_MAX` is set (glibc reads
/// it itself). glibc gives each thread that allocates its own arena (up to 8 per core); freed
/// memory stays in the arena that held it, and the event loop, the connection tasks and the
/// dataplane task allocate on different tokio workers. Measured with the ingest benchmark
/// (`conformance/bench/ingest.sh`, RSS per route): 278 / 198 octets at 10k / 100k routes with
/// the default, 230 / 181 with one arena, ingest time unchanged within the run-to-run spread.
/// Small allocations keep their per-thread cache (tcache) either way. Call before any thread is
/// started. Returns whether the limit was set.
pub fn limit_malloc_arenas() -> bool {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return false;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only adjusts allocator parameters; M_ARENA_MAX with a positive value
        // is valid at any time, and no other thread exists yet.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// `struct __kernel_sockaddr_storage` (linux/socket.h): 128 bytes, pointer-aligned.
#[repr(C, align(8))]
struct KernelSockaddrStorage([u8; 128]);

/// `struct tcp_md5sig` (linux/tcp.h): addr, flags, prefixlen, keylen, `int` ifindex, key[80].
#[repr(C)]
struct TcpMd5Sig {
    tcpm_addr: KernelSockaddrStorage,
    tcpm_flags: u8,
    tcpm_prefixlen: u8,
    tcpm_keylen: u16,
    tcpm_ifindex: i32,
    tcpm_key: [u8; MD5_MAX_KEY_LEN],
}

// The kernel reads this struct by layout; pin it to the x86_64/aarch64 C layout of linux/tcp.h.
const _: () = {
    assert!(size_of::<TcpMd5Sig>() == 216);
    assert!(offset_of!(TcpMd5Sig, tcpm_flags) == 128);
    assert!(offset_of!(TcpMd5Sig, tcpm_keylen) == 130);
    assert!(offset_of!(TcpMd5Sig, tcpm_ifindex) == 132);
    assert!(offset_of!(TcpMd5Sig, tcpm_key) == 136);
};

/// RFC 2385 TCP MD5 signature for `peer` (an address; on a listener call once per configured
/// peer), key up to 80 octets (TCP_MD5SIG_MAXKEYLEN). Empty key removes it; removing a key that
/// is not there succeeds, so reconfiguration can be idempotent.
///
/// On an IPv6 socket an IPv4 `peer` is stored as its IPv4-mapped address. The key matches the
/// address only (flags 0, no prefix, no ifindex), so link-local scope ids are not distinguished.
pub fn set_tcp_md5(sock: &Socket, peer: IpAddr, key: &[u8]) -> io::Result<()> {
    if key.len() > MD5_MAX_KEY_LEN {
        return Err(invalid("TCP-MD5 key longer than 80 octets"));
    }
    let peer = match (sock.domain()?, peer) {
        (d, IpAddr::V4(v4)) if d == Domain::IPV6 => IpAddr::V6(v4.to_ipv6_mapped()),
        (d, IpAddr::V6(v6)) if d == Domain::IPV4 => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => return Err(invalid("IPv6 TCP-MD5 peer on an IPv4 socket")),
        },
        (_, ip) => ip,
    };
    let addr = SockAddr::from(SocketAddr::new(peer, 0));
    let mut sig = TcpMd5Sig {
        tcpm_addr: KernelSockaddrStorage([0; 128]),
        tcpm_flags: 0,
        tcpm_prefixlen: 0,
        tcpm_keylen: key.len() as u16, // <= 80, checked above
        tcpm_ifindex: 0,
        tcpm_key: [0; MD5_MAX_KEY_LEN],
    };
    let addr_len = addr.len() as usize; // sockaddr_in (16) or sockaddr_in6 (28), < 128
    // SAFETY: `as_ptr` points at socket2's sockaddr storage, of which the first `len()` bytes are
    // the initialised sockaddr_in/sockaddr_in6; `addr` outlives the borrow.
    let addr_bytes = unsafe { std::slice::from_raw_parts(addr.as_ptr().cast::<u8>(), addr_len) };
    sig.tcpm_addr.0[..addr_len].copy_from_slice(addr_bytes);
    sig.tcpm_key[..key.len()].copy_from_slice(key);
    match setsockopt(sock, libc::IPPROTO_TCP, libc::TCP_MD5SIG, &sig) {
        Err(e) if key.is_empty() && e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        r => r,
    }
}

/// RFC 5082 GTSM: send with TTL/hop limit 255 and drop anything arriving with
/// TTL < 255 - (hops - 1) (IP_MINTTL / IPV6_MINHOPCOUNT). hops = 1 for directly connected.
///
/// With `family_v6` the IPv4 options are set too, for IPv4-mapped peers on a dual-stack socket.
pub fn set_gtsm(sock: &Socket, family_v6: bool, hops: u8) -> io::Result<()> {
    if hops == 0 {
        return Err(invalid("GTSM hop count must be at least 1"));
    }
    let min = c_int::from(255 - (hops - 1));
    set_ttl(sock, family_v6, 255)?;
    setsockopt(sock, libc::IPPROTO_IP, libc::IP_MINTTL, &min)?;
    if family_v6 {
        setsockopt(sock, libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT, &min)?;
    }
    Ok(())
}

/// The minimum accepted TTL (`v6`: hop limit) set by [`set_gtsm`]; 0 when GTSM is off.
pub fn gtsm_min_ttl(sock: &Socket, v6: bool) -> io::Result<u8> {
    let (level, name) = if v6 {
        (libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT)
    } else {
        (libc::IPPROTO_IP, libc::IP_MINTTL)
    };
    let v = getsockopt_int(sock, level, name)?;
    u8::try_from(v).map_err(|_| io::Error::other("min TTL out of range"))
}

/// Outgoing TTL for eBGP multihop (IP_TTL / IPV6_UNICAST_HOPS). With `v6` both are set, so
/// IPv4-mapped peers on an IPv6 socket get the same TTL.
pub fn set_ttl(sock: &Socket, v6: bool, ttl: u8) -> io::Result<()> {
    sock.set_ttl_v4(u32::from(ttl))?;
    if v6 {
        sock.set_unicast_hops_v6(u32::from(ttl))?;
    }
    Ok(())
}

/// A BGP listener: SO_REUSEADDR, IPV6_V6ONLY off for `[::]`, bound, listening, nonblocking,
/// returned as tokio::net::TcpListener. MD5 keys added later via set_tcp_md5 on
/// `&socket2::SockRef::from(&listener)`. Must be called inside a tokio runtime.
pub fn bgp_listener(addr: SocketAddr) -> io::Result<tokio::net::TcpListener> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    if let SocketAddr::V6(a) = addr
        && a.ip().is_unspecified()
    {
        sock.set_only_v6(false)?;
    }
    sock.bind(&addr.into())?;
    sock.listen(128)?;
    sock.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(sock.into())
}

/// Options applied to an active connection before `connect` (see [`bgp_connect`]).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ConnectOpts {
    /// Source address to bind (port 0); must be the same family as the remote.
    pub local: Option<IpAddr>,
    /// TCP-MD5 key for the remote address.
    pub md5: Option<Vec<u8>>,
    /// GTSM hop count (sends TTL 255, requires 256 - hops on receive); exclusive with `ttl`.
    pub gtsm_hops: Option<u8>,
    /// Outgoing TTL (eBGP multihop); exclusive with `gtsm_hops`.
    pub ttl: Option<u8>,
}

impl std::fmt::Debug for ConnectOpts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectOpts")
            .field("local", &self.local)
            .field("md5", &self.md5.as_ref().map(|_| "<redacted>"))
            .field("gtsm_hops", &self.gtsm_hops)
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// An active connection attempt: optional bind to `local` (source address, port 0), options
/// applied BEFORE connect (md5 key for the remote address, gtsm hops or ttl), nonblocking connect
/// via tokio::net::TcpSocket, bounded by `timeout` (`ErrorKind::TimedOut` when it expires; a peer
/// dropping our SYNs for a bad MD5 key or a low TTL looks exactly like this).
pub async fn bgp_connect(
    remote: SocketAddr,
    opts: &ConnectOpts,
    timeout: Duration,
) -> io::Result<tokio::net::TcpStream> {
    if opts.gtsm_hops.is_some() && opts.ttl.is_some() {
        return Err(invalid("GTSM and a multihop TTL are exclusive"));
    }
    let v6 = remote.is_ipv6();
    let sock = Socket::new(
        Domain::for_address(remote),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    sock.set_nonblocking(true)?;
    if let Some(key) = &opts.md5 {
        set_tcp_md5(&sock, remote.ip(), key)?;
    }
    if let Some(hops) = opts.gtsm_hops {
        set_gtsm(&sock, v6, hops)?;
    }
    if let Some(ttl) = opts.ttl {
        set_ttl(&sock, v6, ttl)?;
    }
    if let Some(local) = opts.local {
        if local.is_ipv6() != v6 {
            return Err(invalid("local and remote address families differ"));
        }
        sock.bind(&SocketAddr::new(local, 0).into())?;
    }
    let sock = tokio::net::TcpSocket::from_std_stream(sock.into());
    match tokio::time::timeout(timeout, sock.connect(remote)).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "BGP connect timed out",
        )),
    }
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn setsockopt<T>(sock: &Socket, level: c_int, name: c_int, val: &T) -> io::Result<()> {
    let fd = sock.as_raw_fd();
    // SAFETY: `val` is a live, initialised `T` of exactly `size_of::<T>()` bytes that the kernel
    // only reads during the call; `fd` is owned by `sock`, borrowed for the duration.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (val as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn getsockopt_int(sock: &Socket, level: c_int, name: c_int) -> io::Result<c_int> {
    let fd = sock.as_raw_fd();
    let mut val: c_int = 0;
    let mut len = size_of::<c_int>() as libc::socklen_t;
    // SAFETY: `val` and `len` are live locals; the kernel writes at most `len` (= size of c_int)
    // bytes into `val` and updates `len`; `fd` is owned by `sock`, borrowed for the duration.
    let rc =
        unsafe { libc::getsockopt(fd, level, name, (&mut val as *mut c_int).cast(), &mut len) };
    if rc == 0 {
        Ok(val)
    } else {
        Err(io::Error::last_os_error())
    }
}

// ---------------------------------------------------------------------------------------------
// batched UDP I/O (the LISP socket)

/// Datagrams one `recv_batch` / `send_batch` call moves at most.
pub const BATCH: usize = 64;

/// Receive buffers for `recv_batch`: `BATCH` slots of `slot` octets each, and what the last
/// call received (length and sender per slot).
pub struct RecvBatch {
    buf: Vec<u8>,
    slot: usize,
    names: Vec<libc::sockaddr_storage>,
    got: Vec<(usize, Option<SocketAddr>)>,
}

impl RecvBatch {
    /// Buffers for datagrams of up to `slot` octets (longer ones are cut to `slot`).
    pub fn new(slot: usize) -> RecvBatch {
        let slot = slot.max(1);
        RecvBatch {
            buf: vec![0; slot * BATCH],
            slot,
            // SAFETY: sockaddr_storage is plain old data; all zeros is a valid value (AF_UNSPEC).
            names: vec![unsafe { std::mem::zeroed() }; BATCH],
            got: Vec::with_capacity(BATCH),
        }
    }

    /// Datagrams the last `recv_batch` received.
    pub fn len(&self) -> usize {
        self.got.len()
    }

    pub fn is_empty(&self) -> bool {
        self.got.is_empty()
    }

    /// Datagram `i` of the last `recv_batch`: its sender (`None` for an address family other
    /// than IPv4/IPv6) and its payload.
    pub fn get(&self, i: usize) -> Option<(Option<SocketAddr>, &[u8])> {
        let (len, from) = *self.got.get(i)?;
        let start = i * self.slot;
        Some((from, self.buf.get(start..start + len)?))
    }
}

/// `recvmmsg(2)` without blocking: up to `BATCH` datagrams from `sock` into `b` (see
/// `RecvBatch::get`). `WouldBlock` when none is queued (the caller's readiness is cleared by
/// tokio's `try_io` on that error).
pub fn recv_batch(sock: &impl AsRawFd, b: &mut RecvBatch) -> io::Result<usize> {
    b.got.clear();
    // SAFETY: iovec and mmsghdr are plain old data; all zeros (null pointers, zero lengths) is
    // valid, and every entry passed to the kernel is filled in below.
    let mut iovs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    let slot = b.slot;
    for ((iov, h), (chunk, name)) in iovs
        .iter_mut()
        .zip(hdrs.iter_mut())
        .zip(b.buf.chunks_exact_mut(slot).zip(b.names.iter_mut()))
    {
        iov.iov_base = chunk.as_mut_ptr().cast();
        iov.iov_len = slot;
        h.msg_hdr.msg_name = (name as *mut libc::sockaddr_storage).cast();
        h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        h.msg_hdr.msg_iov = iov;
        h.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: `hdrs` holds BATCH initialised headers, each pointing at its own `slot`-octet
    // chunk of `b.buf` and its own `sockaddr_storage` in `b.names`, all of which outlive the
    // call; the kernel writes at most `iov_len` / `msg_namelen` octets into them.
    let n = unsafe {
        libc::recvmmsg(
            sock.as_raw_fd(),
            hdrs.as_mut_ptr(),
            BATCH as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = usize::try_from(n).unwrap_or(0).min(BATCH);
    for (h, name) in hdrs.iter().zip(b.names.iter()).take(n) {
        let len = (h.msg_len as usize).min(slot);
        b.got.push((len, std_addr(name, h.msg_hdr.msg_namelen)));
    }
    Ok(n)
}

/// The address the kernel wrote into `ss` (`len` octets of it).
fn std_addr(ss: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match c_int::from(ss.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family is AF_INET and the kernel wrote a whole sockaddr_in; the
            // storage is larger than it and aligned for any sockaddr.
            let a = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for AF_INET6 and sockaddr_in6.
            let a = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// `sendmmsg(2)` without blocking: the first `BATCH` at most of `msgs` (destination, payload)
/// from `sock`; how many the kernel took. A datagram it refused is the error when it is the
/// first; after a partial send the caller resends from the first one not taken.
pub fn send_batch(sock: &impl AsRawFd, msgs: &[(SocketAddr, &[u8])]) -> io::Result<usize> {
    let n = msgs.len().min(BATCH);
    if n == 0 {
        return Ok(0);
    }
    let names: Vec<SockAddr> = msgs
        .iter()
        .take(n)
        .map(|(a, _)| SockAddr::from(*a))
        .collect();
    // SAFETY: as in `recv_batch`: plain old data, filled in below for the first `n`.
    let mut iovs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    for ((iov, h), ((_, data), name)) in iovs
        .iter_mut()
        .zip(hdrs.iter_mut())
        .zip(msgs.iter().zip(names.iter()))
    {
        // the kernel only reads through iov_base for a send
        iov.iov_base = data.as_ptr().cast_mut().cast();
        iov.iov_len = data.len();
        h.msg_hdr.msg_name = name.as_ptr().cast_mut().cast();
        h.msg_hdr.msg_namelen = name.len();
        h.msg_hdr.msg_iov = iov;
        h.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: the first `n` headers point at payloads in `msgs` and addresses in `names`, which
    // outlive the call; the kernel reads `iov_len` / `msg_namelen` octets from them.
    let rc = unsafe {
        libc::sendmmsg(
            sock.as_raw_fd(),
            hdrs.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(rc).unwrap_or(0))
}
