//! Listening sockets, opened the way RabbitMQ opens them: "every interface" is one IPv6 socket
//! on `[::]` that accepts IPv4 too (IPV6_V6ONLY switched off explicitly, not left to the
//! `net.ipv6.bindv6only` sysctl), or `0.0.0.0` with a warning where the host has no IPv6. An
//! address the user gave is bound exactly as given.
//!
//! Every listener of the binary binds through [`bind_listener`]: AMQP, AMQPS, the chat's HTTP
//! and HTTPS, management and Prometheus.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::str::FromStr;

use socket2::{Domain, Protocol, Socket, Type};

/// The backlog of every listener (tokio's and mio's default; std's is 128).
const BACKLOG: i32 = 1024;

/// Where a listener binds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    /// Every interface on this port: `[::]` accepting IPv4 too, or `0.0.0.0` where the host has
    /// no IPv6. Written as the port alone (`5672`), as `listeners.tcp.default = 5672` in
    /// rabbitmq.conf; shown as `[::]:5672`.
    Any(u16),
    /// An address (`127.0.0.1:5672`, `[::1]:5672`, `localhost:5672`), bound as given: no
    /// fallback.
    Given(String),
}

/// Why a [`ListenAddr`] does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ListenAddrError {
    #[error("{0:?} is not a port (0 to 65535)")]
    BadPort(String),
    #[error("{0:?} is not an address: expected ip:port, [ipv6]:port, host:port or a port alone")]
    NoPort(String),
}

impl FromStr for ListenAddr {
    type Err = ListenAddrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return text.parse().map(ListenAddr::Any).map_err(|_| ListenAddrError::BadPort(text.to_owned()));
        }
        let Some((host, port)) = text.rsplit_once(':') else {
            return Err(ListenAddrError::NoPort(text.to_owned()));
        };
        if host.is_empty() {
            return Err(ListenAddrError::NoPort(text.to_owned()));
        }
        port.parse::<u16>().map_err(|_| ListenAddrError::BadPort(port.to_owned()))?;
        Ok(ListenAddr::Given(text.to_owned()))
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Any(port) => write!(f, "[::]:{port}"),
            ListenAddr::Given(addr) => f.write_str(addr),
        }
    }
}

impl ListenAddr {
    /// The port it names.
    pub fn port(&self) -> Option<u16> {
        match self {
            ListenAddr::Any(port) => Some(*port),
            ListenAddr::Given(addr) => addr.rsplit_once(':')?.1.parse().ok(),
        }
    }

    /// The same interfaces on `port`.
    pub fn with_port(&self, port: u16) -> ListenAddr {
        match self {
            ListenAddr::Any(_) => ListenAddr::Any(port),
            ListenAddr::Given(addr) => {
                let host = addr.rsplit_once(':').map_or(addr.as_str(), |(host, _)| host);
                ListenAddr::Given(format!("{host}:{port}"))
            }
        }
    }

    /// `ip` on the same port.
    pub fn with_ip(&self, ip: IpAddr) -> ListenAddr {
        ListenAddr::Given(SocketAddr::new(ip, self.port().unwrap_or(0)).to_string())
    }
}

/// Why a listener could not be opened. The message is the reason alone: the caller says what
/// was to listen where ("cannot listen for AMQP on [::]:5672: ...").
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("cannot resolve {addr}: {source}")]
    Resolve { addr: String, source: io::Error },
    #[error("{addr} resolves to no address")]
    NoAddress { addr: String },
    #[error("binding {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
}

/// Open a listener on `addr` and register it with the tokio runtime (so: call it from inside
/// one).
pub fn bind_listener(addr: &ListenAddr) -> Result<tokio::net::TcpListener, ListenError> {
    let listener = bind_std(addr)?;
    let local = listener.local_addr().map_err(|source| ListenError::Resolve { addr: addr.to_string(), source })?;
    tokio::net::TcpListener::from_std(listener).map_err(|source| ListenError::Bind { addr: local, source })
}

/// Open a listener on `addr`: a non-blocking std listener, for servers that take those.
pub fn bind_std(addr: &ListenAddr) -> Result<std::net::TcpListener, ListenError> {
    bind_with(addr, listen_on)
}

/// [`bind_std`] with the socket calls given: `listen` binds one address.
fn bind_with<T>(addr: &ListenAddr, mut listen: impl FnMut(SocketAddr) -> io::Result<T>) -> Result<T, ListenError> {
    match addr {
        ListenAddr::Any(port) => {
            let v6 = SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), *port);
            match listen(v6) {
                Err(e) if no_ipv6(&e) => {
                    let v4 = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), *port);
                    tracing::warn!(error = %e, "no IPv6 on this host: listening on {v4} (IPv4 only) instead of {v6}");
                    listen(v4).map_err(|source| ListenError::Bind { addr: v4, source })
                }
                done => done.map_err(|source| ListenError::Bind { addr: v6, source }),
            }
        }
        ListenAddr::Given(text) => {
            let addrs = resolve(text)?;
            // The first address that binds, as std's and tokio's bind do.
            let mut failed = ListenError::NoAddress { addr: text.clone() };
            for addr in addrs {
                match listen(addr) {
                    Ok(listener) => return Ok(listener),
                    Err(source) => failed = ListenError::Bind { addr, source },
                }
            }
            Err(failed)
        }
    }
}

