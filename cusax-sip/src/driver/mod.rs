//! The tokio driver: UDP, TCP and TLS transports, DNS (RFC 3263), timers.
//!
//! The protocol core is sans-IO; this module owns the sockets and the clock. It has two
//! parts that a sans-IO object plugs into:
//!
//! - [`Transports`]: the sockets. [`Transports::recv`] yields the next [`Input`]
//!   (a received message or a transport failure; cancel-safe, so it can sit in a
//!   `tokio::select!` next to an application command channel) and
//!   [`Transports::send`] sends a [`Transmit`] (UDP at once; TCP/TLS through a
//!   per-connection task that connects on first use and is reused, keyed by the remote
//!   address).
//! - [`SansIo`]: the four calls the driver needs from a core (`handle_input`,
//!   `poll_transmit`, `poll_timeout`, `handle_timeout`). [`TransactionLayer`]
//!   implements it; so can the endpoint. [`run`] is the complete loop for a core that
//!   needs no other input; [`step`] is one turn of it for loops that also `select!` on
//!   commands:
//!
//! ```text
//!   loop {
//!       flush(core.poll_transmit() → transports.send)
//!       select! {
//!           input = transports.recv()            => core.handle_input(now, input),
//!           _ = sleep_until(core.poll_timeout()) => core.handle_timeout(now),
//!           cmd = app_commands.recv()            => core.<command>(now, ..),   // endpoint
//!       }
//!   }
//! ```
//!
//! Stream transports are framed with [`crate::msg::framing::RawSipCodec`] (RFC 3261 §18.3
//! Content-Length framing, RFC 5626 §3.5.1 CRLF keep-alives: we answer pings, and ping
//! the connections we open every [`TransportConfig::keepalive_interval`]; a peer that
//! answered pings before and stops answering fails the connection, see
//! [`TransportConfig::keepalive_pong_timeout`]). Every TCP socket has
//! `TCP_NODELAY` set. TLS uses rustls with the *ring* provider and is on by default
//! ([`TransportConfig::default`]); the trust anchors come from a PEM CA file or from the
//! Mozilla roots (`webpki-roots`). The SNI / name checked is chosen per connection
//! target (RFC 5922 §7.2: the domain the target was resolved for) with
//! [`Transports::send_named`] (the endpoint's [`crate::endpoint::Endpoint::tls_server_name`]),
//! else [`TlsConfig::server_name`], else the target's IP address. Each established TLS
//! connection is reported once as [`Input::Connected`] with its protocol version,
//! cipher suite and verified name. A UA normally connects to its proxy and reuses that
//! connection (RFC 5923); with [`TransportConfig::tls_listen`] it also accepts TLS
//! connections, presenting the configured certificate (each reported as
//! [`Input::Connected`], with `peer_verified` false: no client certificate is asked for).
//!
//! Server location (RFC 3263) lives in [`resolve`].

pub mod resolve;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::codec::Framed;

use crate::endpoint::{TlsInfo, TransportFailure};
use crate::msg::framing::{FramingError, RawFrame, RawSipCodec};
use crate::transaction::{Target, TransactionLayer, Transmit, Transport};

/// What the transports deliver to the sans-IO core.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Input {
    /// One SIP message (a UDP datagram or a framed stream message).
    Receive {
        /// The message bytes.
        data: Bytes,
        /// The remote address.
        source: SocketAddr,
        /// The transport it came over.
        transport: Transport,
    },
    /// Sending to `target` failed, or its connection broke (RFC 3261 §18.4).
    TransportError {
        /// The remote end.
        target: Target,
        /// Why, typed (a refused certificate, a refused connection, a timeout, ...);
        /// its `Display` keeps what the operating system or TLS said.
        reason: TransportFailure,
    },
    /// A TLS connection to `target` completed its handshake (the peer's certificate
    /// chain and name were verified): what the application may show as signalling
    /// security (RFC 7081 §7).
    Connected {
        /// The remote end.
        target: Target,
        /// The negotiated parameters.
        tls: TlsInfo,
    },
}

/// The calls a driver needs from a sans-IO core.
pub trait SansIo {
    /// Feeds one input at `now`.
    fn handle_input(&mut self, now: Instant, input: Input);
    /// The next message to send.
    fn poll_transmit(&mut self) -> Option<Transmit>;
    /// When [`handle_timeout`](Self::handle_timeout) is due.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Runs the timers due at `now`.
    fn handle_timeout(&mut self, now: Instant);
}

