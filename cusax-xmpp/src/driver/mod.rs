//! The tokio driver: TCP, STARTTLS and direct TLS (XEP-0368), SRV lookup, timers.
//!
//! [`Client::connect`] resolves the server (a static `host:port` override, else DNS SRV
//! (RFC 6120 §3.2.1, XEP-0368), else the domain on the default port, RFC 6120 §3.2.2),
//! connects TCP with `TCP_NODELAY`, and runs one task per connection that owns the socket,
//! the [`Session`] and its timer. TLS uses tokio-rustls with the PEM trust anchors given in
//! [`ClientConfig::ca_cert`] or the webpki roots; the server name is the JID's domain.
//! `connect` returns once the session is online.
//!
//! SRV policy:
//! - [`TlsMode::StartTlsRequired`]: `_xmpp-client._tcp` and `_xmpps-client._tcp` records
//!   are mixed into one list (XEP-0368 §3: "treated as the same record with regard to
//!   connection order"), ordered by priority and, within a priority, by RFC 2782's
//!   weighted random choice (clients spread over servers as the weights say;
//!   [`ClientConfig::srv_seed`] makes the order reproducible). An `_xmpps-client` target is
//!   connected with TLS from the first byte, an `_xmpp-client` one with STARTTLS; TLS is
//!   required either way.
//! - [`TlsMode::DirectTls`]: only `_xmpps-client._tcp` records.
//! - Each target's name is resolved (A/AAAA) with the same resolver; when a target refuses
//!   the TCP connection, the next address, then the next target is tried.
//! - No usable SRV record: the domain's own addresses on port 5222 (5223 for direct TLS).
//!
//! The resolver is the system's by default; [`ClientConfig::dns`] points it at given name
//! servers instead ([`DnsConfig::NameServers`]).
//!
//! A TLS client certificate ([`ClientConfig::client_cert`]) is presented on STARTTLS and
//! direct TLS alike and enables SASL EXTERNAL (XEP-0178).
//!
//! With stream management, a lost connection keeps the resumable state; call
//! [`Client::reconnect`] to open a new connection and resume (XEP-0198 §5). Events of all
//! connections arrive on the same [`EventStream`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_resolver::TokioResolver;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::sasl::{ChannelBinding, Mechanism};
use crate::session::{
    DisconnectedBy, Input, Output, Session, SessionConfig, SessionError, TlsInfo, TlsMode,
    XmppEvent,
};
use crate::sm::SmState;
use crate::xml::element::Element;

/// Driver configuration.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The protocol configuration.
    pub session: SessionConfig,
    /// `host:port` to connect to instead of resolving the domain.
    pub server: Option<String>,
    /// PEM file with the trust anchors; `None` uses the webpki roots.
    pub ca_cert: Option<PathBuf>,
    /// TLS client certificate presented on STARTTLS and direct TLS (RFC 8446 §4.4.2). When
    /// set, the session may authenticate with SASL EXTERNAL (XEP-0178): the driver sets
    /// [`SessionConfig::client_certificate`] and, if [`SessionConfig::mechanisms`] does not
    /// list EXTERNAL, puts it first. `None`: no certificate, EXTERNAL is never chosen.
    pub client_cert: Option<ClientCert>,
    /// Which DNS servers answer the SRV and A/AAAA queries.
    pub dns: DnsConfig,
    /// Bound on TCP connect + TLS handshake + negotiation.
    pub connect_timeout: Duration,
    /// Capacity of the command queue from [`Client`] to the connection task; a full queue
    /// makes [`Client::send`] fail with [`ClientError::QueueFull`] (stanza handed back).
    pub command_queue: usize,
    /// Capacity of the event queue to the [`EventStream`]; when the application does not
    /// read events, the connection task stops reading the socket (TCP back-pressure)
    /// instead of buffering without bound.
    pub event_queue: usize,
    /// Seed of the weighted random order of SRV records of equal priority (RFC 2782);
    /// `None` (the default) draws from the thread's random generator. For tests and
    /// reproducible diagnostics.
    pub srv_seed: Option<u64>,
}

