//! The sans-IO client session: negotiation, stanzas in and out, keep-alive, stream management.
//!
//! [`Session`] follows the cusax I/O contract: feed [`Input`]s with
//! [`handle_input`](Session::handle_input) (and [`handle_timeout`](Session::handle_timeout)
//! when the last [`Output::Timeout`] instant is reached), then drain
//! [`poll_output`](Session::poll_output) until it returns `None`.
//!
//! Negotiation order (RFC 6120 §4.3, §5–§7): stream header → features → STARTTLS
//! ([`Output::StartTls`]; the driver upgrades and feeds [`Input::TlsEstablished`]) → stream
//! restart → SASL → stream restart → resource binding (or XEP-0198 `<resume/>`) → optional
//! legacy session → XEP-0198 `<enable/>` → [`XmppEvent::Online`]. While online, XEP-0199
//! pings are sent after `ping_interval` of silence; no answer within `ping_timeout` means a
//! dead connection.
//!
//! With [`TlsMode::DirectTls`] (XEP-0368) the driver establishes TLS first and feeds
//! [`Input::TlsEstablished`] before any byte; the stream header is sent then.
//!
//! Bounded, and nothing is lost silently: [`Session::send`] refuses (handing the stanza
//! back in a [`SendError`]) when the pre-bind queue, the XEP-0198 unacked queue or the
//! table of outstanding iq requests is full. Iq requests are matched with their answers
//! (RFC 6120 §8.1.2.1): only the addressee may answer, unanswered requests end as
//! [`XmppEvent::IqTimeout`]. The session advertises its entity capabilities (XEP-0115) on
//! available presence and answers disco#info (XEP-0030) and pings (XEP-0199) itself.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use jid::{BareJid, FullJid, Jid};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::disco::{DiscoInfo, NS_DISCO_INFO};
use crate::presence::{Caps, NS_CAPS};
use crate::sasl::{self, ChannelBinding, Credentials, Mechanism, SaslClient, SaslError};
use crate::sm::{SmError, SmLimits, SmState, StreamManagement, is_stanza};
use crate::stream::{
    self, Features, NS_BIND, NS_PING, NS_SASL, NS_SESSION, NS_SM, NS_STANZAS, NS_TLS,
    StreamErrorInfo,
};
use crate::xml::element::Element;
use crate::xml::parser::{NS_CLIENT, StreamParser, XmlError, XmlEvent, XmlLimits};

/// How TLS is established.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsMode {
    /// Plain TCP then STARTTLS, which must be offered (RFC 6120 §5). The default.
    #[default]
    StartTlsRequired,
    /// TLS from the first byte (XEP-0368 `_xmpps-client`).
    DirectTls,
}

/// Session configuration.
#[derive(Clone)]
pub struct SessionConfig {
    /// The account.
    pub jid: BareJid,
    /// The password.
    pub password: String,
    /// Resource to request; `None` lets the server choose (RFC 6120 §7.6).
    pub resource: Option<String>,
    /// TLS establishment.
    pub tls: TlsMode,
    /// Test-only: continue without TLS when the server offers no STARTTLS. PLAIN is still
    /// refused over such a stream. Also lets PLAIN run over TLS whose peer certificate was
    /// not verified (without this flag PLAIN needs a verified certificate).
    pub insecure_allow_plaintext: bool,
    /// SASL mechanisms in order of preference.
    pub mechanisms: Vec<Mechanism>,
    /// Enable XEP-0198 when offered.
    pub stream_management: bool,
    /// Silence after which a XEP-0199 ping is sent.
    pub ping_interval: Duration,
    /// How long to wait for the ping answer (also bounds each negotiation step).
    pub ping_timeout: Duration,
    /// Limits on the server's XML.
    pub limits: XmlLimits,
    /// Most stanzas queued by [`Session::send`] before the session is online; beyond it
    /// `send` refuses with [`SendError::QueueFull`].
    pub max_pending: usize,
    /// Bounds on the XEP-0198 unacked queue; when it is full `send` refuses with
    /// [`SendError::Backpressure`].
    pub sm_limits: SmLimits,
    /// How long an iq request sent with [`Session::send`] waits for its answer before
    /// [`XmppEvent::IqTimeout`] (counted from the `send` call).
    pub iq_timeout: Duration,
    /// Most iq requests awaiting an answer; beyond it `send` refuses with
    /// [`SendError::TooManyRequests`].
    pub max_pending_iqs: usize,
    /// What the session answers to disco#info requests (XEP-0030 §3.1) for our full JID
    /// and for our caps node `caps_node#ver`: the identities and features the
    /// application implements. Default: [`DiscoInfo::client`]`("cusax")`.
    pub disco: DiscoInfo,
    /// The software's XEP-0115 node URI.
    pub caps_node: String,
    /// Add XEP-0115 `<c/>` (computed from `disco`) to every available presence sent with
    /// [`Session::send`] that has none (XEP-0115 §4: caps ride on all presence).
    pub advertise_caps: bool,
    /// The transport presents a TLS client certificate. SASL EXTERNAL (RFC 4422 Appendix
    /// A, XEP-0178) is only chosen when this is set, the stream is encrypted and
    /// [`mechanisms`](Self::mechanisms) lists it. The driver sets it from
    /// `ClientConfig::client_cert`.
    pub client_certificate: bool,
}

impl SessionConfig {
    /// Defaults: STARTTLS required, mechanisms strongest first, SM on, ping every 60 s
    /// with a 20 s timeout.
    pub fn new(jid: BareJid, password: impl Into<String>) -> Self {
        SessionConfig {
            jid,
            password: password.into(),
            resource: None,
            tls: TlsMode::StartTlsRequired,
            insecure_allow_plaintext: false,
            mechanisms: Mechanism::DEFAULT_ORDER.to_vec(),
            stream_management: true,
            ping_interval: Duration::from_secs(60),
            ping_timeout: Duration::from_secs(20),
            limits: XmlLimits::default(),
            max_pending: 256,
            sm_limits: SmLimits::default(),
            iq_timeout: Duration::from_secs(60),
            max_pending_iqs: 1024,
            disco: DiscoInfo::client("cusax"),
            caps_node: "https://github.com/cusax/cusax".into(),
            advertise_caps: true,
            client_certificate: false,
        }
    }
}