impl SansIo for TransactionLayer {
    fn handle_input(&mut self, now: Instant, input: Input) {
        match input {
            Input::Receive {
                data,
                source,
                transport,
            } => self.handle_datagram(now, data, source, transport),
            Input::TransportError { target, reason } => {
                self.handle_transport_error(now, &target, &reason.to_string())
            }
            Input::Connected { .. } => {}
        }
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        TransactionLayer::poll_transmit(self)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        TransactionLayer::poll_timeout(self)
    }

    fn handle_timeout(&mut self, now: Instant) {
        TransactionLayer::handle_timeout(self, now)
    }
}

/// Where the TLS trust anchors come from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrustAnchors {
    /// The Mozilla root program (`webpki-roots`).
    WebPki,
    /// Every certificate in this PEM file.
    PemFile(PathBuf),
}

/// Outgoing TLS settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// The fallback name sent as SNI and checked against the certificate when a send
    /// names none ([`Transports::send_named`] picks one per connection target, RFC 5922
    /// §7.2); `None` falls back to the target's IP address.
    pub server_name: Option<String>,
    /// The trust anchors.
    pub trust: TrustAnchors,
}

impl Default for TlsConfig {
    /// The Mozilla roots, names chosen per connection.
    fn default() -> Self {
        Self {
            server_name: None,
            trust: TrustAnchors::WebPki,
        }
    }
}

impl TlsConfig {
    /// Trust the CA certificates of a PEM file (a private CA), names chosen per
    /// connection.
    pub fn with_ca_file(path: impl Into<PathBuf>) -> Self {
        Self {
            server_name: None,
            trust: TrustAnchors::PemFile(path.into()),
        }
    }
}

/// Which sockets to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportConfig {
    /// Bind one UDP socket here (port 0 for an ephemeral port).
    pub udp: Option<SocketAddr>,
    /// Accept TCP connections here.
    pub tcp_listen: Option<SocketAddr>,
    /// Accept TLS connections here, with this certificate (`None` by default: a UA
    /// reaches its proxy over its own outgoing connection, RFC 5923; a UA that must be
    /// reachable over TLS without one, or a server, listens).
    pub tls_listen: Option<TlsListenConfig>,
    /// Outgoing TLS (on by default with the Mozilla roots; `None` disables it).
    pub tls: Option<TlsConfig>,
    /// How long a TCP/TLS connect may take; also how long a send waits for room in a
    /// full connection queue before the target fails.
    pub connect_timeout: Duration,
    /// Messages queued per connection before sends wait for the connection to write.
    pub connection_queue: usize,
    /// RFC 5626 §3.5.1 / §4.4.1 keep-alives on the TCP and TLS connections we open (to
    /// the registrar or proxy, whose connection carries our incoming requests): a
    /// CRLFCRLF ping this often (each gap a random 80–100 % of it, RFC 5626 §4.4.1), which
    /// keeps NAT and firewall bindings open. `Some(90 s)`
    /// by default (PJSIP's figure; RFC 5626 suggests 95–120 s); `None` (or zero) sends
    /// none.
    pub keepalive_interval: Option<Duration>,
    /// Once a peer has answered two pings with a CRLF pong within this time (it does RFC
    /// 5626 keep-alives), a later ping left unanswered this long means the connection
    /// is dead (a NAT
    /// binding lost, a peer gone without a FIN): it is closed and reported as
    /// [`TransportFailure::ConnectionClosed`], so the endpoint re-registers at once
    /// instead of staying unreachable until the next refresh. 10 s by default (RFC 5626
    /// §4.4.1). A peer that never answered pings is never failed for lack of a pong (an
    /// unsolicited CRLF counts for nothing); zero never fails one.
    pub keepalive_pong_timeout: Duration,
}

/// An incoming TLS listener: where, and the certificate it presents (RFC 5922 §7.1: one
/// valid for the SIP domain the peers connect to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsListenConfig {
    /// The address to listen on (port 0 for an ephemeral port).
    pub addr: SocketAddr,
    /// A PEM file with the certificate chain, leaf first.
    pub cert_chain: PathBuf,
    /// A PEM file with the leaf's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The keep-alive settings of one outgoing stream connection.
#[derive(Debug, Clone, Copy)]
struct KeepAlive {
    interval: Duration,
    pong_timeout: Duration,
}

impl Default for TransportConfig {
    /// Outgoing TLS only (security by default); no plain socket.
    fn default() -> Self {
        Self {
            udp: None,
            tcp_listen: None,
            tls_listen: None,
            tls: Some(TlsConfig::default()),
            connect_timeout: Duration::from_secs(10),
            connection_queue: 256,
            keepalive_interval: Some(Duration::from_secs(90)),
            keepalive_pong_timeout: Duration::from_secs(10),
        }
    }
}