impl ClientConfig {
    /// Defaults: resolve by SRV, webpki roots, 30 s connect timeout.
    pub fn new(session: SessionConfig) -> Self {
        ClientConfig {
            session,
            server: None,
            ca_cert: None,
            client_cert: None,
            dns: DnsConfig::System,
            connect_timeout: Duration::from_secs(30),
            command_queue: 256,
            event_queue: 1024,
            srv_seed: None,
        }
    }
}

/// Where DNS queries go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DnsConfig {
    /// The system configuration (`/etc/resolv.conf` and the hosts file).
    #[default]
    System,
    /// These name servers, over UDP, with no search domains (a split-horizon resolver or a
    /// test server).
    NameServers(Vec<SocketAddr>),
}

impl DnsConfig {
    fn resolver(&self) -> Result<TokioResolver, String> {
        match self {
            DnsConfig::System => Ok(TokioResolver::builder_tokio()
                .map_err(|e| e.to_string())?
                .build()),
            DnsConfig::NameServers(servers) => {
                use hickory_resolver::config::{NameServerConfig, ResolverConfig};
                use hickory_resolver::name_server::TokioConnectionProvider;
                use hickory_resolver::proto::xfer::Protocol;
                let group: Vec<NameServerConfig> = servers
                    .iter()
                    .map(|a| NameServerConfig::new(*a, Protocol::Udp))
                    .collect();
                let config = ResolverConfig::from_parts(None, Vec::new(), group);
                Ok(
                    TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
                        .build(),
                )
            }
        }
    }
}

/// A TLS client certificate chain (leaf first) and its private key.
#[derive(Clone)]
pub struct ClientCert {
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
}

