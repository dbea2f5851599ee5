//! Socket options for BGP transport: RFC 2385 TCP-MD5, RFC 5082 GTSM, eBGP-multihop TTL, and the
//! listener / active-connect sockets that carry them (Linux).
//!
//! Owns: every `setsockopt`/`getsockopt` the speaker needs, and the crate's only `unsafe` (the
//! libc FFI for `TCP_MD5SIG`, `IP_MINTTL`, `IPV6_MINHOPCOUNT`, and one `mallopt` at start-up,
//! `limit_malloc_arenas`). Must not: protocol logic — which peer gets which key, hop count or TTL
//! is decided by the caller.
//!
//! Dual stack: a `[::]` listener also accepts IPv4 peers as `::ffff:a.b.c.d`, so on an IPv6 socket
//! an IPv4 peer's MD5 key is keyed by the IPv4-mapped address, and GTSM/TTL set the IPv4 options
//! as well as the IPv6 ones (the kernel checks `IP_MINTTL` for IPv4 segments on an IPv6 socket).

#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // runtime/: the clock, tasks and sockets live here
#![allow(unsafe_code)]

use std::ffi::c_int;
use std::io;
use std::mem::{offset_of, size_of};
use std::net::{IpAddr, SocketAddr};
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