impl TransportConfig {
    /// Only a plain UDP socket bound to `addr`, no TLS (an explicit opt-in to an
    /// insecure transport).
    pub fn udp(addr: SocketAddr) -> Self {
        Self {
            udp: Some(addr),
            tls: None,
            ..Self::default()
        }
    }

    /// Outgoing TLS trusting the CA certificates of a PEM file, no plain socket.
    pub fn tls_with_ca_file(path: impl Into<PathBuf>) -> Self {
        Self {
            tls: Some(TlsConfig::with_ca_file(path)),
            ..Self::default()
        }
    }
}

/// Why the transports could not be set up (local configuration at fault).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportSetupError {
    /// Binding a socket failed.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// The CA file could not be read or holds no certificate.
    #[error("cannot load trust anchors from {path}: {reason}")]
    TrustAnchors {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The TLS server name is not a valid DNS name or IP address.
    #[error("invalid TLS server name {0:?}")]
    ServerName(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// The listener's certificate chain or key could not be read or used.
    #[error("cannot load the TLS certificate or key from {path}: {reason}")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

type ConnMap = Arc<Mutex<HashMap<Target, mpsc::Sender<Bytes>>>>;

/// The TLS client configuration and the fallback server name.
type TlsSetup = (
    tokio_rustls::TlsConnector,
    Option<rustls_pki_types::ServerName<'static>>,
);

/// The sockets of one SIP endpoint. See the [module docs](self).
pub struct Transports {
    udp: Option<Arc<UdpSocket>>,
    tcp_local: Option<SocketAddr>,
    tls_local: Option<SocketAddr>,
    tls: Option<TlsSetup>,
    conns: ConnMap,
    input_tx: mpsc::Sender<Input>,
    input_rx: mpsc::Receiver<Input>,
    /// Send failures detected synchronously, delivered by [`recv`](Self::recv) before
    /// anything else: never dropped (at most one per [`send`](Self::send) call, so the
    /// caller's own sends bound it).
    failures: std::collections::VecDeque<Input>,
    buf: Vec<u8>,
    config: TransportConfig,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Transports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transports")
            .field("udp", &self.local_addr(Transport::Udp))
            .field("tcp", &self.tcp_local)
            .field("tls", &self.tls.is_some())
            .field("tls_listen", &self.tls_local)
            .finish()
    }
}

/// Upper bound on simultaneous stream connections (accepted ones beyond it are closed).
pub const MAX_CONNECTIONS: usize = 1024;

/// Upper bound on TLS handshakes in progress on a listener: connections beyond it are
/// closed at once (a peer opening sockets and never finishing the handshake holds at
/// most this many, each for at most the connect timeout).
pub const MAX_TLS_HANDSHAKES: usize = 64;

/// The largest UDP datagram we read (RFC 3261 §18.1.1 allows up to 65 535 bytes).
const MAX_DATAGRAM: usize = 65_535;

impl Transports {
    /// Opens the configured sockets. Must run inside a tokio runtime.
    pub async fn bind(config: TransportConfig) -> Result<Self, TransportSetupError> {
        let udp = match config.udp {
            Some(addr) => {
                Some(Arc::new(UdpSocket::bind(addr).await.map_err(|source| {
                    TransportSetupError::Bind { addr, source }
                })?))
            }
            None => None,
        };
        let tls = match &config.tls {
            Some(tls) => Some(tls_connector(tls)?),
            None => None,
        };
        let (input_tx, input_rx) = mpsc::channel(1024);
        let conns: ConnMap = Arc::default();
        let mut tasks = Vec::new();
        let mut tcp_local = None;
        if let Some(addr) = config.tcp_listen {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| TransportSetupError::Bind { addr, source })?;
            tcp_local = listener.local_addr().ok();
            let conns = conns.clone();
            let input_tx = input_tx.clone();
            let queue = config.connection_queue;
            tasks.push(tokio::spawn(async move {
                accept_loop(listener, conns, input_tx, queue, None).await;
            }));
        }
        let mut tls_local = None;
        if let Some(listen) = &config.tls_listen {
            let acceptor = tls_acceptor(listen)?;
            let addr = listen.addr;
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| TransportSetupError::Bind { addr, source })?;
            tls_local = listener.local_addr().ok();
            let conns = conns.clone();
            let input_tx = input_tx.clone();
            let queue = config.connection_queue;
            let handshake = config.connect_timeout;
            tasks.push(tokio::spawn(async move {
                accept_loop(
                    listener,
                    conns,
                    input_tx,
                    queue,
                    Some((acceptor, handshake)),
                )
                .await;
            }));
        }
        Ok(Self {
            udp,
            tcp_local,
            tls_local,
            tls,
            conns,
            input_tx,
            input_rx,
            failures: std::collections::VecDeque::new(),
            buf: vec![0; MAX_DATAGRAM],
            config,
            tasks,
        })
    }

    /// The local address of a transport's socket (UDP socket or TCP listener).
    pub fn local_addr(&self, transport: Transport) -> Option<SocketAddr> {
        match transport {
            Transport::Udp => self.udp.as_ref().and_then(|s| s.local_addr().ok()),
            Transport::Tcp => self.tcp_local,
            Transport::Tls => self.tls_local,
        }
    }

    /// The next received message or transport failure. Cancel-safe.
    pub async fn recv(&mut self) -> Input {
        if let Some(failure) = self.failures.pop_front() {
            return failure;
        }
        loop {
            let udp = self.udp.clone();
            tokio::select! {
                r = async {
                    match &udp {
                        Some(s) => s.recv_from(&mut self.buf).await,
                        None => std::future::pending().await,
                    }
                } => match r {
                    Ok((n, source)) => {
                        let data = Bytes::copy_from_slice(self.buf.get(..n).unwrap_or_default());
                        return Input::Receive { data, source, transport: Transport::Udp };
                    }
                    Err(e) => {
                        // ICMP port unreachable shows up here on some systems; the
                        // socket stays usable.
                        tracing::debug!(error = %e, "UDP receive error");
                        continue;
                    }
                },
                Some(input) = self.input_rx.recv() => return input,
            }
        }
    }

    /// Sends one message. UDP datagrams go out at once; TCP/TLS messages are queued on
    /// the connection to the target, which is opened on first use; when its queue is
    /// full this waits (at most [`TransportConfig::connect_timeout`]) for the connection
    /// to write, so a burst is slowed down, not dropped. Failures come back later as
    /// [`Input::TransportError`] from [`recv`](Self::recv).
    pub async fn send(&mut self, transmit: Transmit) {
        self.send_named(transmit, None).await;
    }

    /// Like [`send`](Self::send); a new TLS connection authenticates `server_name`
    /// (RFC 5922 §7.2: the domain the target stands for), else
    /// [`TlsConfig::server_name`], else the target's IP address. An open connection to
    /// the target is reused whatever the name.
    pub async fn send_named(&mut self, transmit: Transmit, server_name: Option<String>) {
        let Transmit { target, data } = transmit;
        match target.transport {
            Transport::Udp => {
                let Some(udp) = &self.udp else {
                    self.fail(target, "no UDP socket configured");
                    return;
                };
                if let Err(e) = udp.send_to(&data, target.addr).await {
                    tracing::debug!(%target, error = %e, "UDP send failed");
                    self.fail(target, classify(&e));
                }
            }
            Transport::Tcp | Transport::Tls => self.send_stream(target, data, server_name).await,
        }
    }

    fn fail(&mut self, target: Target, reason: impl Into<TransportFailure>) {
        self.failures.push_back(Input::TransportError {
            target,
            reason: reason.into(),
        });
    }

    async fn send_stream(&mut self, target: Target, data: Bytes, server_name: Option<String>) {
        let existing = {
            let map = self.conns.lock().unwrap_or_else(|p| p.into_inner());
            map.get(&target).filter(|s| !s.is_closed()).cloned()
        };
        if let Some(sender) = existing {
            match sender.try_send(data) {
                Ok(()) => {}
                // A burst: wait for the connection to write (the peer's TCP flow control
                // reaches the core), but not forever: a peer that stopped reading fails
                // the target instead of stalling every other target.
                Err(mpsc::error::TrySendError::Full(data)) => {
                    let wait = tokio::time::timeout(self.config.connect_timeout, sender.send(data));
                    match wait.await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => self.fail(target, closed()),
                        Err(_) => self.fail(
                            target,
                            "connection send queue stayed full: the peer does not read",
                        ),
                    }
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.fail(target, closed());
                }
            }
            return;
        }
        let name = match target.transport {
            Transport::Tls => match tls_name(self.tls.as_ref(), server_name, target) {
                Ok(n) => Some(n),
                Err(reason) => {
                    self.fail(target, reason);
                    return;
                }
            },
            _ => None,
        };
        let (tx, rx) = mpsc::channel(self.config.connection_queue);
        // The queue is empty, so the first message always fits.
        let _ = tx.try_send(data);
        self.conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(target, tx);
        let input_tx = self.input_tx.clone();
        let connector = self.tls.as_ref().map(|(c, _)| c.clone());
        let timeout = self.config.connect_timeout;
        let conns = self.conns.clone();
        let keepalive = self.config.keepalive_interval.map(|interval| KeepAlive {
            interval,
            pong_timeout: self.config.keepalive_pong_timeout,
        });
        tokio::spawn(async move {
            let result = tokio::time::timeout(timeout, connect(target, connector, name)).await;
            match result {
                Ok(Ok(Stream::Tcp(s))) => {
                    connection(s, target, rx, input_tx, conns, keepalive).await
                }
                Ok(Ok(Stream::Tls(s, info))) => {
                    // Reported before any message of the connection (same queue).
                    if input_tx
                        .send(Input::Connected { target, tls: info })
                        .await
                        .is_err()
                    {
                        return;
                    }
                    connection(*s, target, rx, input_tx, conns, keepalive).await
                }
                Ok(Err(e)) => {
                    forget(&conns, &target);
                    let _ = input_tx
                        .send(Input::TransportError {
                            target,
                            reason: classify(&e),
                        })
                        .await;
                }
                Err(_) => {
                    forget(&conns, &target);
                    let _ = input_tx
                        .send(Input::TransportError {
                            target,
                            reason: TransportFailure::Timeout,
                        })
                        .await;
                }
            }
        });
    }

    /// Number of open stream connections.
    pub fn connection_count(&self) -> usize {
        self.conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|s| !s.is_closed())
            .count()
    }
}