impl std::fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCert")
            .field("chain_len", &self.chain.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

impl ClientCert {
    /// From DER: the chain, leaf first, and the leaf's private key (PKCS#8, PKCS#1 or SEC1).
    pub fn from_der(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Self {
        ClientCert {
            chain,
            key: Arc::new(key),
        }
    }

    /// From PEM files: `chain` holds the certificates (leaf first), `key` the private key.
    pub fn from_pem_files(chain: &Path, key: &Path) -> Result<Self, ConnectError> {
        let err = |path: &Path, reason: String| ConnectError::ClientCertificate {
            path: path.to_path_buf(),
            reason,
        };
        let pem = std::fs::read(chain).map_err(|e| err(chain, e.to_string()))?;
        let certs: Vec<CertificateDer<'static>> =
            rustls_pemfile::certs(&mut std::io::BufReader::new(&pem[..]))
                .collect::<Result<_, _>>()
                .map_err(|e| err(chain, e.to_string()))?;
        if certs.is_empty() {
            return Err(err(chain, "no certificate in the file".into()));
        }
        let pem = std::fs::read(key).map_err(|e| err(key, e.to_string()))?;
        let k = rustls_pemfile::private_key(&mut std::io::BufReader::new(&pem[..]))
            .map_err(|e| err(key, e.to_string()))?
            .ok_or_else(|| err(key, "no private key in the file".into()))?;
        Ok(Self::from_der(certs, k))
    }
}

/// Why a connection could not be established.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// DNS resolution failed.
    #[error("cannot resolve the XMPP server for {domain}: {reason}")]
    Resolve {
        /// The domain.
        domain: String,
        /// Details.
        reason: String,
    },
    /// TCP connect failed.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address tried.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The trust anchors file could not be read (configuration error).
    #[error("cannot load CA certificates from {path}: {reason}")]
    TrustAnchors {
        /// The path.
        path: PathBuf,
        /// Details.
        reason: String,
    },
    /// The client certificate or its key could not be loaded or used (configuration error).
    #[error("cannot use the client certificate {path}: {reason}")]
    ClientCertificate {
        /// The file (empty for in-memory DER).
        path: PathBuf,
        /// Details.
        reason: String,
    },
    /// The server's certificate does not verify for the domain against the trust anchors.
    #[error("TLS: the server certificate for {domain} is not trusted: {reason}")]
    CertificateUntrusted {
        /// The domain checked.
        domain: String,
        /// rustls' reason.
        reason: String,
    },
    /// Other TLS handshake failure.
    #[error("TLS handshake with {domain} failed: {reason}")]
    Tls {
        /// The domain.
        domain: String,
        /// Details.
        reason: String,
    },
    /// The server refused the credentials.
    #[error("authentication failed: {condition}")]
    AuthFailed {
        /// SASL condition (`not-authorized`, …).
        condition: String,
    },
    /// The session ended during negotiation.
    #[error("session ended during negotiation: {0}")]
    Session(#[from] SessionError),
    /// No negotiation result within [`ClientConfig::connect_timeout`].
    #[error("no session within {0:?}")]
    Timeout(Duration),
    /// [`Client::reconnect`] without a resumable state.
    #[error("nothing to resume: stream management was not enabled or the session was closed")]
    NothingToResume,
}

/// A command to the connection task failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The connection is gone (call [`Client::reconnect`] when it was resumable).
    #[error("not connected")]
    NotConnected,
    /// Our side: the command queue to the connection task is full
    /// ([`ClientConfig::command_queue`]), or, while disconnected, the resumable state
    /// already holds [`SmLimits::max_unacked`](crate::sm::SmLimits::max_unacked) stanzas.
    /// The stanza is handed back; retry later.
    #[error("send queue full; try again later")]
    QueueFull(Box<Element>),
}

#[derive(Default)]
struct Shared {
    /// Stanzas to the current connection task (bounded).
    cmd: Option<mpsc::Sender<Element>>,
    /// Close request to the current connection task (outside the bounded queue, so that
    /// `close` never waits behind it).
    closer: Option<watch::Sender<bool>>,
    /// Resumable state of the last connection (kept after it dropped).
    sm_state: Option<SmState>,
    login_time: Duration,
    /// The current connection task.
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Handle to the XMPP client; `&self` methods, usable from several tasks (wrap in an `Arc`).
pub struct Client {
    config: ClientConfig,
    events: mpsc::Sender<XmppEvent>,
    shared: Arc<Mutex<Shared>>,
    reconnecting: tokio::sync::Mutex<()>,
}

/// The application's receiving end for [`XmppEvent`]s.
pub struct EventStream {
    rx: mpsc::Receiver<XmppEvent>,
}

impl EventStream {
    /// The next event; `None` once the client and every connection task are gone.
    pub async fn next_event(&mut self) -> Option<XmppEvent> {
        self.rx.recv().await
    }
}

fn lock(m: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    // A panic while holding the lock leaves plain data behind; keep going.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Client {
    /// Connects, negotiates and returns once online. The `Online` event is also delivered
    /// on the [`EventStream`].
    pub async fn connect(config: ClientConfig) -> Result<(Client, EventStream), ConnectError> {
        let (etx, erx) = mpsc::channel(config.event_queue.max(1));
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (cmd_tx, cmd_rx) = mpsc::channel(config.command_queue.max(1));
        let (close_tx, close_rx) = watch::channel(false);
        {
            let mut sh = lock(&shared);
            sh.cmd = Some(cmd_tx);
            sh.closer = Some(close_tx);
        }
        start(
            &config,
            None,
            (cmd_rx, close_rx),
            etx.clone(),
            shared.clone(),
        )
        .await?;
        Ok((
            Client {
                config,
                events: etx,
                shared,
                reconnecting: tokio::sync::Mutex::new(()),
            },
            EventStream { rx: erx },
        ))
    }

    /// Time from the start of the TCP connect to `Online` (or `SmResumed`) of the last
    /// connection.
    pub fn login_time(&self) -> Duration {
        lock(&self.shared).login_time
    }

    /// Sends a stanza. Queued until online; while the connection is down but resumable,
    /// it joins the unacked queue and goes out after [`reconnect`](Self::reconnect).
    ///
    /// Never blocks and never grows without bound: a full command queue (or a full
    /// resumable state) returns [`ClientError::QueueFull`] with the stanza. What the
    /// session itself refuses later (pre-bind queue full, XEP-0198 back-pressure) arrives
    /// as [`XmppEvent::SendFailed`] holding the stanza.
    pub async fn send(&self, stanza: Element) -> Result<(), ClientError> {
        let mut sh = lock(&self.shared);
        let stanza = match &sh.cmd {
            Some(tx) => match tx.try_send(stanza) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::TrySendError::Full(el)) => {
                    return Err(ClientError::QueueFull(Box::new(el)));
                }
                Err(mpsc::error::TrySendError::Closed(el)) => el,
            },
            None => stanza,
        };
        let limit = self.config.session.sm_limits.max_unacked;
        match sh.sm_state.as_mut() {
            Some(st) if st.unacked.len() >= limit => Err(ClientError::QueueFull(Box::new(stanza))),
            Some(st) => {
                st.unacked.push(stanza);
                Ok(())
            }
            None => Err(ClientError::NotConnected),
        }
    }

    /// Closes the stream; a `Disconnected` event follows. Does not wait behind the
    /// command queue; stanzas queued before the call are still handed to the session
    /// first.
    pub async fn close(&self) -> Result<(), ClientError> {
        let sh = lock(&self.shared);
        match &sh.closer {
            Some(c) if !c.is_closed() => {
                c.send_replace(true);
                Ok(())
            }
            _ => Err(ClientError::NotConnected),
        }
    }

    /// The resumable XEP-0198 state of the last connection, once it dropped.
    pub fn sm_state(&self) -> Option<SmState> {
        lock(&self.shared).sm_state.clone()
    }

    /// Opens a new connection and resumes the stream (XEP-0198 §5) from the state the
    /// dropped connection left. If the server refuses resumption, unacked stanzas arrive
    /// as `Undelivered` and a new session is bound. Stanzas sent meanwhile are queued.
    pub async fn reconnect(&self) -> Result<(), ConnectError> {
        let _guard = self.reconnecting.lock().await;
        // Let the old connection task end and settle its state first.
        let old = {
            let mut sh = lock(&self.shared);
            if let Some(c) = &sh.closer {
                c.send_replace(true);
            }
            sh.task.take()
        };
        if let Some(mut h) = old
            && tokio::time::timeout(self.config.connect_timeout, &mut h)
                .await
                .is_err()
        {
            h.abort();
        }
        let (cmd_tx, cmd_rx) = mpsc::channel(self.config.command_queue.max(1));
        let (close_tx, close_rx) = watch::channel(false);
        let state = {
            let mut sh = lock(&self.shared);
            let state = sh.sm_state.take().ok_or(ConnectError::NothingToResume)?;
            sh.cmd = Some(cmd_tx);
            sh.closer = Some(close_tx);
            state
        };
        let r = start(
            &self.config,
            Some(state.clone()),
            (cmd_rx, close_rx),
            self.events.clone(),
            self.shared.clone(),
        )
        .await;
        if r.is_err() {
            let mut sh = lock(&self.shared);
            if sh.sm_state.is_none() {
                sh.sm_state = Some(state);
            }
        }
        r
    }
}

enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Gone,
}

impl Conn {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf).await,
            Conn::Tls(s) => s.read(buf).await,
            Conn::Gone => Ok(0),
        }
    }

    async fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.write_all(data).await,
            Conn::Tls(s) => {
                s.write_all(data).await?;
                s.flush().await
            }
            Conn::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }

    async fn shutdown(&mut self) {
        let _ = match self {
            Conn::Plain(s) => s.shutdown().await,
            Conn::Tls(s) => s.shutdown().await,
            Conn::Gone => Ok(()),
        };
    }
}

/// One place to connect to: all addresses of one SRV target (or of the override / the
/// domain), and whether TLS starts with the first byte.
struct Target {
    label: String,
    addrs: Vec<SocketAddr>,
    direct: bool,
}

/// The SRV records `(priority, weight, port, target, direct)` ordered into targets
/// `(host, port, direct)` (see the module docs for the policy): RFC 2782's order —
/// ascending priority; within a priority, repeatedly a weighted random pick (the records in
/// random order with those of weight 0 first, a number drawn uniformly from 0 to the sum
/// of the weights, the first record whose running sum reaches it), so that a record of
/// weight w comes first with probability about w / sum. Targets of "." are dropped. Pure
/// apart from `rng`, so that the order is testable without DNS.
fn order_srv(
    mut recs: Vec<(u16, u16, u16, String, bool)>,
    rng: &mut impl rand::Rng,
) -> Vec<(String, u16, bool)> {
    use rand::seq::SliceRandom;
    recs.shuffle(rng);
    recs.sort_by_key(|r| (r.0, r.1 != 0));
    let mut out = Vec::with_capacity(recs.len());
    while !recs.is_empty() {
        let prio = recs.first().map_or(0, |r| r.0);
        let end = recs.iter().take_while(|r| r.0 == prio).count();
        let mut group: Vec<_> = recs.drain(..end).collect();
        while !group.is_empty() {
            let total: u32 = group.iter().map(|r| u32::from(r.1)).sum();
            let pick = rng.random_range(0..=total);
            let mut running = 0u32;
            let i = group
                .iter()
                .position(|r| {
                    running += u32::from(r.1);
                    running >= pick
                })
                .unwrap_or(0);
            let (_, _, port, t, direct) = group.remove(i);
            let t = t.trim_end_matches('.').to_owned();
            // RFC 2782: a target of "." means the service is not available there.
            if !t.is_empty() {
                out.push((t, port, direct));
            }
        }
    }
    out
}