impl std::fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionConfig")
            .field("jid", &self.jid)
            .field("password", &"<redacted>")
            .field("resource", &self.resource)
            .field("tls", &self.tls)
            .field("mechanisms", &self.mechanisms)
            .field("stream_management", &self.stream_management)
            .finish_non_exhaustive()
    }
}

/// What the driver learnt from the TLS handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsInfo {
    /// e.g. `TLSv1_3`.
    pub version: String,
    /// e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher_suite: String,
    /// The certificate chain verified against the trust anchors for the domain.
    pub peer_certificate_verified: bool,
    /// Channel-binding data for SCRAM-PLUS.
    pub channel_binding: ChannelBinding,
}

/// Input to the session.
#[derive(Debug)]
#[non_exhaustive]
pub enum Input<'a> {
    /// Bytes received from the server (after TLS decryption).
    Bytes(&'a [u8]),
    /// TLS is up (after [`Output::StartTls`], or first of all for direct TLS).
    TlsEstablished(TlsInfo),
    /// The transport ended (EOF or error).
    Disconnected,
}

/// Output of the session.
#[derive(Debug)]
#[non_exhaustive]
pub enum Output {
    /// Bytes to write to the server.
    Transmit(Bytes),
    /// Upgrade the connection to TLS now (all earlier Transmits written first).
    StartTls,
    /// Something for the application.
    Event(XmppEvent),
    /// Call [`Session::handle_timeout`] at this instant.
    Timeout(Instant),
}

/// Security properties of the established session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityInfo {
    /// TLS protocol version, `None` on an (insecure test) plaintext stream.
    pub tls_version: Option<String>,
    /// TLS cipher suite.
    pub cipher_suite: Option<String>,
    /// Whether the server certificate was verified.
    pub cert_verified: bool,
    /// The SASL mechanism that authenticated this stream; `None` when no SASL exchange
    /// happened on it (never a made-up value).
    pub sasl_mechanism: Option<Mechanism>,
    /// The channel-binding type used by SCRAM-PLUS.
    pub channel_binding: Option<&'static str>,
    /// Whether XEP-0198 is on.
    pub sm_enabled: bool,
}

/// [`Session::send`] refused a stanza; the stanza is handed back, never dropped.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// Our side: [`SessionConfig::max_pending`] stanzas already wait for the session to
    /// come online. Retry once it is.
    #[error("{limit} stanzas already wait for the session to come online")]
    QueueFull {
        /// The refused stanza.
        stanza: Box<Element>,
        /// The limit.
        limit: usize,
    },
    /// Back-pressure from the server: the XEP-0198 unacked queue is full
    /// ([`SmLimits::max_unacked`]); an ack has been requested. Retry after acks arrive
    /// (any inbound traffic may carry them).
    #[error("{unacked} stanzas wait for the server's acknowledgement; try again later")]
    Backpressure {
        /// The refused stanza.
        stanza: Box<Element>,
        /// Stanzas waiting for an ack.
        unacked: usize,
    },
    /// Our side: [`SessionConfig::max_pending_iqs`] iq requests already await answers.
    #[error("{limit} iq requests already await answers")]
    TooManyRequests {
        /// The refused stanza.
        stanza: Box<Element>,
        /// The limit.
        limit: usize,
    },
    /// Our side: an iq request with this id already awaits its answer (RFC 6120 §8.1.3:
    /// the id must identify the request).
    #[error("an iq request with id {id:?} already awaits its answer")]
    IqIdInUse {
        /// The refused stanza.
        stanza: Box<Element>,
        /// The id.
        id: String,
    },
}

impl SendError {
    /// The refused stanza.
    pub fn stanza(&self) -> &Element {
        match self {
            SendError::QueueFull { stanza, .. }
            | SendError::Backpressure { stanza, .. }
            | SendError::TooManyRequests { stanza, .. }
            | SendError::IqIdInUse { stanza, .. } => stanza,
        }
    }

    /// Takes the refused stanza back.
    pub fn into_stanza(self) -> Element {
        match self {
            SendError::QueueFull { stanza, .. }
            | SendError::Backpressure { stanza, .. }
            | SendError::TooManyRequests { stanza, .. }
            | SendError::IqIdInUse { stanza, .. } => *stanza,
        }
    }
}

/// Who ended the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisconnectedBy {
    /// We did (close(), or we detected an error).
    Local,
    /// The server or the network did.
    Remote,
}