impl Drop for Transports {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        // Dropping the senders ends every connection task.
        self.conns.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

fn forget(conns: &ConnMap, target: &Target) {
    let mut map = conns.lock().unwrap_or_else(|p| p.into_inner());
    if map.get(target).is_some_and(|s| s.is_closed()) {
        map.remove(target);
    }
}

enum Stream {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>, TlsInfo),
}

/// The name a new TLS connection to `target` authenticates: `explicit`, else the
/// configured fallback, else the target's IP address.
fn tls_name(
    tls: Option<&TlsSetup>,
    explicit: Option<String>,
    target: Target,
) -> Result<rustls_pki_types::ServerName<'static>, String> {
    let Some((_, fallback)) = tls else {
        return Err("TLS is not configured".into());
    };
    match (explicit, fallback) {
        (Some(n), _) => rustls_pki_types::ServerName::try_from(n.clone())
            .map_err(|_| format!("invalid TLS server name {n:?}")),
        (None, Some(f)) => Ok(f.clone()),
        (None, None) => Ok(rustls_pki_types::ServerName::IpAddress(
            target.addr.ip().into(),
        )),
    }
}

async fn connect(
    target: Target,
    connector: Option<tokio_rustls::TlsConnector>,
    name: Option<rustls_pki_types::ServerName<'static>>,
) -> io::Result<Stream> {
    let tcp = TcpStream::connect(target.addr).await?;
    tcp.set_nodelay(true)?;
    match target.transport {
        Transport::Tls => {
            let (Some(connector), Some(name)) = (connector, name) else {
                return Err(io::Error::other("TLS is not configured"));
            };
            let shown = name.to_str().into_owned();
            let s = connector.connect(name, tcp).await?;
            // rustls completes a client handshake only after the chain verified
            // against the trust anchors and the certificate matched the name.
            let info = tls_info(s.get_ref().1, true, Some(shown));
            Ok(Stream::Tls(Box::new(s), info))
        }
        _ => Ok(Stream::Tcp(tcp)),
    }
}