async fn srv_records(
    resolver: &TokioResolver,
    service: &str,
    domain: &str,
    direct: bool,
) -> Vec<(u16, u16, u16, String, bool)> {
    match resolver.srv_lookup(format!("{service}{domain}.")).await {
        Ok(srv) => srv
            .iter()
            .map(|r| {
                (
                    r.priority(),
                    r.weight(),
                    r.port(),
                    r.target().to_utf8(),
                    direct,
                )
            })
            .collect(),
        Err(e) => {
            tracing::debug!(%service, %domain, %e, "no SRV records");
            Vec::new()
        }
    }
}

async fn resolve(config: &ClientConfig) -> Result<Vec<Target>, ConnectError> {
    let domain = config.session.jid.domain().as_str().to_owned();
    let direct = config.session.tls == TlsMode::DirectTls;
    let resolve_err = |reason: String| ConnectError::Resolve {
        domain: domain.clone(),
        reason,
    };
    if let Some(s) = &config.server {
        let (h, p) = s
            .rsplit_once(':')
            .ok_or_else(|| resolve_err(format!("server override {s:?} is not host:port")))?;
        let port: u16 = p
            .parse()
            .map_err(|_| resolve_err(format!("bad port in {s:?}")))?;
        let host = h.trim_start_matches('[').trim_end_matches(']').to_owned();
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| resolve_err(format!("{host}: {e}")))?
            .collect();
        return Ok(vec![Target {
            label: format!("{host}:{port}"),
            addrs,
            direct,
        }]);
    }
    let resolver = config.dns.resolver().map_err(resolve_err)?;
    let mut recs = srv_records(&resolver, "_xmpps-client._tcp.", &domain, true).await;
    if !direct {
        recs.extend(srv_records(&resolver, "_xmpp-client._tcp.", &domain, false).await);
    }
    let mut named = match config.srv_seed {
        Some(seed) => order_srv(
            recs,
            &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed),
        ),
        None => order_srv(recs, &mut rand::rng()),
    };
    if named.is_empty() {
        // RFC 6120 §3.2.2 fallback: the domain itself on the default port.
        named.push((domain.clone(), if direct { 5223 } else { 5222 }, direct));
    }
    let mut targets = Vec::new();
    let mut last = String::new();
    for (host, port, direct) in named {
        let addrs: Vec<SocketAddr> = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => match resolver.lookup_ip(format!("{host}.")).await {
                Ok(ips) => ips.iter().map(|ip| SocketAddr::new(ip, port)).collect(),
                Err(e) => {
                    tracing::debug!(%host, %e, "SRV target does not resolve");
                    last = format!("{host}: {e}");
                    continue;
                }
            },
        };
        if !addrs.is_empty() {
            targets.push(Target {
                label: format!("{host}:{port}"),
                addrs,
                direct,
            });
        }
    }
    if targets.is_empty() {
        return Err(resolve_err(last));
    }
    Ok(targets)
}