/// The addresses `text` names: `ip:port` and `[ipv6]:port` as they are, `host:port` looked up
/// (blocking: this runs at start-up).
fn resolve(text: &str) -> Result<Vec<SocketAddr>, ListenError> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(vec![addr]);
    }
    let addrs = text.to_socket_addrs().map_err(|source| ListenError::Resolve { addr: text.to_owned(), source })?;
    Ok(addrs.collect())
}

/// The errors binding `[::]` gives where the host has no IPv6: the family is not supported, or
/// there is no IPv6 address to bind.
fn no_ipv6(e: &io::Error) -> bool {
    use rustix::io::Errno;
    matches!(Errno::from_io_error(e), Some(Errno::AFNOSUPPORT | Errno::ADDRNOTAVAIL))
}

/// A listening socket on `addr`: IPv6 sockets accept IPv4 too, and the address can be bound
/// again at once after a restart (SO_REUSEADDR, as std and tokio set it).
fn listen_on(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_as_rabbitmq_writes_them() {
        assert_eq!("5672".parse(), Ok(ListenAddr::Any(5672)));
        assert_eq!(" 0 ".parse(), Ok(ListenAddr::Any(0)));
        assert_eq!("127.0.0.1:5672".parse(), Ok(ListenAddr::Given("127.0.0.1:5672".into())));
        assert_eq!("[::1]:5672".parse(), Ok(ListenAddr::Given("[::1]:5672".into())));
        assert_eq!("localhost:5672".parse(), Ok(ListenAddr::Given("localhost:5672".into())));
        assert_eq!("65536".parse::<ListenAddr>(), Err(ListenAddrError::BadPort("65536".into())));
        assert_eq!("host:http".parse::<ListenAddr>(), Err(ListenAddrError::BadPort("http".into())));
        assert!(matches!("localhost".parse::<ListenAddr>(), Err(ListenAddrError::NoPort(_))));
        assert!(matches!(":5672".parse::<ListenAddr>(), Err(ListenAddrError::NoPort(_))));
        assert!(matches!("".parse::<ListenAddr>(), Err(ListenAddrError::NoPort(_))));
        assert_eq!(ListenAddr::Any(5672).to_string(), "[::]:5672");
        assert_eq!(ListenAddr::Any(5672).port(), Some(5672));
        assert_eq!(ListenAddr::Given("[::1]:15672".into()).port(), Some(15672));
        let management = ListenAddr::Given("127.0.0.1:15672".into());
        assert_eq!(management.with_port(15673), ListenAddr::Given("127.0.0.1:15673".into()));
        assert_eq!(management.with_ip("::".parse().unwrap()), ListenAddr::Given("[::]:15672".into()));
        assert_eq!(ListenAddr::Any(15692).with_port(9419), ListenAddr::Any(9419));
        assert_eq!(ListenAddr::Any(15692).with_ip([0, 0, 0, 0].into()), ListenAddr::Given("0.0.0.0:15692".into()));
    }

    #[test]
    fn every_interface_is_ipv6_and_ipv4_on_one_socket() {
        let listener = bind_std(&ListenAddr::Any(0)).expect("bind [::]:0");
        let local = listener.local_addr().unwrap();
        if local.is_ipv4() {
            eprintln!("no IPv6 on this host: checked the IPv4 fallback only");
            assert!(local.ip().is_unspecified());
            std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, local.port())).expect("connect over IPv4");
            return;
        }
        assert_eq!(local.ip(), Ipv6Addr::UNSPECIFIED);
        assert!(!socket2::SockRef::from(&listener).only_v6().unwrap(), "IPV6_V6ONLY is off");
        std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, local.port())).expect("connect over IPv4");
        match std::net::TcpStream::connect((Ipv6Addr::LOCALHOST, local.port())) {
            Ok(_) => {}
            Err(e) => eprintln!("::1 is unreachable here ({e}): checked IPv4 only"),
        }
    }

    #[test]
    fn without_ipv6_every_interface_falls_back_to_ipv4() {
        let no_family = || io::Error::from_raw_os_error(rustix::io::Errno::AFNOSUPPORT.raw_os_error());
        let mut tried = Vec::new();
        let bound = bind_with(&ListenAddr::Any(5672), |addr| {
            tried.push(addr);
            if addr.is_ipv6() { Err(no_family()) } else { Ok(addr) }
        });
        assert_eq!(bound.unwrap(), "0.0.0.0:5672".parse().unwrap());
        assert_eq!(tried, ["[::]:5672".parse().unwrap(), "0.0.0.0:5672".parse().unwrap()]);

        // an address the user gave is bound as given, or not at all
        let given = ListenAddr::Given("[::]:5672".into());
        let failed = bind_with(&given, |addr| if addr.is_ipv6() { Err(no_family()) } else { Ok(addr) });
        assert!(matches!(failed, Err(ListenError::Bind { addr, .. }) if addr.is_ipv6()));

        // other errors (the port is taken) are not a reason to fall back
        let taken = bind_with(&ListenAddr::Any(5672), |addr| {
            if addr.is_ipv6() { Err(io::Error::from(io::ErrorKind::AddrInUse)) } else { Ok(addr) }
        });
        assert!(matches!(taken, Err(ListenError::Bind { addr, .. }) if addr.is_ipv6()));
    }

    #[test]
    fn a_taken_port_is_an_error_naming_the_address() {
        let first = bind_std(&ListenAddr::Given("127.0.0.1:0".into())).unwrap();
        let addr = first.local_addr().unwrap();
        let again = bind_std(&ListenAddr::Given(addr.to_string()));
        let text = again.expect_err("port taken").to_string();
        assert!(text.starts_with(&format!("binding {addr}: ")), "{text}");
    }
}