async fn accept_loop(
    listener: TcpListener,
    conns: ConnMap,
    input_tx: mpsc::Sender<Input>,
    queue: usize,
    tls: Option<(tokio_rustls::TlsAcceptor, Duration)>,
) {
    let transport = if tls.is_some() {
        Transport::Tls
    } else {
        Transport::Tcp
    };
    let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_TLS_HANDSHAKES));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(error = %e, "TCP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY failed");
        }
        let target = Target::new(transport, peer);
        {
            let mut map = conns.lock().unwrap_or_else(|p| p.into_inner());
            map.retain(|_, s| !s.is_closed());
            if map.len() >= MAX_CONNECTIONS {
                tracing::warn!(%target, "too many connections; refusing");
                continue;
            }
        }
        let input_tx = input_tx.clone();
        let conns = conns.clone();
        match &tls {
            None => {
                let Some(rx) = register(&conns, target, queue) else {
                    continue;
                };
                tracing::debug!(%target, "accepted connection");
                // Accepted connections: the peer keeps them alive (we answer its pings).
                tokio::spawn(connection(stream, target, rx, input_tx, conns, None));
            }
            Some((acceptor, handshake)) => {
                let (acceptor, handshake) = (acceptor.clone(), *handshake);
                let Ok(permit) = handshakes.clone().try_acquire_owned() else {
                    tracing::warn!(%target, "too many TLS handshakes in progress; refusing");
                    continue;
                };
                // The handshake runs on its own task: a slow or silent peer holds up
                // nobody else, and gives up after the connect timeout.
                tokio::spawn(async move {
                    let accepted = tokio::time::timeout(handshake, acceptor.accept(stream)).await;
                    drop(permit);
                    let s = match accepted {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%target, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%target, "TLS handshake timed out");
                            return;
                        }
                    };
                    let conn = s.get_ref().1;
                    // No client certificate is asked for: the peer is not authenticated
                    // by TLS (RFC 5922 §7.2 covers only the server). The name is the one
                    // the client asked for (SNI), i.e. ours.
                    let info = tls_info(conn, false, conn.server_name().map(str::to_owned));
                    let Some(rx) = register(&conns, target, queue) else {
                        return;
                    };
                    tracing::debug!(%target, "accepted TLS connection");
                    // Reported before any message of the connection (same queue).
                    if input_tx
                        .send(Input::Connected { target, tls: info })
                        .await
                        .is_err()
                    {
                        return;
                    }
                    connection(s, target, rx, input_tx, conns, None).await;
                });
            }
        }
    }
}