fn tls_connector(config: &ClientConfig) -> Result<TlsConnector, ConnectError> {
    let mut roots = rustls::RootCertStore::empty();
    match &config.ca_cert {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| ConnectError::TrustAnchors {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let mut rd = std::io::BufReader::new(&pem[..]);
            for c in rustls_pemfile::certs(&mut rd) {
                let c = c.map_err(|e| ConnectError::TrustAnchors {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                roots.add(c).map_err(|e| ConnectError::TrustAnchors {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            }
            if roots.is_empty() {
                return Err(ConnectError::TrustAnchors {
                    path: path.clone(),
                    reason: "no certificate in the file".into(),
                });
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectError::Tls {
            domain: String::new(),
            reason: e.to_string(),
        })?
        .with_root_certificates(roots);
    let cfg = match &config.client_cert {
        Some(cc) => cfg
            .with_client_auth_cert(cc.chain.clone(), cc.key.clone_key())
            .map_err(|e| ConnectError::ClientCertificate {
                path: PathBuf::new(),
                reason: e.to_string(),
            })?,
        None => cfg.with_no_client_auth(),
    };
    Ok(TlsConnector::from(Arc::new(cfg)))
}

async fn upgrade(
    tcp: TcpStream,
    connector: &TlsConnector,
    domain: &str,
) -> Result<(Box<TlsStream<TcpStream>>, TlsInfo), ConnectError> {
    let name = ServerName::try_from(domain.to_owned()).map_err(|e| ConnectError::Tls {
        domain: domain.to_owned(),
        reason: e.to_string(),
    })?;
    let tls = connector.connect(name, tcp).await.map_err(|e| {
        let inner = e
            .get_ref()
            .and_then(|i| i.downcast_ref::<rustls::Error>())
            .cloned();
        match inner {
            Some(rustls::Error::InvalidCertificate(c)) => ConnectError::CertificateUntrusted {
                domain: domain.to_owned(),
                reason: format!("{c:?}"),
            },
            _ => ConnectError::Tls {
                domain: domain.to_owned(),
                reason: e.to_string(),
            },
        }
    })?;
    let (_, conn) = tls.get_ref();
    let version = conn
        .protocol_version()
        .map(|v| format!("{v:?}"))
        .unwrap_or_default();
    let cipher_suite = conn
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()))
        .unwrap_or_default();
    let channel_binding = if conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3) {
        // RFC 9266 §2: 32 bytes, label EXPORTER-Channel-Binding, no context.
        conn.export_keying_material([0u8; 32], b"EXPORTER-Channel-Binding", None)
            .map(|k| ChannelBinding::TlsExporter(k.to_vec()))
            .unwrap_or_default()
    } else {
        // RFC 5929 §4.1: hash of the leaf certificate with its signature's hash function.
        match conn.peer_certificates().and_then(|c| c.first()) {
            Some(leaf) => match crate::sasl::tls_server_end_point(leaf) {
                Ok(h) => ChannelBinding::TlsServerEndPoint(h),
                Err(e) => {
                    tracing::info!(%e, "no tls-server-end-point channel binding");
                    ChannelBinding::None
                }
            },
            None => ChannelBinding::None,
        }
    };
    let info = TlsInfo {
        version,
        cipher_suite,
        // The connector verifies the chain and the name; an unverified chain fails above.
        peer_certificate_verified: true,
        channel_binding,
    };
    Ok((Box::new(tls), info))
}

/// Connects and runs a connection task for `session`; resolves once online.
async fn start(
    config: &ClientConfig,
    resume: Option<SmState>,
    cmds: (mpsc::Receiver<Element>, watch::Receiver<bool>),
    events: mpsc::Sender<XmppEvent>,
    shared: Arc<Mutex<Shared>>,
) -> Result<(), ConnectError> {
    let connector = tls_connector(config)?;
    let domain = config.session.jid.domain().as_str().to_owned();
    let fut = async {
        let targets = resolve(config).await?;
        let t0 = Instant::now();
        let mut last_err = None;
        let mut tcp = None;
        'targets: for t in &targets {
            for addr in &t.addrs {
                match TcpStream::connect(addr).await {
                    Ok(s) => {
                        tcp = Some((s, t.direct));
                        break 'targets;
                    }
                    Err(e) => {
                        tracing::debug!(target = %t.label, %addr, %e, "connect failed; next");
                        last_err = Some(ConnectError::Connect {
                            addr: format!("{} ({addr})", t.label),
                            source: e,
                        })
                    }
                }
            }
        }
        let Some((tcp, direct)) = tcp else {
            return Err(last_err.unwrap_or(ConnectError::Resolve {
                domain: domain.clone(),
                reason: "no address".into(),
            }));
        };
        // Prosody writes small records; avoid delayed-ACK/Nagle stalls (notes/interop.md).
        let _ = tcp.set_nodelay(true);
        let session = new_session(config, direct, resume);
        let (ready_tx, ready_rx) = oneshot::channel();
        let task = Task {
            session,
            conn: Conn::Plain(tcp),
            connector: connector.clone(),
            domain: domain.clone(),
            events,
            shared: shared.clone(),
            ready: Some(ready_tx),
            direct,
        };
        lock(&shared).task = Some(tokio::spawn(task.run(cmds.0, cmds.1)));
        match ready_rx.await {
            Ok(Ok(())) => {
                lock(&shared).login_time = t0.elapsed();
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ConnectError::Session(SessionError::ConnectionLost)),
        }
    };
    match tokio::time::timeout(config.connect_timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(ConnectError::Timeout(config.connect_timeout)),
    }
}

/// The session for one connection: direct TLS or STARTTLS as the chosen target says, and
/// EXTERNAL enabled by a configured client certificate.
fn new_session(config: &ClientConfig, direct: bool, resume: Option<SmState>) -> Session {
    let mut sc = config.session.clone();
    sc.tls = if direct {
        TlsMode::DirectTls
    } else {
        TlsMode::StartTlsRequired
    };
    sc.client_certificate = config.client_cert.is_some();
    if sc.client_certificate && !sc.mechanisms.contains(&Mechanism::External) {
        sc.mechanisms.insert(0, Mechanism::External);
    }
    match resume {
        Some(state) => Session::new_resuming(sc, state, rand::random()),
        None => Session::new(sc, rand::random()),
    }
}

struct Task {
    session: Session,
    conn: Conn,
    connector: TlsConnector,
    domain: String,
    events: mpsc::Sender<XmppEvent>,
    shared: Arc<Mutex<Shared>>,
    ready: Option<oneshot::Sender<Result<(), ConnectError>>>,
    direct: bool,
}

impl Task {
    fn report(&mut self, r: Result<(), ConnectError>) {
        if let Some(tx) = self.ready.take() {
            let _ = tx.send(r);
        }
    }

    async fn run(mut self, mut cmds: mpsc::Receiver<Element>, mut close: watch::Receiver<bool>) {
        let mut buf = vec![0u8; 16 * 1024];
        let mut timer: Option<Instant> = None;
        let mut cmds_open = true;
        let mut close_open = true;
        if self.direct
            && let Err(e) = self.do_tls().await
        {
            self.report(Err(e));
            self.settle(&mut cmds).await;
            return;
        }
        loop {
            if let Err(e) = self.drain(&mut timer).await {
                self.report(Err(e));
                self.conn.shutdown().await;
                self.settle(&mut cmds).await;
                return;
            }
            if self.session.is_closed() {
                break;
            }
            let sleep_at = timer.map(tokio::time::Instant::from_std);
            tokio::select! {
                r = self.conn.read(&mut buf) => {
                    let now = Instant::now();
                    match r {
                        Ok(0) | Err(_) => self.session.handle_input(now, Input::Disconnected),
                        Ok(n) => self.session.handle_input(now, Input::Bytes(&buf[..n])),
                    }
                }
                c = cmds.recv(), if cmds_open => match c {
                    Some(el) => {
                        if let Err(e) = self.session.send(Instant::now(), el) {
                            self.on_event(XmppEvent::SendFailed(e)).await;
                        }
                    }
                    None => { cmds_open = false; self.session.close() }
                },
                r = close.changed(), if close_open => match r {
                    Ok(()) => {
                        if *close.borrow_and_update() {
                            // Stanzas sent before close() go out first (bounded by the
                            // queue's capacity).
                            while let Ok(el) = cmds.try_recv() {
                                if let Err(e) = self.session.send(Instant::now(), el) {
                                    self.on_event(XmppEvent::SendFailed(e)).await;
                                }
                            }
                            self.session.close();
                        }
                    }
                    // The client is gone: the command queue's end closes the session.
                    Err(_) => close_open = false,
                },
                _ = async {
                    match sleep_at {
                        Some(t) => tokio::time::sleep_until(t).await,
                        None => std::future::pending().await,
                    }
                } => {
                    timer = None;
                    self.session.handle_timeout(Instant::now());
                }
            }
        }
        let _ = self.drain(&mut timer).await;
        self.conn.shutdown().await;
        self.report(Err(ConnectError::Session(SessionError::ConnectionLost)));
        self.settle(&mut cmds).await;
    }

    /// After the session ended: stanzas still in the command queue join the resumable
    /// state, or are reported undelivered; nothing is dropped silently.
    async fn settle(&mut self, cmds: &mut mpsc::Receiver<Element>) {
        let lost = {
            let mut sh = lock(&self.shared);
            sh.sm_state = self.session.sm_state();
            cmds.close();
            let mut lost = Vec::new();
            // Bounded by the command queue's capacity.
            while let Ok(el) = cmds.try_recv() {
                match sh.sm_state.as_mut() {
                    Some(st) => st.unacked.push(el),
                    None => lost.push(el),
                }
            }
            lost
        };
        if !lost.is_empty() {
            let _ = self.events.send(XmppEvent::Undelivered(lost)).await;
        }
    }

    async fn do_tls(&mut self) -> Result<(), ConnectError> {
        let Conn::Plain(tcp) = std::mem::replace(&mut self.conn, Conn::Gone) else {
            return Err(ConnectError::Tls {
                domain: self.domain.clone(),
                reason: "TLS requested twice".into(),
            });
        };
        let (tls, info) = upgrade(tcp, &self.connector, &self.domain).await?;
        self.conn = Conn::Tls(tls);
        self.session
            .handle_input(Instant::now(), Input::TlsEstablished(info));
        Ok(())
    }

    async fn drain(&mut self, timer: &mut Option<Instant>) -> Result<(), ConnectError> {
        while let Some(o) = self.session.poll_output() {
            match o {
                Output::Transmit(b) => {
                    if self.conn.write_all(&b).await.is_err() {
                        self.session
                            .handle_input(Instant::now(), Input::Disconnected);
                    }
                }
                Output::StartTls => self.do_tls().await?,
                Output::Timeout(t) => *timer = Some(t),
                Output::Event(ev) => self.on_event(ev).await,
            }
        }
        Ok(())
    }

    /// Reports to `connect` and delivers to the application; waits while the event queue
    /// is full (the socket is not read meanwhile).
    async fn on_event(&mut self, ev: XmppEvent) {
        match &ev {
            XmppEvent::Online { .. } | XmppEvent::SmResumed { .. } => self.report(Ok(())),
            XmppEvent::AuthFailed { condition } => {
                let c = condition.clone();
                self.report(Err(ConnectError::AuthFailed { condition: c }));
            }
            XmppEvent::Disconnected { error, by } => {
                if let Some(e) = error.clone() {
                    self.report(Err(ConnectError::Session(e)));
                } else if *by == DisconnectedBy::Local {
                    self.report(Err(ConnectError::Session(SessionError::ConnectionLost)));
                }
            }
            _ => {}
        }
        let _ = self.events.send(ev).await;
    }
}

#[cfg(test)]
mod tests {
    use super::order_srv;

    #[test]
    fn srv_order_priority_then_weighted_choice_and_dot_targets_dropped() {
        use rand::SeedableRng;
        let r = |prio, weight, port, t: &str, direct| (prio, weight, port, t.to_owned(), direct);
        let recs = vec![
            r(20, 0, 1, "c.example.", false),
            r(10, 5, 2, "b.example.", false),
            r(10, 50, 3, "a.example.", false),
            r(10, 5, 4, "b-tls.example.", true),
            // RFC 2782: "." means the service is decidedly not available there.
            r(0, 0, 5, ".", true),
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut first: std::collections::HashMap<String, usize> = Default::default();
        for _ in 0..6000 {
            let got = order_srv(recs.clone(), &mut rng);
            let names: Vec<&str> = got.iter().map(|(t, _, _)| t.as_str()).collect();
            // the "." target is gone, the lower priority is last, the rest share the front
            assert_eq!(names.len(), 4);
            assert_eq!(got[3], ("c.example".to_owned(), 1, false));
            for n in ["a.example", "b.example", "b-tls.example"] {
                assert!(names[..3].contains(&n), "{names:?}");
            }
            *first.entry(names[0].to_owned()).or_insert(0) += 1;
        }
        // weights 50 : 5 : 5 → about 5000 / 500 / 500 of 6000 first
        assert!((4_700..=5_300).contains(&first["a.example"]), "{first:?}");
        assert!((350..=650).contains(&first["b.example"]), "{first:?}");
        assert!((350..=650).contains(&first["b-tls.example"]), "{first:?}");
    }
}