/// Why a session ended or could not be established.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// Peer misbehaved: bad XML.
    #[error(transparent)]
    Xml(#[from] XmlError),
    /// SASL failed on our side (configuration or a misbehaving server).
    #[error(transparent)]
    Sasl(#[from] SaslError),
    /// Peer misbehaved: stream-management rules broken.
    #[error(transparent)]
    Sm(#[from] SmError),
    /// Peer incompatible: no STARTTLS offered and plaintext is not allowed.
    #[error("server does not offer STARTTLS; refusing an unencrypted stream")]
    TlsRequired,
    /// The server refused STARTTLS.
    #[error("server refused STARTTLS")]
    StartTlsRefused,
    /// The server refused our credentials (RFC 6120 §6.5).
    #[error("authentication failed: {condition}")]
    AuthFailed {
        /// The SASL condition.
        condition: String,
    },
    /// The server sent a stream error.
    #[error("stream error from server: {condition}")]
    Stream {
        /// The condition.
        condition: String,
    },
    /// Resource binding failed.
    #[error("resource binding failed: {0}")]
    Bind(String),
    /// Peer misbehaved: something out of order during negotiation.
    #[error("protocol violation by server: {0}")]
    Protocol(String),
    /// No answer to a ping (or negotiation step) in time: dead connection.
    #[error("no answer from the server within the timeout")]
    Timeout,
    /// The transport ended without a stream close.
    #[error("connection lost")]
    ConnectionLost,
}

/// Events for the application.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum XmppEvent {
    /// Negotiation done; stanzas flow.
    Online {
        /// The bound full JID.
        jid: FullJid,
        /// How the session is protected.
        security: SecurityInfo,
    },
    /// An inbound stanza.
    Stanza(Element),
    /// The server sent a stream error (RFC 6120 §4.9).
    StreamError {
        /// Condition.
        condition: String,
        /// Text.
        text: Option<String>,
    },
    /// SASL refused (RFC 6120 §6.5).
    AuthFailed {
        /// Condition (`not-authorized`, …).
        condition: String,
    },
    /// The session ended.
    Disconnected {
        /// Who ended it.
        by: DisconnectedBy,
        /// Why, if not a clean close.
        error: Option<SessionError>,
    },
    /// XEP-0198 resumption succeeded; unacked stanzas were resent.
    SmResumed {
        /// The resumed full JID.
        jid: FullJid,
        /// How the session is protected.
        security: SecurityInfo,
    },
    /// Stanzas that were not delivered (never acknowledged), oldest first.
    Undelivered(Vec<Element>),
    /// A stanza handed to the driver could not be queued (the driver reports what
    /// [`Session::send`] refused; the stanza is inside).
    SendFailed(SendError),
    /// An iq request sent with [`Session::send`] got no acceptable answer within
    /// [`SessionConfig::iq_timeout`] (RFC 6120 §8.1.2.1), or was sent on a stream whose
    /// resumption failed. A late answer is ignored. Requests still waiting when a
    /// non-resumable session ends are ended by [`XmppEvent::Disconnected`] instead; those
    /// of a resumable one travel in [`SmState::pending_iqs`].
    IqTimeout {
        /// The request's id.
        id: String,
        /// Whom it was sent to (`None`: the own account).
        to: Option<Jid>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    AwaitTlsFirst,
    AwaitHeader,
    AwaitFeatures,
    AwaitProceed,
    AwaitTls,
    Authenticating,
    AwaitBind,
    AwaitSession,
    AwaitEnable,
    AwaitResume,
    Online,
    Closing,
    Closed,
}

/// The sans-IO XMPP client session. See the [module docs](self).
pub struct Session {
    config: SessionConfig,
    rng: StdRng,
    phase: Phase,
    parser: StreamParser,
    out: VecDeque<Output>,
    tx: String,
    tls: Option<TlsInfo>,
    authenticated: bool,
    sasl: Option<SaslClient>,
    mechanism: Option<Mechanism>,
    features: Features,
    jid: Option<FullJid>,
    sm: StreamManagement,
    resuming: bool,
    pending: VecDeque<Element>,
    next_id: u64,
    /// Deadline of the current negotiation step or ping.
    deadline: Option<Instant>,
    last_rx: Option<Instant>,
    ping_id: Option<String>,
    timeout_reported: Option<Instant>,
    /// An `<r/>` went out because the unacked queue was full (reset by the next `<a/>`).
    full_ack_requested: bool,
    /// Our iq requests awaiting answers, by id: addressee and deadline.
    iqs: HashMap<String, (Option<Jid>, Instant)>,
    /// The same, ordered by deadline.
    iq_deadlines: BTreeSet<(Instant, String)>,
    /// Our entity capabilities (from `config.disco`).
    caps: Caps,
    /// Requests of the stream being resumed that await answers (tracked once resumed).
    resumed_iqs: Vec<(String, Option<Jid>)>,
}

impl Session {
    /// A new session. `seed` feeds the SCRAM nonce generator (the driver passes OS
    /// randomness; tests a fixed value).
    pub fn new(config: SessionConfig, seed: [u8; 32]) -> Self {
        let parser = StreamParser::new(config.limits.clone());
        let mut sm = StreamManagement::new();
        sm.set_limits(config.sm_limits);
        let mut s = Session {
            phase: Phase::AwaitHeader,
            rng: StdRng::from_seed(seed),
            parser,
            out: VecDeque::new(),
            tx: String::new(),
            tls: None,
            authenticated: false,
            sasl: None,
            mechanism: None,
            features: Features::default(),
            jid: None,
            sm,
            resuming: false,
            pending: VecDeque::new(),
            next_id: 0,
            deadline: None,
            last_rx: None,
            ping_id: None,
            timeout_reported: None,
            full_ack_requested: false,
            iqs: HashMap::new(),
            iq_deadlines: BTreeSet::new(),
            caps: Caps::for_info(config.caps_node.clone(), &config.disco),
            resumed_iqs: Vec::new(),
            config,
        };
        if s.config.tls == TlsMode::DirectTls {
            s.phase = Phase::AwaitTlsFirst;
        } else {
            s.send_header();
        }
        s
    }

    /// A session that will try to resume `state` (XEP-0198 §5) after authenticating. If
    /// the server refuses, unacked stanzas are reported as [`XmppEvent::Undelivered`] and
    /// a fresh session is bound.
    pub fn new_resuming(config: SessionConfig, state: SmState, seed: [u8; 32]) -> Self {
        let mut s = Session::new(config, seed);
        s.sm = StreamManagement::from_state(&state);
        s.sm.set_limits(s.config.sm_limits);
        s.resuming = true;
        s.jid = FullJid::new(&state.jid).ok();
        s.resumed_iqs = state
            .pending_iqs
            .iter()
            .take(s.config.max_pending_iqs)
            .map(|(id, to)| (id.clone(), to.as_deref().and_then(|t| Jid::new(t).ok())))
            .collect();
        s
    }

    /// The state needed to resume this stream later, when the server allowed resumption.
    /// Includes queued stanzas not yet sent and the iq requests awaiting answers.
    pub fn sm_state(&self) -> Option<SmState> {
        let jid = self.jid.as_ref()?;
        let pending: Vec<Element> = self.pending.iter().cloned().collect();
        let mut st = self.sm.state(jid.as_str(), &pending)?;
        st.pending_iqs = self
            .iq_deadlines
            .iter()
            .filter_map(|(_, id)| {
                let (to, _) = self.iqs.get(id)?;
                Some((id.clone(), to.as_ref().map(|t| t.as_str().to_owned())))
            })
            .collect();
        Some(st)
    }

    /// Our XEP-0115 entity capabilities (`ver` computed from [`SessionConfig::disco`]).
    pub fn caps(&self) -> &Caps {
        &self.caps
    }

    /// The initial (or an updated) broadcast presence (RFC 6121 §4.2) with our entity
    /// capabilities (XEP-0115 §4), ready for [`send`](Self::send).
    pub fn available_presence(
        &self,
        show: Option<crate::stanza::Show>,
        status: Option<&str>,
        priority: i8,
    ) -> crate::stanza::Presence {
        crate::presence::with_caps(
            crate::presence::available(show, status, priority),
            &self.caps,
        )
    }

    /// Whether the session is online (bound or resumed).
    pub fn is_online(&self) -> bool {
        self.phase == Phase::Online
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Sends a stanza at `now` (queued until online; counted by XEP-0198).
    ///
    /// Bounded: before the session is online at most [`SessionConfig::max_pending`]
    /// stanzas wait ([`SendError::QueueFull`] beyond); online with XEP-0198, a full unacked
    /// queue refuses with [`SendError::Backpressure`] after requesting an ack. A refused
    /// stanza is handed back in the error. After the stream closed, the stanza is reported
    /// as [`XmppEvent::Undelivered`].
    ///
    /// An iq request (`get`/`set`) is remembered with its `to`: only an answer from that
    /// JID (for requests to the own account: from the account, its server or without
    /// `from`, RFC 6120 §8.1.2.1) is delivered; other answers to the id are ignored and
    /// logged, and no acceptable answer within [`SessionConfig::iq_timeout`] yields
    /// [`XmppEvent::IqTimeout`].
    pub fn send(&mut self, now: Instant, mut stanza: Element) -> Result<(), SendError> {
        if self.config.advertise_caps
            && stanza.name == "presence"
            && stanza.ns == NS_CLIENT
            && stanza.attr("type").is_none()
            && stanza.child("c", NS_CAPS).is_none()
        {
            stanza.push_child(self.caps.to_element());
        }
        let request = match self.phase {
            Phase::Closing | Phase::Closed => None,
            _ => self.iq_request(&stanza)?,
        };
        match self.phase {
            Phase::Online => {
                if self.sm.is_full() {
                    let unacked = self.sm.unacked_len();
                    tracing::debug!(unacked, "unacked queue full: back-pressure");
                    if !self.full_ack_requested {
                        // One extra request per full episode, not one per refused send.
                        self.full_ack_requested = true;
                        self.write_el(&StreamManagement::request());
                    }
                    return Err(SendError::Backpressure {
                        stanza: Box::new(stanza),
                        unacked,
                    });
                }
                self.transmit_stanza(stanza);
            }
            Phase::Closing | Phase::Closed => {
                self.push_event(XmppEvent::Undelivered(vec![stanza]));
            }
            _ => {
                if self.pending.len() >= self.config.max_pending {
                    return Err(SendError::QueueFull {
                        stanza: Box::new(stanza),
                        limit: self.config.max_pending,
                    });
                }
                self.pending.push_back(stanza);
            }
        }
        if let Some((id, to)) = request {
            self.track_iq(now, id, to);
        }
        Ok(())
    }

    /// For an iq request: its id and `to`, after checking the request bounds.
    #[allow(clippy::type_complexity)]
    fn iq_request(&self, el: &Element) -> Result<Option<(String, Option<Jid>)>, SendError> {
        if el.name != "iq" || el.ns != NS_CLIENT || !matches!(el.attr("type"), Some("get" | "set"))
        {
            return Ok(None);
        }
        let Some(id) = el.attr("id") else {
            tracing::debug!("iq request without id: its answer cannot be matched");
            return Ok(None);
        };
        if self.iqs.contains_key(id) {
            return Err(SendError::IqIdInUse {
                id: id.to_owned(),
                stanza: Box::new(el.clone()),
            });
        }
        if self.iqs.len() >= self.config.max_pending_iqs {
            return Err(SendError::TooManyRequests {
                stanza: Box::new(el.clone()),
                limit: self.config.max_pending_iqs,
            });
        }
        // An unparsable `to` can only be answered with an error from our server.
        let to = el.attr("to").and_then(|t| Jid::new(t).ok());
        Ok(Some((id.to_owned(), to)))
    }

    fn track_iq(&mut self, now: Instant, id: String, to: Option<Jid>) {
        if self.iqs.contains_key(&id) {
            return;
        }
        let deadline = now + self.config.iq_timeout;
        self.iq_deadlines.insert((deadline, id.clone()));
        self.iqs.insert(id, (to, deadline));
    }

    /// Whether an answer `from` may answer a request sent `to` (RFC 6120 §8.1.2.1): the
    /// addressee itself; for a request without `to` or to the own bare JID also the
    /// account's bare or full JID, its server, or no `from` at all.
    fn answer_acceptable(&self, to: Option<&Jid>, from: Option<&str>) -> bool {
        let from = match from.map(Jid::new) {
            None => None,
            Some(Ok(j)) => Some(j),
            Some(Err(_)) => return false,
        };
        let own = self
            .jid
            .as_ref()
            .map(|j| j.to_bare())
            .unwrap_or_else(|| self.config.jid.clone());
        let to_account = to.is_none_or(|t| t.is_bare() && t.to_bare() == own);
        if let (Some(t), Some(f)) = (to, &from)
            && t == f
        {
            return true;
        }
        if !to_account {
            return false;
        }
        match &from {
            None => true,
            Some(f) => {
                (f.is_bare() && f.to_bare() == own)
                    || (f.as_str() == own.domain().as_str())
                    || self.jid.as_ref().is_some_and(|j| f.as_str() == j.as_str())
            }
        }
    }

    /// Matches an inbound iq answer to our request; `false` when it must be dropped.
    fn accept_answer(&mut self, el: &Element) -> bool {
        let id = el.attr("id").unwrap_or_default();
        let Some((to, deadline)) = self.iqs.get(id) else {
            tracing::warn!(id, from = ?el.attr("from"), "ignoring an iq answer to no request of ours");
            return false;
        };
        if !self.answer_acceptable(to.as_ref(), el.attr("from")) {
            tracing::warn!(
                id,
                from = ?el.attr("from"),
                to = ?to.as_ref().map(|t| t.as_str()),
                "ignoring a spoofed iq answer (not from the JID the request went to)"
            );
            return false;
        }
        let key = (*deadline, id.to_owned());
        self.iq_deadlines.remove(&key);
        self.iqs.remove(id);
        true
    }

    /// The answer to a disco#info request (XEP-0030 §3.1) for our JID or our caps node
    /// (XEP-0115 §6.2); any other node is `item-not-found` (XEP-0030 §3.2).
    fn disco_reply(&self, req: &Element, node: Option<&str>) -> Element {
        let mut reply = Element::new("iq", NS_CLIENT);
        if let Some(id) = req.attr("id") {
            reply.set_attr("id", id);
        }
        if let Some(from) = req.attr("from") {
            reply.set_attr("to", from);
        }
        if node.is_none() || node == Some(self.caps.disco_node().as_str()) {
            let mut info = self.config.disco.clone();
            info.node = node.map(str::to_owned);
            reply.set_attr("type", "result");
            reply.push_child(info.to_element());
        } else {
            tracing::debug!(?node, "disco#info for a node we do not have");
            reply.set_attr("type", "error");
            let mut q = Element::new("query", NS_DISCO_INFO);
            if let Some(n) = node {
                q.set_attr("node", n);
            }
            reply.push_child(q);
            reply.push_child(
                crate::stanza::StanzaError::new(
                    crate::stanza::ErrorType::Cancel,
                    crate::stanza::Condition::ItemNotFound,
                )
                .to_element(NS_CLIENT),
            );
        }
        reply
    }

    /// The old stream's requests can no longer be answered: each ends as a timeout.
    fn abandon_resumed_iqs(&mut self) {
        for (id, to) in std::mem::take(&mut self.resumed_iqs) {
            self.push_event(XmppEvent::IqTimeout { id, to });
        }
    }

    fn expire_iqs(&mut self, now: Instant) {
        while let Some(first) = self.iq_deadlines.first()
            && first.0 <= now
        {
            let Some((_, id)) = self.iq_deadlines.pop_first() else {
                break;
            };
            if let Some((to, _)) = self.iqs.remove(&id) {
                tracing::debug!(%id, "iq request timed out");
                self.push_event(XmppEvent::IqTimeout { id, to });
            }
        }
    }

    /// Closes the stream (RFC 6120 §4.4). Pending acks are requested first so that the
    /// server's answer settles what was delivered; the rest is reported undelivered.
    pub fn close(&mut self) {
        match self.phase {
            Phase::Closing | Phase::Closed => {}
            _ => {
                if self.sm.is_enabled() && self.sm.unacked_len() > 0 {
                    self.write_el(&StreamManagement::request());
                }
                self.write(stream::STREAM_CLOSE);
                let pending: Vec<Element> = self.pending.drain(..).collect();
                if !pending.is_empty() {
                    self.push_event(XmppEvent::Undelivered(pending));
                }
                self.phase = Phase::Closing;
                self.flush_tx();
            }
        }
    }

    /// Feeds one input.
    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) {
        self.timeout_reported = None;
        match input {
            Input::Bytes(data) => {
                if self.phase == Phase::Closed {
                    return;
                }
                self.last_rx = Some(now);
                if self.phase == Phase::Online {
                    // Any traffic proves the connection alive (the ping id is kept so
                    // that a late answer is still recognised and swallowed).
                    self.deadline = None;
                }
                self.parser.feed(data);
                self.drain_parser(now);
            }
            Input::TlsEstablished(info) => match self.phase {
                Phase::AwaitTls | Phase::AwaitTlsFirst => {
                    tracing::debug!(version = %info.version, suite = %info.cipher_suite, "TLS up");
                    self.tls = Some(info);
                    self.parser = StreamParser::new(self.config.limits.clone());
                    self.send_header();
                    self.phase = Phase::AwaitHeader;
                    self.deadline = Some(now + self.config.ping_timeout);
                }
                _ => self.fail(
                    DisconnectedBy::Local,
                    SessionError::Protocol("TLS established out of order".into()),
                    false,
                ),
            },
            Input::Disconnected => match self.phase {
                Phase::Closed => {}
                // We initiated the close; the server dropped TCP without its closing tag.
                Phase::Closing => self.finish(DisconnectedBy::Local, None, false),
                _ => self.finish(
                    DisconnectedBy::Remote,
                    Some(SessionError::ConnectionLost),
                    true,
                ),
            },
        }
        self.flush_tx();
    }

    /// Call when the last [`Output::Timeout`] instant has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.timeout_reported = None;
        if self.phase == Phase::Closed {
            return;
        }
        self.expire_iqs(now);
        if let Some(d) = self.deadline
            && now >= d
        {
            self.deadline = None;
            tracing::debug!(phase = ?self.phase, "timeout: dead connection");
            self.fail(DisconnectedBy::Local, SessionError::Timeout, true);
            self.flush_tx();
            return;
        }
        if self.phase == Phase::Online
            && self.deadline.is_none()
            && let Some(last) = self.last_rx
            && now >= last + self.config.ping_interval
        {
            let id = self.new_id("ping");
            let iq = Element::new("iq", NS_CLIENT)
                .with_attr("type", "get")
                .with_attr("id", id.clone())
                .with_child(Element::new("ping", NS_PING));
            self.transmit_stanza(iq);
            self.ping_id = Some(id);
            self.deadline = Some(now + self.config.ping_timeout);
        }
        self.flush_tx();
    }

    /// The next output; `None` when there is nothing more until the next input.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.flush_tx();
        if let Some(o) = self.out.pop_front() {
            return Some(o);
        }
        let next = self.next_timeout()?;
        if self.timeout_reported == Some(next) {
            return None;
        }
        self.timeout_reported = Some(next);
        Some(Output::Timeout(next))
    }

    fn next_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Closed {
            return None;
        }
        let ping = if self.phase == Phase::Online && self.deadline.is_none() {
            self.last_rx.map(|t| t + self.config.ping_interval)
        } else {
            None
        };
        let iq = self.iq_deadlines.first().map(|(t, _)| *t);
        [self.deadline, ping, iq].into_iter().flatten().min()
    }

    // ---- internals ----

    fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("cusax-{prefix}-{}", self.next_id)
    }

    /// Nothing may follow our `</stream:stream>` (RFC 6120 §4.4).
    fn may_write(&self) -> bool {
        !matches!(self.phase, Phase::Closing | Phase::Closed)
    }

    fn write(&mut self, s: &str) {
        if self.may_write() {
            self.tx.push_str(s);
        }
    }

    fn write_el(&mut self, el: &Element) {
        if !self.may_write() {
            return;
        }
        el.write_with_parent_ns(&mut self.tx, NS_CLIENT);
    }

    fn flush_tx(&mut self) {
        if !self.tx.is_empty() {
            let data = std::mem::take(&mut self.tx);
            self.out.push_back(Output::Transmit(Bytes::from(data)));
        }
    }

    fn push_event(&mut self, ev: XmppEvent) {
        self.flush_tx();
        self.out.push_back(Output::Event(ev));
    }

    fn send_header(&mut self) {
        let from = self
            .tls
            .as_ref()
            .map(|_| self.config.jid.as_str().to_owned());
        let header = stream::stream_header(self.config.jid.domain().as_str(), from.as_deref());
        self.write(&header);
    }

    fn restart_stream(&mut self, now: Instant) {
        self.parser = StreamParser::new(self.config.limits.clone());
        self.send_header();
        self.phase = Phase::AwaitHeader;
        self.deadline = Some(now + self.config.ping_timeout);
    }

    fn transmit_stanza(&mut self, el: Element) {
        if !self.may_write() {
            // The stream is over: report rather than lose it.
            self.push_event(XmppEvent::Undelivered(vec![el]));
            return;
        }
        self.write_el(&el);
        if is_stanza(&el) && self.sm.on_outbound_stanza(&el) {
            self.write_el(&StreamManagement::request());
        }
        if let Some(err) = self.sm.overflow() {
            tracing::warn!(%err, "server does not acknowledge; closing the stream");
            self.fail(DisconnectedBy::Local, SessionError::Sm(err), false);
        }
    }

    fn drain_parser(&mut self, now: Instant) {
        loop {
            if self.phase == Phase::Closed {
                return;
            }
            match self.parser.next_event() {
                Ok(None) => return,
                Ok(Some(XmlEvent::StreamOpen { .. })) => {
                    if self.phase == Phase::AwaitHeader {
                        self.phase = Phase::AwaitFeatures;
                    }
                }
                Ok(Some(XmlEvent::StreamClose)) => {
                    if self.phase != Phase::Closing {
                        self.write(stream::STREAM_CLOSE);
                    }
                    let error = (self.phase != Phase::Closing)
                        .then_some(SessionError::Protocol("server closed the stream".into()));
                    let by = if self.phase == Phase::Closing {
                        DisconnectedBy::Local
                    } else {
                        DisconnectedBy::Remote
                    };
                    self.finish(by, error, false);
                    return;
                }
                Ok(Some(XmlEvent::Stanza(el))) => {
                    if let Err(e) = self.on_element(now, el) {
                        self.fail(DisconnectedBy::Local, e, false);
                        return;
                    }
                }
                Err(e) => {
                    self.write(&stream::stream_error_xml(e.stream_error_condition()));
                    self.fail_closed(DisconnectedBy::Local, SessionError::Xml(e), true);
                    return;
                }
            }
        }
    }

    /// Ends the session after an error we detected: send `</stream:stream>` and report.
    fn fail(&mut self, by: DisconnectedBy, error: SessionError, resumable: bool) {
        if self.phase != Phase::Closed && self.phase != Phase::Closing {
            self.write(stream::STREAM_CLOSE);
        }
        self.fail_closed(by, error, resumable);
    }

    fn fail_closed(&mut self, by: DisconnectedBy, error: SessionError, resumable: bool) {
        tracing::debug!(%error, "session ends");
        self.finish(by, Some(error), resumable);
    }

    /// Final bookkeeping: undelivered stanzas (unless kept for resumption) and the
    /// Disconnected event.
    fn finish(&mut self, by: DisconnectedBy, error: Option<SessionError>, resumable: bool) {
        if self.phase == Phase::Closed {
            return;
        }
        let keep = resumable && self.sm.is_resumable() && self.jid.is_some();
        if !keep {
            let mut lost = self.sm.take_unacked();
            lost.extend(self.pending.drain(..));
            if !lost.is_empty() {
                self.push_event(XmppEvent::Undelivered(lost));
            }
            // Nothing left to resume.
            self.sm = StreamManagement::new();
            self.sm.set_limits(self.config.sm_limits);
        }
        self.phase = Phase::Closed;
        self.deadline = None;
        if !keep {
            // Requests still awaiting answers end with the session (the Disconnected
            // event); a resumable session keeps them for `sm_state`.
            self.iqs.clear();
            self.iq_deadlines.clear();
        }
        self.push_event(XmppEvent::Disconnected { by, error });
    }

    fn security(&self) -> SecurityInfo {
        SecurityInfo {
            tls_version: self.tls.as_ref().map(|t| t.version.clone()),
            cipher_suite: self.tls.as_ref().map(|t| t.cipher_suite.clone()),
            cert_verified: self
                .tls
                .as_ref()
                .is_some_and(|t| t.peer_certificate_verified),
            sasl_mechanism: self.mechanism,
            channel_binding: self.sasl.as_ref().and_then(|s| s.channel_binding()),
            sm_enabled: self.sm.is_enabled(),
        }
    }

    fn go_online(&mut self, now: Instant) {
        self.phase = Phase::Online;
        self.deadline = None;
        self.last_rx = Some(now);
        let Some(jid) = self.jid.clone() else {
            self.fail(
                DisconnectedBy::Local,
                SessionError::Bind("no JID bound".into()),
                false,
            );
            return;
        };
        let security = self.security();
        tracing::info!(%jid, ?security, "online");
        self.push_event(XmppEvent::Online { jid, security });
        while let Some(s) = self.pending.pop_front() {
            self.transmit_stanza(s);
        }
    }

    fn on_element(&mut self, now: Instant, el: Element) -> Result<(), SessionError> {
        if let Some(err) = StreamErrorInfo::parse(&el) {
            tracing::warn!(condition = %err.condition, "stream error from server");
            self.push_event(XmppEvent::StreamError {
                condition: err.condition.clone(),
                text: err.text,
            });
            self.write(stream::STREAM_CLOSE);
            self.finish(
                DisconnectedBy::Remote,
                Some(SessionError::Stream {
                    condition: err.condition,
                }),
                false,
            );
            return Ok(());
        }
        match self.phase {
            Phase::AwaitFeatures => {
                let f = Features::parse(&el).ok_or_else(|| {
                    SessionError::Protocol(format!("expected features, got <{}>", el.name))
                })?;
                self.on_features(now, f)
            }
            Phase::AwaitProceed => {
                if el.is("proceed", NS_TLS) {
                    self.phase = Phase::AwaitTls;
                    self.flush_tx();
                    self.out.push_back(Output::StartTls);
                    Ok(())
                } else {
                    Err(SessionError::StartTlsRefused)
                }
            }
            Phase::Authenticating => self.on_sasl(now, &el),
            Phase::AwaitBind => {
                if !el.is("iq", NS_CLIENT) {
                    return self.online_element(el);
                }
                match el.attr("type") {
                    Some("result") => {
                        let jid = el
                            .child("bind", NS_BIND)
                            .and_then(|b| b.child("jid", NS_BIND))
                            .map(|j| j.text())
                            .ok_or_else(|| SessionError::Bind("no jid in result".into()))?;
                        let jid = FullJid::new(jid.trim())
                            .map_err(|e| SessionError::Bind(format!("bad jid: {e}")))?;
                        self.jid = Some(jid);
                        if self.features.session_optional == Some(false) {
                            let id = self.new_id("sess");
                            let iq = Element::new("iq", NS_CLIENT)
                                .with_attr("type", "set")
                                .with_attr("id", id)
                                .with_child(Element::new("session", NS_SESSION));
                            self.write_el(&iq);
                            self.phase = Phase::AwaitSession;
                            Ok(())
                        } else {
                            self.after_bind(now);
                            Ok(())
                        }
                    }
                    _ => {
                        let cond = el
                            .child("error", NS_CLIENT)
                            .and_then(|e| e.elements().find(|c| c.ns == NS_STANZAS))
                            .map(|c| c.name.clone())
                            .unwrap_or_else(|| "undefined-condition".into());
                        Err(SessionError::Bind(cond))
                    }
                }
            }
            Phase::AwaitSession => {
                if el.is("iq", NS_CLIENT) && el.attr("type") == Some("result") {
                    self.after_bind(now);
                    Ok(())
                } else if el.is("iq", NS_CLIENT) && el.attr("type") == Some("error") {
                    Err(SessionError::Bind("session establishment refused".into()))
                } else {
                    self.online_element(el)
                }
            }
            Phase::AwaitEnable => {
                if el.is("enabled", NS_SM) {
                    self.sm.on_enabled(&el);
                    self.go_online(now);
                    Ok(())
                } else if el.is("failed", NS_SM) {
                    tracing::debug!("server refused to enable stream management");
                    self.go_online(now);
                    Ok(())
                } else {
                    self.online_element(el)
                }
            }
            Phase::AwaitResume => {
                if el.is("resumed", NS_SM) {
                    let resend = self.sm.on_resumed(&el)?;
                    self.resuming = false;
                    self.phase = Phase::Online;
                    self.deadline = None;
                    self.last_rx = Some(now);
                    let Some(jid) = self.jid.clone() else {
                        return Err(SessionError::Protocol("resumed without a JID".into()));
                    };
                    let security = self.security();
                    tracing::info!(%jid, resent = resend.len(), "stream resumed");
                    self.push_event(XmppEvent::SmResumed { jid, security });
                    for (id, to) in std::mem::take(&mut self.resumed_iqs) {
                        self.track_iq(now, id, to);
                    }
                    for s in resend {
                        // Answers to resent requests are matched as in the first session.
                        if let Ok(Some((id, to))) = self.iq_request(&s) {
                            self.track_iq(now, id, to);
                        }
                        self.transmit_stanza(s);
                    }
                    while let Some(s) = self.pending.pop_front() {
                        self.transmit_stanza(s);
                    }
                    Ok(())
                } else if el.is("failed", NS_SM) {
                    let lost = self.sm.on_resume_failed(&el);
                    tracing::info!(lost = lost.len(), "resumption refused; binding anew");
                    if !lost.is_empty() {
                        self.push_event(XmppEvent::Undelivered(lost));
                    }
                    self.abandon_resumed_iqs();
                    self.resuming = false;
                    self.jid = None;
                    self.bind();
                    Ok(())
                } else {
                    Err(SessionError::Protocol(format!(
                        "unexpected <{}> while resuming",
                        el.name
                    )))
                }
            }
            Phase::Online | Phase::Closing => self.online_element(el),
            Phase::AwaitHeader | Phase::AwaitTls | Phase::AwaitTlsFirst => Err(
                SessionError::Protocol(format!("unexpected <{}> during negotiation", el.name)),
            ),
            Phase::Closed => Ok(()),
        }
    }

    fn on_features(&mut self, now: Instant, f: Features) -> Result<(), SessionError> {
        self.features = f.clone();
        self.deadline = Some(now + self.config.ping_timeout);
        if self.tls.is_none() {
            if f.starttls.is_some() {
                self.write(&format!("<starttls xmlns='{NS_TLS}'/>"));
                self.phase = Phase::AwaitProceed;
                return Ok(());
            }
            if !self.config.insecure_allow_plaintext {
                return Err(SessionError::TlsRequired);
            }
            tracing::warn!("continuing WITHOUT TLS (insecure test mode)");
        }
        if !self.authenticated {
            return self.start_sasl(&f);
        }
        if self.resuming
            && f.sm
            && let Some(req) = self.sm.resume_request()
        {
            self.write_el(&req);
            self.phase = Phase::AwaitResume;
            return Ok(());
        }
        if self.resuming {
            // Resumption impossible (no SM offered): report, bind anew.
            let lost = self.sm.on_failed();
            if !lost.is_empty() {
                self.push_event(XmppEvent::Undelivered(lost));
            }
            self.abandon_resumed_iqs();
            self.resuming = false;
            self.jid = None;
        }
        if !f.bind {
            return Err(SessionError::Bind(
                "server offers no resource binding".into(),
            ));
        }
        self.bind();
        Ok(())
    }

    fn bind(&mut self) {
        let id = self.new_id("bind");
        let req = stream::bind_request(&id, self.config.resource.as_deref());
        self.write_el(&req);
        self.phase = Phase::AwaitBind;
    }

    fn after_bind(&mut self, now: Instant) {
        if self.config.stream_management && self.features.sm {
            self.write_el(&StreamManagement::enable_request());
            self.phase = Phase::AwaitEnable;
        } else {
            self.go_online(now);
        }
    }

    fn start_sasl(&mut self, f: &Features) -> Result<(), SessionError> {
        // PLAIN only over TLS whose peer certificate was verified (RFC 6120 §13.8, §13.7.2):
        // an unverified certificate may be a man in the middle who would read the password.
        // The test-only `insecure_allow_plaintext` flag accepts an unverified TLS stream; it
        // never makes a stream without TLS count as encrypted.
        let encrypted = self
            .tls
            .as_ref()
            .is_some_and(|t| t.peer_certificate_verified || self.config.insecure_allow_plaintext);
        let cb = self
            .tls
            .as_ref()
            .map(|t| t.channel_binding.clone())
            .filter(|_| self.config.mechanisms.iter().any(|m| m.is_plus()))
            .unwrap_or_default();
        // EXTERNAL authenticates by the TLS client certificate (XEP-0178 §3): without one
        // it cannot succeed, so it is never picked.
        let external_ok = encrypted && self.config.client_certificate;
        let preference: Vec<Mechanism> = self
            .config
            .mechanisms
            .iter()
            .copied()
            .filter(|m| *m != Mechanism::External || external_ok)
            .collect();
        let mech = sasl::choose(&f.mechanisms, &preference, encrypted, &cb)?;
        let offers_plus = f.mechanisms.iter().any(|m| m.ends_with("-PLUS"));
        let username = self
            .config
            .jid
            .node()
            .map(|n| n.as_str().to_owned())
            .unwrap_or_default();
        let creds = Credentials {
            username,
            password: self.config.password.clone(),
        };
        let mut client = SaslClient::new(mech, &creds, cb, offers_plus, encrypted, &mut self.rng)?;
        let (_, initial) = client.initial()?;
        let payload = if initial.is_empty() {
            "=".to_owned()
        } else {
            base64_encode(&initial)
        };
        tracing::debug!(mechanism = %mech, "SASL auth");
        self.write(&format!(
            "<auth xmlns='{NS_SASL}' mechanism='{}'>{payload}</auth>",
            mech.name()
        ));
        self.sasl = Some(client);
        self.mechanism = Some(mech);
        self.phase = Phase::Authenticating;
        Ok(())
    }

    fn on_sasl(&mut self, now: Instant, el: &Element) -> Result<(), SessionError> {
        let Some(client) = self.sasl.as_mut() else {
            return Err(SessionError::Protocol("SASL without a client".into()));
        };
        if el.is("challenge", NS_SASL) {
            let data = base64_decode(&el.text())?;
            let resp = client.challenge(&data)?;
            let payload = if resp.is_empty() {
                String::new()
            } else {
                base64_encode(&resp)
            };
            self.write(&format!("<response xmlns='{NS_SASL}'>{payload}</response>"));
            Ok(())
        } else if el.is("success", NS_SASL) {
            let data = base64_decode(&el.text())?;
            client.success(&data)?;
            self.authenticated = true;
            self.restart_stream(now);
            Ok(())
        } else if el.is("failure", NS_SASL) {
            let (condition, text) = stream::sasl_failure(el);
            tracing::info!(%condition, ?text, "authentication failed");
            self.push_event(XmppEvent::AuthFailed {
                condition: condition.clone(),
            });
            self.fail(
                DisconnectedBy::Remote,
                SessionError::AuthFailed { condition },
                false,
            );
            Ok(())
        } else {
            Err(SessionError::Protocol(format!(
                "unexpected <{}> during SASL",
                el.name
            )))
        }
    }

    /// Elements while online (or late during negotiation): SM nonzas, pings, stanzas.
    fn online_element(&mut self, el: Element) -> Result<(), SessionError> {
        if el.ns == NS_SM {
            match el.name.as_str() {
                "r" => {
                    let a = self.sm.ack();
                    self.write_el(&a);
                }
                "a" => {
                    self.full_ack_requested = false;
                    if self.sm.on_ack(&el)? {
                        self.write_el(&StreamManagement::request());
                    }
                }
                _ => tracing::debug!(name = %el.name, "ignoring stream-management element"),
            }
            return Ok(());
        }
        if !is_stanza(&el) {
            tracing::debug!(name = %el.name, ns = %el.ns, "ignoring non-stanza element");
            return Ok(());
        }
        self.sm.on_inbound_stanza();
        if el.name == "iq" {
            let ty = el.attr("type");
            if matches!(ty, Some("result" | "error"))
                && el.attr("id").is_some()
                && el.attr("id") == self.ping_id.as_deref()
            {
                self.ping_id = None;
                self.deadline = None;
                return Ok(());
            }
            if matches!(ty, Some("result" | "error")) && !self.accept_answer(&el) {
                return Ok(());
            }
            if ty == Some("get")
                && let Some(q) = el.child("query", NS_DISCO_INFO)
            {
                let reply = self.disco_reply(&el, q.attr("node"));
                self.transmit_stanza(reply);
                return Ok(());
            }
            if ty == Some("get") && el.child("ping", NS_PING).is_some() {
                let mut reply = Element::new("iq", NS_CLIENT).with_attr("type", "result");
                if let Some(id) = el.attr("id") {
                    reply.set_attr("id", id);
                }
                if let Some(from) = el.attr("from") {
                    reply.set_attr("to", from);
                }
                self.transmit_stanza(reply);
                return Ok(());
            }
        }
        self.push_event(XmppEvent::Stanza(el));
        Ok(())
    }
}

fn base64_encode(d: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(d)
}

fn base64_decode(s: &str) -> Result<Vec<u8>, SessionError> {
    use base64::Engine as _;
    let s = s.trim();
    if s.is_empty() || s == "=" {
        return Ok(Vec::new());
    }
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| SessionError::Sasl(SaslError::Malformed("SASL payload is not base64")))
}