/// What a TLS connection negotiated.
fn tls_info(
    conn: &rustls::CommonState,
    peer_verified: bool,
    server_name: Option<String>,
) -> TlsInfo {
    TlsInfo {
        protocol_version: conn
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default(),
        cipher_suite: conn
            .negotiated_cipher_suite()
            .map(|c| format!("{:?}", c.suite()))
            .unwrap_or_default(),
        peer_verified,
        server_name,
    }
}

/// Files an accepted connection's send queue under `target` and returns its receiver;
/// `None` (the connection is to be closed) when [`MAX_CONNECTIONS`] are open.
fn register(conns: &ConnMap, target: Target, queue: usize) -> Option<mpsc::Receiver<Bytes>> {
    let mut map = conns.lock().unwrap_or_else(|p| p.into_inner());
    map.retain(|_, s| !s.is_closed());
    if map.len() >= MAX_CONNECTIONS {
        tracing::warn!(%target, "too many connections; refusing");
        return None;
    }
    let (tx, rx) = mpsc::channel(queue);
    map.insert(target, tx);
    Some(rx)
}

/// The server side of an incoming TLS listener.
fn tls_acceptor(
    listen: &TlsListenConfig,
) -> Result<tokio_rustls::TlsAcceptor, TransportSetupError> {
    let read = |path: &PathBuf| {
        std::fs::read(path).map_err(|e| TransportSetupError::Certificate {
            path: path.clone(),
            reason: e.to_string(),
        })
    };
    let chain_err = |reason: String| TransportSetupError::Certificate {
        path: listen.cert_chain.clone(),
        reason,
    };
    let pem = read(&listen.cert_chain)?;
    let chain = rustls_pemfile::certs(&mut io::BufReader::new(pem.as_slice()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| chain_err(e.to_string()))?;
    if chain.is_empty() {
        return Err(chain_err("no certificate in the file".into()));
    }
    let key_err = |reason: String| TransportSetupError::Certificate {
        path: listen.key.clone(),
        reason,
    };
    let pem = read(&listen.key)?;
    let key = rustls_pemfile::private_key(&mut io::BufReader::new(pem.as_slice()))
        .map_err(|e| key_err(e.to_string()))?
        .ok_or_else(|| key_err("no private key in the file".into()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportSetupError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| key_err(e.to_string()))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(server)))
}

/// The RFC 5626 §4.4.1 keep-alive of one connection we opened.
struct PingState {
    config: KeepAlive,
    /// When the timer fires next: the next ping, or the end of the wait for a pong.
    deadline: tokio::time::Instant,
    /// The ping sent last, while its pong is awaited.
    awaiting: Option<tokio::time::Instant>,
    /// Pongs that answered a ping within the pong timeout (counted up to
    /// [`PONGS_TO_TRUST`]).
    timely_pongs: u8,
}

/// Timely pongs after which the peer counts as doing RFC 5626 keep-alives, so that a
/// missing pong means a dead connection. More than one: a stray CRLF (some peers end a
/// message with an extra one) must not make a peer that never answers pings look like
/// one that stopped answering.
const PONGS_TO_TRUST: u8 = 2;

impl PingState {
    /// `None` for a zero interval (no pings).
    fn new(config: KeepAlive) -> Option<Self> {
        (!config.interval.is_zero()).then(|| Self {
            config,
            deadline: tokio::time::Instant::now() + jittered(config.interval),
            awaiting: None,
            timely_pongs: 0,
        })
    }

    /// Whether a missing pong fails the connection.
    fn peer_pongs(&self) -> bool {
        self.timely_pongs >= PONGS_TO_TRUST && !self.config.pong_timeout.is_zero()
    }

    /// The timer fired: `Ok` to send a ping now, `Err` when the awaited pong is
    /// overdue.
    fn fire(&mut self, now: tokio::time::Instant) -> Result<(), TransportFailure> {
        if self.awaiting.is_some() && self.peer_pongs() {
            return Err(TransportFailure::ConnectionClosed {
                detail: format!(
                    "no keep-alive pong within {:?} (RFC 5626 §4.4.1)",
                    self.config.pong_timeout
                ),
            });
        }
        self.awaiting = Some(now);
        self.deadline = now
            + if self.peer_pongs() {
                self.config.pong_timeout
            } else {
                jittered(self.config.interval)
            };
        Ok(())
    }

    /// A CRLF arrived between messages: the pong of our ping if one is awaited.
    fn pong(&mut self, now: tokio::time::Instant) {
        let Some(sent) = self.awaiting else {
            return; // unsolicited: proves nothing
        };
        if now.saturating_duration_since(sent) <= self.config.pong_timeout {
            self.timely_pongs = self.timely_pongs.saturating_add(1).min(PONGS_TO_TRUST);
        }
        self.awaiting = None;
        self.deadline = sent + jittered(self.config.interval);
    }
}

/// A random 80–100 % of `interval` (RFC 5626 §4.4.1), so that clients started together
/// do not ping together.
fn jittered(interval: Duration) -> Duration {
    use rand::Rng as _;
    interval.mul_f64(rand::rng().random_range(0.8..=1.0))
}

/// One stream connection: frames incoming messages to `input_tx`, writes queued
/// outgoing messages, sends keep-alive pings when `keepalive` is set, reports a broken
/// connection as a transport error.
async fn connection<S>(
    stream: S,
    target: Target,
    mut outgoing: mpsc::Receiver<Bytes>,
    input_tx: mpsc::Sender<Input>,
    conns: ConnMap,
    keepalive: Option<KeepAlive>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut ping = keepalive.and_then(PingState::new);
    let far = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
    let mut framed = Framed::new(stream, RawSipCodec::default());
    // A received message waiting for room in the input queue. Meanwhile no further
    // frame is read (TCP flow control holds the peer back) but outgoing messages are
    // still written: the core may be waiting for this very queue to drain.
    let mut pending: Option<Input> = None;
    let reason = loop {
        // Biased, in this order: hand a received message on; write what we owe the peer
        // (bounded: the core queues it); read; only then judge the keep-alive timer.
        tokio::select! {
            biased;
            permit = input_tx.reserve(), if pending.is_some() => match (permit, pending.take()) {
                (Ok(permit), Some(input)) => permit.send(input),
                (Err(_), _) => return, // the Transports were dropped
                (Ok(_), None) => {}
            },
            out = outgoing.recv() => match out {
                Some(data) => {
                    if let Err(e) = framed.send(data).await {
                        break classify(&e);
                    }
                }
                None => return, // the Transports were dropped
            },
            frame = framed.next(), if pending.is_none() => match frame {
                Some(Ok(RawFrame::Message(data))) => {
                    pending = Some(Input::Receive { data, source: target.addr, transport: target.transport });
                }
                Some(Ok(RawFrame::KeepAlivePing)) => {
                    // RFC 5626 §3.5.1: answer a CRLFCRLF ping with a CRLF pong.
                    if let Err(e) = framed.send(Bytes::from_static(b"\r\n")).await {
                        break classify(&e);
                    }
                }
                Some(Ok(RawFrame::KeepAlivePong)) => {
                    if let Some(p) = ping.as_mut() {
                        p.pong(tokio::time::Instant::now());
                    }
                }
                Some(Err(FramingError::Io(e))) => break classify(&e),
                Some(Err(e)) => break TransportFailure::Other(format!("framing error: {e}")),
                None => break TransportFailure::ConnectionClosed {
                    detail: "connection closed by peer".into(),
                },
            },
            // Last (biased): a pong already received is read before the pong timeout
            // is judged; and no judging while reads are paused for backpressure.
            () = tokio::time::sleep_until(ping.as_ref().map_or(far, |p| p.deadline)), if ping.is_some() && pending.is_none() => {
                let Some(p) = ping.as_mut() else { continue };
                match p.fire(tokio::time::Instant::now()) {
                    Ok(()) => {
                        tracing::trace!(%target, "keep-alive ping");
                        if let Err(e) = framed.send(Bytes::from_static(b"\r\n\r\n")).await {
                            break classify(&e);
                        }
                    }
                    Err(failure) => break failure,
                }
            }
        }
    };
    tracing::debug!(%target, %reason, "connection ended");
    outgoing.close();
    forget(&conns, &target);
    let _ = input_tx
        .send(Input::TransportError { target, reason })
        .await;
}

/// A connection that ended before a queued message could be handed to it.
fn closed() -> TransportFailure {
    TransportFailure::ConnectionClosed {
        detail: "connection closed".into(),
    }
}

/// The typed cause of a socket or TLS error: rustls errors (which tokio-rustls wraps
/// in an [`io::Error`]) by their certificate verdict, the rest by the error kind.
fn classify(e: &io::Error) -> TransportFailure {
    if let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        let detail = tls.to_string();
        return match tls {
            rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            ) => TransportFailure::CertificateNameMismatch { detail },
            rustls::Error::InvalidCertificate(_) => {
                TransportFailure::CertificateUntrusted { detail }
            }
            _ => TransportFailure::Tls { detail },
        };
    }
    match e.kind() {
        io::ErrorKind::ConnectionRefused => TransportFailure::ConnectionRefused,
        io::ErrorKind::TimedOut => TransportFailure::Timeout,
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => TransportFailure::ConnectionClosed {
            detail: e.to_string(),
        },
        _ => TransportFailure::Other(e.to_string()),
    }
}

fn tls_connector(config: &TlsConfig) -> Result<TlsSetup, TransportSetupError> {
    let mut roots = rustls::RootCertStore::empty();
    match &config.trust {
        TrustAnchors::WebPki => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        TrustAnchors::PemFile(path) => {
            let err = |reason: String| TransportSetupError::TrustAnchors {
                path: path.clone(),
                reason,
            };
            let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
            let mut reader = io::BufReader::new(pem.as_slice());
            let mut count = 0;
            for cert in rustls_pemfile::certs(&mut reader) {
                let cert = cert.map_err(|e| err(e.to_string()))?;
                roots.add(cert).map_err(|e| err(e.to_string()))?;
                count += 1;
            }
            if count == 0 {
                return Err(err("no certificate in the file".into()));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportSetupError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = match &config.server_name {
        Some(n) => Some(
            rustls_pki_types::ServerName::try_from(n.clone())
                .map_err(|_| TransportSetupError::ServerName(n.clone()))?,
        ),
        None => None,
    };
    Ok((tokio_rustls::TlsConnector::from(Arc::new(client)), name))
}

/// Flushes the core's transmits, then waits for one input or its next timeout and
/// feeds it. Cancel-safe between turns: dropping the future loses nothing.
pub async fn step<S: SansIo>(transports: &mut Transports, core: &mut S) {
    while let Some(t) = core.poll_transmit() {
        transports.send(t).await;
    }
    let deadline = core.poll_timeout();
    let sleep = async {
        match deadline {
            Some(at) => tokio::time::sleep_until(at.into()).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        input = transports.recv() => core.handle_input(Instant::now(), input),
        () = sleep => core.handle_timeout(Instant::now()),
    }
    while let Some(t) = core.poll_transmit() {
        transports.send(t).await;
    }
}

/// Runs `core` on `transports` until `stop` resolves.
pub async fn run<S: SansIo>(
    transports: &mut Transports,
    core: &mut S,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = step(transports, core) => {}
            () = &mut stop => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_gaps_are_80_to_100_percent_of_the_interval() {
        let interval = Duration::from_secs(90);
        let gaps: Vec<Duration> = (0..1000).map(|_| jittered(interval)).collect();
        assert!(
            gaps.iter()
                .all(|g| *g >= interval.mul_f64(0.8) && *g <= interval)
        );
        let (min, max) = (
            gaps.iter().min().copied().unwrap_or_default(),
            gaps.iter().max().copied().unwrap_or_default(),
        );
        // Spread over the range, not one value.
        assert!(
            min < interval.mul_f64(0.82) && max > interval.mul_f64(0.98),
            "{min:?}..{max:?}"
        );
    }
}
