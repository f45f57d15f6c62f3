//! The sans-IO SIP endpoint: transactions + user agent behind one `handle_input` / `poll_output` contract.
//!
//! [`Endpoint`] is a SIP user agent (RFC 3261 §8, §12-§15) over the transaction layer
//! ([`crate::transaction::TransactionLayer`]). It performs no I/O and reads no clock:
//!
//! ```text
//!   app ──commands (register, invite, answer, bye, ...)──▶ Endpoint
//!   driver ──handle_input(now, Input::Receive | Input::Timeout)──▶ Endpoint
//!   Endpoint ──poll_output()──▶ Transmit (send these bytes) | Event | Timeout(at)
//! ```
//!
//! Drain [`Endpoint::poll_output`] after every input or command until it returns
//! [`Output::Timeout`]; call [`Endpoint::handle_input`] with [`Input::Timeout`] at that
//! instant.
//!
//! What the endpoint does on its own:
//! - answers 401/407 on every request it sends with digest credentials (RFC 3261
//!   §22.2, §22.3), once per challenge; a second challenge to the same credentials is
//!   reported as [`SipEvent::AuthenticationFailed`];
//! - refreshes its registration before it expires and retries after `423 Interval Too
//!   Brief` with the registrar's Min-Expires (RFC 3261 §10.2.8);
//! - sends the ACK for a 2xx to INVITE and re-sends it for each 2xx retransmission
//!   (§13.2.2.4); retransmits its own 2xx to INVITE from T1 doubling to T2 until the
//!   ACK arrives, and ends the call with BYE after 64*T1 without ACK (§13.3.1.4);
//! - sends CANCEL for a call that is being cancelled only once a provisional response
//!   arrived (§9.1), and BYE if a 2xx crosses the CANCEL;
//! - refreshes subscriptions before they expire (RFC 6665 §4.1.2.1) and answers NOTIFY.
//!
//! Security by default:
//! - TLS is the transport ([`EndpointConfig::new`]); plain UDP/TCP needs the explicit
//!   [`EndpointConfig::insecure`] / [`EndpointConfig::allow_insecure_transport`], else
//!   requests fail with [`EndpointError::InsecureTransport`] and plain input is dropped;
//! - `sips:` URIs and dialogs established over TLS ([`Dialog::secure`]) never leave TLS:
//!   a Contact or Record-Route asking for another transport is refused
//!   ([`EndpointError::Downgrade`], [`SipEvent::InsecureRouteRefused`]);
//! - the TLS name to check is chosen per target ([`Endpoint::tls_server_name`]) and the
//!   driver reports each handshake ([`Input::Connected`]): registration and call events
//!   carry [`SignallingSecurity`] (RFC 7081 §7);
//! - a failed transport (refused certificate, refused connection, ...) reaches the
//!   application with its typed cause ([`SipEvent::TransportFailed`],
//!   [`TransportFailure`]) before the request's 503 failure event, and nothing is
//!   retried over a plain transport;
//! - P-Asserted-Identity is [`AssertedIdentity::Trusted`] only from a configured
//!   [`TrustedProxy`] over verified TLS (RFC 3325 §5);
//! - no event is dropped: [`Endpoint::try_handle_input`] refuses input while
//!   [`EndpointConfig::event_queue_limit`] events wait (backpressure);
//! - identifiers come from a 256-bit seed ([`Endpoint::from_seed`]).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

use crate::dialog::Dialog;
use crate::msg::{CallInfo, Host, Method, NameAddr, Request, Response, Scheme, SipMessage, Uri};
use crate::transaction::{
    Target, TimerConfig, TransactionEvent, TransactionKey, TransactionLayer, Transmit, Transport,
    new_branch, response_target,
};
use crate::ua::digest::{DigestCredentials, DigestError, DigestSession};
use crate::ua::privacy::{ANONYMOUS_FROM, impp_call_info, is_anonymous};
use crate::ua::register::{Registration, granted_expires, refresh_delay};

/// Upper bound on concurrent calls and subscriptions each.
pub const MAX_CALLS: usize = 1024;
/// Default of [`EndpointConfig::event_queue_limit`].
pub const DEFAULT_EVENT_QUEUE_LIMIT: usize = 65536;
/// How many Request-URIs one outgoing call tries, the first included, when 3xx
/// responses redirect it ([`EndpointConfig::follow_redirects`]).
pub const MAX_REDIRECT_TARGETS: usize = 8;
/// Default of [`EndpointConfig::udp_size_threshold`]: RFC 3261 §18.1.1's 1300 bytes for
/// an unknown path MTU.
pub const DEFAULT_UDP_SIZE_THRESHOLD: usize = 1300;
/// Upper bound on 423 retries of one REGISTER.
const MAX_INTERVAL_RETRIES: u8 = 2;
/// How long after a transient refresh failure REGISTER is tried again.
const REGISTER_RETRY: Duration = Duration::from_secs(30);
/// Upper bound on digest retries of one request.
const MAX_AUTH_ATTEMPTS: u8 = 2;

/// The account the endpoint registers and authenticates with.
#[derive(Clone)]
pub struct Account {
    /// The address-of-record (`sip:alice@cusax.test`).
    pub aor: Uri,
    /// The display name put in From.
    pub display_name: Option<String>,
    /// The digest username.
    pub username: String,
    /// The digest password.
    pub password: String,
    /// Where REGISTER goes.
    pub registrar: Target,
    /// Where out-of-dialog requests go (RFC 3261 §8.1.2); `None` sends them to the
    /// registrar when the Request-URI host is not an IP address.
    pub outbound_proxy: Option<Target>,
    /// The registration expiry we ask for, in seconds.
    pub expires: u32,
}

impl Account {
    /// An account whose registrar and outbound proxy is `server` over TLS (the secure
    /// default; its certificate is checked against the AOR's domain, RFC 5922 §7.2),
    /// asking for a one-hour registration.
    pub fn tls(
        aor: Uri,
        username: impl Into<String>,
        password: impl Into<String>,
        server: SocketAddr,
    ) -> Account {
        let server = Target::new(Transport::Tls, server);
        Account {
            aor,
            display_name: None,
            username: username.into(),
            password: password.into(),
            registrar: server,
            outbound_proxy: Some(server),
            expires: 3600,
        }
    }
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("aor", &self.aor.to_string())
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("registrar", &self.registrar)
            .field("outbound_proxy", &self.outbound_proxy)
            .field("expires", &self.expires)
            .finish()
    }
}

/// How an incoming MESSAGE is refused when MESSAGE is off (RFC 7081 §6.1: a CUSAX
/// client whose chat goes over XMPP may refuse SIP MESSAGE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageRefusal {
    /// `405 Method Not Allowed` with an Allow header without MESSAGE.
    MethodNotAllowed,
    /// `488 Not Acceptable Here`.
    NotAcceptableHere,
}

/// The endpoint's configuration.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// The local address our socket is bound to (Via sent-by, Contact host and port).
    pub local_addr: SocketAddr,
    /// The transport of that socket.
    pub transport: Transport,
    /// The user part of our Contact (defaults to the account's user when empty).
    pub contact_user: String,
    /// The account, if we register.
    pub account: Option<Account>,
    /// The User-Agent header.
    pub user_agent: String,
    /// Transaction timers (T1 also paces our 2xx retransmissions).
    pub timers: TimerConfig,
    /// Our XMPP address (`alice@cusax.test` or `xmpp:alice@cusax.test`) advertised in
    /// `Call-Info;purpose=impp` when a call asks for it (RFC 7081 §3.5).
    pub call_info_impp: Option<String>,
    /// Whether incoming MESSAGE requests are accepted.
    pub allow_message: bool,
    /// How MESSAGE is refused when `allow_message` is false.
    pub message_refusal: MessageRefusal,
    /// Opt-in for plain (unencrypted) transports. `false` by default: every request
    /// goes over TLS and messages received over UDP or TCP are dropped; a request whose
    /// target is UDP or TCP fails with [`EndpointError::InsecureTransport`]. Set it (or
    /// use [`EndpointConfig::insecure`]) only for loopback demos, tests, or peers that
    /// cannot do TLS.
    pub allow_insecure_transport: bool,
    /// The proxies whose P-Asserted-Identity we trust (RFC 3325 §5: only inside a trust
    /// domain, from a peer authenticated as a member of it). Empty by default: every
    /// asserted identity is reported as [`AssertedIdentity::Untrusted`].
    pub trusted_identity_proxies: Vec<TrustedProxy>,
    /// How many undrained events make [`Endpoint::try_handle_input`] refuse input
    /// (backpressure: the driver stops reading until it drained [`Endpoint::poll_output`]).
    /// Events are never dropped.
    pub event_queue_limit: usize,
    /// RFC 3261 §18.1.1: a request larger than this many bytes whose target is UDP is
    /// sent over TCP to the same address instead (with `TCP` in its top Via), because a
    /// datagram that large may be fragmented or dropped. `Some(1300)` by default (the
    /// RFC's figure when the path MTU is unknown; use the path MTU − 200 when it is
    /// known); `None` keeps every request on UDP. When nothing accepts the TCP
    /// connection (connection refused), the request is sent again over UDP.
    pub udp_size_threshold: Option<usize>,
    /// Whether an outgoing call follows 300, 301 and 302 redirections (RFC 3261
    /// §8.1.3.4; 305 Use Proxy and 380 Alternative Service end the call): the INVITE
    /// is sent again to the redirect's Contacts, best `q` first, each URI once, at most
    /// [`MAX_REDIRECT_TARGETS`] in all, reported as [`SipEvent::CallRedirected`]; a
    /// failure of one target moves on to the next (but a 6xx ends the search). `true`
    /// by default, as in PJSIP and linphone; `false` ends the call with
    /// [`SipEvent::CallFailed`] carrying the 3xx. A `sips:` call is never redirected to
    /// a `sip:` URI, nor a call sent over TLS to a plain transport.
    pub follow_redirects: bool,
}

/// A proxy whose P-Asserted-Identity is trusted when its request arrives over TLS with
/// a verified certificate (RFC 3325 §5, RFC 5922 §7.2).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrustedProxy {
    /// The proxy's address (the source of the TLS connection).
    Addr(SocketAddr),
    /// The name the proxy's certificate was verified against (the SIP domain), compared
    /// case-insensitively.
    Name(String),
}

/// A P-Asserted-Identity of an incoming request (RFC 3325 §9.1), labelled with
/// whether it may be believed.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AssertedIdentity {
    /// It came from a configured trusted proxy
    /// ([`EndpointConfig::trusted_identity_proxies`]) over TLS with a verified
    /// certificate (RFC 3325 §5).
    Trusted(NameAddr),
    /// Anyone could have written it: a hint no better than From.
    Untrusted(NameAddr),
}

impl AssertedIdentity {
    /// The identity, only if trusted.
    pub fn trusted(&self) -> Option<&NameAddr> {
        match self {
            AssertedIdentity::Trusted(a) => Some(a),
            AssertedIdentity::Untrusted(_) => None,
        }
    }

    /// The identity as written, trusted or not.
    pub fn name_addr(&self) -> &NameAddr {
        match self {
            AssertedIdentity::Trusted(a) | AssertedIdentity::Untrusted(a) => a,
        }
    }
}

impl EndpointConfig {
    /// A configuration for a UA without account whose Via and Contact name
    /// `local_addr`, over TLS (security by default: `sip:...;transport=tls` toward the
    /// registrar and proxy, RFC 3261 §26.2; plain transports refused).
    pub fn new(local_addr: SocketAddr) -> Self {
        EndpointConfig {
            local_addr,
            transport: Transport::Tls,
            contact_user: String::new(),
            account: None,
            user_agent: concat!("cusax/", env!("CARGO_PKG_VERSION")).to_owned(),
            timers: TimerConfig::default(),
            call_info_impp: None,
            allow_message: true,
            message_refusal: MessageRefusal::MethodNotAllowed,
            allow_insecure_transport: false,
            trusted_identity_proxies: Vec::new(),
            event_queue_limit: DEFAULT_EVENT_QUEUE_LIMIT,
            udp_size_threshold: Some(DEFAULT_UDP_SIZE_THRESHOLD),
            follow_redirects: true,
        }
    }

    /// An explicitly insecure configuration: like [`EndpointConfig::new`] but over the
    /// plain `transport` (UDP or TCP) with [`allow_insecure_transport`](Self::allow_insecure_transport)
    /// set. Signalling (and the SDP keys in it) then travels in clear text.
    pub fn insecure(local_addr: SocketAddr, transport: Transport) -> Self {
        EndpointConfig {
            transport,
            allow_insecure_transport: true,
            ..EndpointConfig::new(local_addr)
        }
    }
}

/// A call handle local to this endpoint (not the SIP Call-ID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u64);

/// A subscription handle local to this endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriptionId(pub u64);

/// A handle for a stand-alone request (OPTIONS, MESSAGE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Options of an outgoing call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallOptions {
    /// Hide our identity (RFC 3323): anonymous From, `Privacy: id`, no Call-Info.
    pub anonymous: bool,
    /// Advertise our XMPP address with `Call-Info;purpose=impp` (RFC 7081 §3.5).
    pub call_info_impp: bool,
}

impl CallOptions {
    /// Options with `call_info_impp` set.
    pub fn with_impp() -> Self {
        CallOptions {
            anonymous: false,
            call_info_impp: true,
        }
    }

    /// Options with `anonymous` set.
    pub fn anonymous() -> Self {
        CallOptions {
            anonymous: true,
            call_info_impp: false,
        }
    }
}

/// Options of the final answer to an incoming call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AnswerOptions {
    /// Advertise our XMPP address ([`EndpointConfig::call_info_impp`]) with
    /// `Call-Info;purpose=impp` in the 2xx (RFC 7081 §3.5). Never on an anonymous call.
    pub call_info_impp: bool,
    /// Further Call-Info values for the 2xx (printed as given). Never on an anonymous
    /// call.
    pub call_info: Vec<CallInfo>,
}

impl AnswerOptions {
    /// Options with `call_info_impp` set.
    pub fn with_impp() -> Self {
        AnswerOptions {
            call_info_impp: true,
            call_info: Vec::new(),
        }
    }

    /// Options carrying these Call-Info values.
    pub fn with_call_info(call_info: Vec<CallInfo>) -> Self {
        AnswerOptions {
            call_info_impp: false,
            call_info,
        }
    }
}

/// Who ended a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndedBy {
    /// We sent BYE.
    Local,
    /// The peer sent BYE.
    Remote,
    /// No ACK came for our 2xx within 64*T1 (RFC 3261 §13.3.1.4); we sent BYE.
    AckTimeout,
}

/// Something the application should know.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)] // events are moved once, boxing buys nothing
pub enum SipEvent {
    /// The registrar accepted our binding for `expires` seconds.
    #[non_exhaustive]
    Registered {
        /// Granted expiry.
        expires: u32,
        /// How the REGISTER reached the registrar (RFC 7081 §7).
        security: SignallingSecurity,
    },
    /// The TCP or TLS connection our registration lives on (the flow to the registrar,
    /// RFC 5626 §4.4.1) broke while registered: requests for us can no longer reach us
    /// over it. A REGISTER refresh is sent at once over a new connection; its outcome
    /// follows as [`SipEvent::Registered`] or [`SipEvent::RegistrationFailed`] (a
    /// transient failure is retried later, as for any refresh).
    #[non_exhaustive]
    RegistrationFlowLost {
        /// The registrar's connection that broke.
        target: Target,
        /// Why (the driver's cause: closed by the peer, no keep-alive pong, ...).
        error: TransportFailure,
    },
    /// The registrar refused the binding.
    RegistrationFailed {
        /// Final status (408 for a timeout).
        status: u16,
        /// Reason phrase.
        reason: String,
    },
    /// The binding was removed (Expires: 0 accepted).
    Unregistered,
    /// Our credentials were refused: a second challenge answered the same credentials
    /// (RFC 7616 §3.3), or the challenge could not be answered. The request's own
    /// failure event follows.
    AuthenticationFailed {
        /// The method of the refused request.
        method: Method,
        /// Why.
        reason: String,
    },
    /// One of our requests failed because the transport to its next hop failed (RFC 3261
    /// §18.4; §8.1.3.1: handled as `503 Service Unavailable`). `error` tells a refused
    /// certificate ([`TransportFailure::is_certificate_error`]) from a refused connection,
    /// a timeout or a server that closed the connection. The request's own failure event
    /// follows at once ([`SipEvent::RegistrationFailed`], [`SipEvent::CallFailed`], ...
    /// with status 503, see [`FailedRequest`]), as after
    /// [`SipEvent::AuthenticationFailed`]. Nothing is retried over a plain transport.
    #[non_exhaustive]
    TransportFailed {
        /// Which request failed.
        request: FailedRequest,
        /// Where it was going (the next hop).
        target: Target,
        /// Why.
        error: TransportFailure,
    },
    /// A new incoming call (RFC 3261 §13.3). Answer with [`Endpoint::ring`],
    /// [`Endpoint::answer`].
    #[non_exhaustive]
    IncomingCall {
        /// The handle.
        call: CallId,
        /// From (a hint only).
        from: NameAddr,
        /// To.
        to: NameAddr,
        /// Every Call-Info value of the INVITE (RFC 7081 §3.5: hints only).
        call_info: Vec<CallInfo>,
        /// The first P-Asserted-Identity (RFC 3325), if any, trusted only when it came
        /// from a configured trusted proxy over verified TLS (RFC 3325 §5).
        asserted_identity: Option<AssertedIdentity>,
        /// Whether the caller asked for privacy (RFC 3323/3325) or sent an anonymous From.
        anonymous: bool,
        /// The offer (opaque, usually SDP).
        body: Bytes,
        /// How the INVITE reached us on its last hop (RFC 7081 §7).
        security: SignallingSecurity,
    },
    /// 180 Ringing received.
    CallRinging {
        /// The handle.
        call: CallId,
    },
    /// Our call was redirected (RFC 3261 §8.1.3.4): after `status` (a 3xx, or the
    /// failure of an earlier redirect target) the INVITE went to `target`, the next
    /// untried Contact of the redirections. The call keeps its handle; its outcome follows
    /// as for any call. See [`EndpointConfig::follow_redirects`].
    #[non_exhaustive]
    CallRedirected {
        /// The handle.
        call: CallId,
        /// The response that made us move on.
        status: u16,
        /// The new Request-URI.
        target: Uri,
    },
    /// Another provisional response (183 Session Progress, ...), with its body.
    CallProgress {
        /// The handle.
        call: CallId,
        /// Status.
        status: u16,
        /// Body (early media answer).
        body: Bytes,
    },
    /// Our call was answered (2xx); the ACK is sent.
    #[non_exhaustive]
    CallAnswered {
        /// The handle.
        call: CallId,
        /// The answer.
        body: Bytes,
        /// Every Call-Info value of the 2xx (RFC 7081 §3.5: hints only, e.g. the
        /// callee's XMPP address with `purpose=impp`).
        call_info: Vec<CallInfo>,
        /// How the 2xx reached us on its last hop (RFC 7081 §7).
        security: SignallingSecurity,
    },
    /// The ACK for our 2xx arrived: the incoming call is established.
    CallConfirmed {
        /// The handle.
        call: CallId,
    },
    /// Our call failed with a final non-2xx response (or 408 on timeout).
    CallFailed {
        /// The handle.
        call: CallId,
        /// Status.
        status: u16,
        /// Reason phrase.
        reason: String,
    },
    /// The call was cancelled before being answered (by us, or the caller's CANCEL), or an
    /// incoming call's INVITE server transaction failed (transport error or timeout) before
    /// it was answered finally.
    CallCancelled {
        /// The handle.
        call: CallId,
    },
    /// The call ended.
    CallEnded {
        /// The handle.
        call: CallId,
        /// Who ended it.
        by: EndedBy,
    },
    /// The peer sent a re-INVITE (hold, resume, ...); answer it with [`Endpoint::answer`].
    ReinviteReceived {
        /// The handle.
        call: CallId,
        /// The new offer.
        body: Bytes,
    },
    /// Our re-INVITE got its final response (a non-2xx leaves the session as it was,
    /// RFC 3261 §14.1).
    ReinviteCompleted {
        /// The handle.
        call: CallId,
        /// Status.
        status: u16,
        /// The answer (2xx) or empty.
        body: Bytes,
    },
    /// A SUBSCRIBE was accepted.
    SubscriptionAccepted {
        /// The handle.
        subscription: SubscriptionId,
        /// Granted expiry (seconds).
        expires: u32,
    },
    /// A NOTIFY arrived (answered 200).
    Notify {
        /// The handle.
        subscription: SubscriptionId,
        /// The Subscription-State value (`active`, `pending`, `terminated`).
        state: String,
        /// Content-Type of the body.
        content_type: Option<String>,
        /// The body.
        body: Bytes,
    },
    /// The subscription is over (terminated NOTIFY, refused refresh, unsubscribe done).
    SubscriptionTerminated {
        /// The handle.
        subscription: SubscriptionId,
        /// Status of a failed SUBSCRIBE, if that is why.
        status: Option<u16>,
        /// The `reason` of a terminated Subscription-State, if any.
        reason: Option<String>,
    },
    /// A MESSAGE arrived (RFC 3428) and was answered 200.
    MessageReceived {
        /// From.
        from: NameAddr,
        /// Content-Type.
        content_type: Option<String>,
        /// The body.
        body: Bytes,
    },
    /// Final response to our MESSAGE.
    MessageResponse {
        /// The handle.
        id: RequestId,
        /// Status.
        status: u16,
    },
    /// A request of this call that the endpoint sends on its own (the ACK of a 2xx, a
    /// BYE) was not sent: its route would leave TLS on a secure dialog or use a plain
    /// transport that is not allowed (RFC 3261 §26.2.2; no silent downgrade). Commands
    /// report the same as [`EndpointError::Downgrade`]. The application may end the call.
    InsecureRouteRefused {
        /// The handle.
        call: CallId,
        /// What was refused.
        reason: String,
    },
    /// Final response to our OPTIONS.
    OptionsResponse {
        /// The handle.
        id: RequestId,
        /// Status.
        status: u16,
        /// Allow values.
        allow: Vec<String>,
    },
}

/// The parameters of an established TLS connection, as the driver saw them (RFC 7081
/// §7: what an application may show about the security of the signalling path).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsInfo {
    /// The negotiated protocol version (`TLSv1_3`, ...).
    pub protocol_version: String,
    /// The negotiated cipher suite (`TLS13_AES_256_GCM_SHA384`, ...).
    pub cipher_suite: String,
    /// Whether the peer's certificate chain was verified against the trust anchors and
    /// matched `server_name` (RFC 5922 §7.2).
    pub peer_verified: bool,
    /// The name the certificate was checked against (the SIP domain or IP address); on a
    /// connection we accepted (the driver's `TransportConfig::tls_listen`), the name the
    /// peer asked for (SNI), i.e. ours.
    pub server_name: Option<String>,
}

/// How a message travelled on its last hop: the transport and, for TLS, the
/// connection's parameters (RFC 7081 §7). Only the hop to or from the next SIP server
/// is covered; later hops are out of our sight (RFC 3261 §26.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignallingSecurity {
    /// The transport.
    pub transport: Transport,
    /// For TLS: the connection's parameters, when the driver reported them.
    pub tls: Option<TlsInfo>,
}

impl SignallingSecurity {
    /// Whether the hop was TLS with a verified peer certificate.
    pub fn is_verified_tls(&self) -> bool {
        self.transport == Transport::Tls && self.tls.as_ref().is_some_and(|t| t.peer_verified)
    }
}

/// Why a transport failed: the typed cause the driver reports with
/// [`Input::TransportError`] and the endpoint hands to the application in
/// [`SipEvent::TransportFailed`] (RFC 3261 §18.4: a transport failure; §8.1.3.1: the
/// request then fails as with `503 Service Unavailable`).
///
/// It lets an application tell a bad certificate (a configuration or security problem
/// that retrying will not fix) from a refused connection or a busy server. A TLS failure
/// never makes the endpoint or the driver fall back to a plain transport.
///
/// The `Display` text keeps what the operating system or the TLS library said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportFailure {
    /// The server's TLS certificate chain did not verify against the trust anchors
    /// (unknown issuer, bad signature, expired, revoked, ...): the server, or whoever
    /// answers in its place, is not trusted (RFC 5922 §7.3).
    #[error("TLS certificate not trusted: {detail}")]
    CertificateUntrusted {
        /// What the TLS library said (e.g. `invalid peer certificate: UnknownIssuer`).
        detail: String,
    },
    /// The server's TLS certificate is valid but not for the name we checked (the SIP
    /// domain of the target, RFC 5922 §7.2).
    #[error("TLS certificate does not match the server name: {detail}")]
    CertificateNameMismatch {
        /// What the TLS library said.
        detail: String,
    },
    /// The TLS layer failed for a reason other than the certificate: during the
    /// handshake (an alert from the peer, no common protocol version or cipher suite, a
    /// peer that does not speak TLS, ...) or later (a fatal alert, a corrupt record).
    #[error("TLS failure: {detail}")]
    Tls {
        /// What the TLS library said.
        detail: String,
    },
    /// Nothing listens at the target (TCP RST on connect).
    #[error("connection refused")]
    ConnectionRefused,
    /// Connecting took longer than the driver's connect timeout.
    #[error("connect timed out")]
    Timeout,
    /// An established connection was closed or reset by the peer.
    #[error("connection closed: {detail}")]
    ConnectionClosed {
        /// What the operating system said.
        detail: String,
    },
    /// Any other failure (host unreachable, send queue full, local configuration, ...),
    /// as text.
    #[error("{0}")]
    Other(String),
}

impl TransportFailure {
    /// Whether the peer's TLS certificate was refused ([`Self::CertificateUntrusted`] or
    /// [`Self::CertificateNameMismatch`]).
    pub fn is_certificate_error(&self) -> bool {
        matches!(
            self,
            Self::CertificateUntrusted { .. } | Self::CertificateNameMismatch { .. }
        )
    }
}

impl From<String> for TransportFailure {
    /// A failure known only as text: [`TransportFailure::Other`].
    fn from(text: String) -> Self {
        Self::Other(text)
    }
}

impl From<&str> for TransportFailure {
    /// A failure known only as text: [`TransportFailure::Other`].
    fn from(text: &str) -> Self {
        Self::Other(text.to_owned())
    }
}

/// Which of our requests a [`SipEvent::TransportFailed`] is about: its own failure
/// event follows.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailedRequest {
    /// A REGISTER (or un-REGISTER): [`SipEvent::RegistrationFailed`] follows.
    Register,
    /// The INVITE of our call: [`SipEvent::CallFailed`] follows.
    Invite(CallId),
    /// A re-INVITE: [`SipEvent::ReinviteCompleted`] follows.
    Reinvite(CallId),
    /// A BYE: [`SipEvent::CallEnded`] follows.
    Bye(CallId),
    /// A CANCEL of our call (no event of its own follows).
    Cancel(CallId),
    /// An OPTIONS: [`SipEvent::OptionsResponse`] follows.
    Options(RequestId),
    /// A MESSAGE: [`SipEvent::MessageResponse`] follows.
    Message(RequestId),
    /// A SUBSCRIBE: [`SipEvent::SubscriptionTerminated`] follows.
    Subscribe(SubscriptionId),
    /// Our response to an incoming call could not be sent (RFC 3261 §17.2.4):
    /// [`SipEvent::CallCancelled`] follows.
    IncomingCall(CallId),
    /// Another request (in-dialog INFO, NOTIFY, ...; no event of its own follows).
    Other(Method),
}

/// Input from the driver.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Input {
    /// A datagram (or framed stream message) arrived.
    Receive {
        /// The bytes.
        data: Bytes,
        /// From where.
        source: SocketAddr,
        /// Over which transport.
        transport: Transport,
    },
    /// The deadline returned by [`Output::Timeout`] was reached.
    Timeout,
    /// Sending to `target` failed, or its connection broke (RFC 3261 §18.4): every
    /// transaction sending there fails; the application sees
    /// [`SipEvent::TransportFailed`] with `reason`, then the request's own failure event.
    TransportError {
        /// The target.
        target: Target,
        /// Why (a string converts into [`TransportFailure::Other`]).
        reason: TransportFailure,
    },
    /// A TLS connection to `target` is established (the driver verified the peer's
    /// certificate); its parameters are attached to the events of messages over it
    /// until a [`Input::TransportError`] for the target ends it.
    Connected {
        /// The target.
        target: Target,
        /// The connection's parameters.
        tls: TlsInfo,
    },
}

/// [`Endpoint::try_handle_input`] refused an input because
/// [`EndpointConfig::event_queue_limit`] events wait to be drained (the application is
/// behind). The input is handed back untouched: drain [`Endpoint::poll_output`], then
/// offer it again, and read nothing new meanwhile.
#[derive(Debug, Clone, thiserror::Error)]
#[error("event queue full ({queued} events undrained): input refused, drain poll_output first")]
pub struct Backpressure {
    /// The refused input (boxed: an error stays small).
    pub input: Box<Input>,
    /// How many events wait.
    pub queued: usize,
}

/// Output for the driver.
#[derive(Debug, Clone)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)] // drained one at a time by the driver
pub enum Output {
    /// Send these bytes.
    Transmit(Transmit),
    /// Tell the application.
    Event(SipEvent),
    /// Nothing more for now; call `handle_input(Input::Timeout)` at this instant.
    Timeout(Instant),
}

/// A command the endpoint cannot carry out (API misuse or nothing to route to).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// No call with this handle (API misuse, or it ended).
    #[error("no call {0:?}")]
    UnknownCall(CallId),
    /// No subscription with this handle.
    #[error("no subscription {0:?}")]
    UnknownSubscription(SubscriptionId),
    /// The call is not in a state allowing this (API misuse).
    #[error("call {call:?} cannot {action} now")]
    WrongState {
        /// The call.
        call: CallId,
        /// What was attempted.
        action: &'static str,
    },
    /// The command needs an account and none is configured (API misuse).
    #[error("no account configured")]
    NoAccount,
    /// No address to send to: the URI host is not an IP address and no proxy or
    /// registrar is configured (configuration).
    #[error("no route to {0}")]
    NoRoute(String),
    /// Too many calls or subscriptions.
    #[error("too many calls or subscriptions")]
    Overloaded,
    /// The transaction layer refused the request (our bug).
    #[error("transaction layer refused the request: {0}")]
    Transaction(String),
    /// A status code out of range for this command (API misuse).
    #[error("status {0} is not valid here")]
    BadStatus(u16),
    /// The request would go over a plain transport and
    /// [`EndpointConfig::allow_insecure_transport`] is not set (configuration).
    #[error("refusing to send over plain {0}: TLS required (allow_insecure_transport is off)")]
    InsecureTransport(Target),
    /// A `sips:` URI or a dialog established over TLS would continue over a plain
    /// transport (the peer's Contact or Record-Route asked for it, or only a plain route
    /// exists); refused rather than downgraded (RFC 3261 §26.2.2, RFC 5630 §3.1.3).
    #[error("refusing to leave TLS for {0}: the request must stay secure")]
    Downgrade(String),
}

/// What a client transaction is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Register,
    Invite(CallId),
    Reinvite(CallId),
    Bye(CallId),
    Cancel(CallId),
    Options(RequestId),
    Message(RequestId),
    Subscribe(SubscriptionId),
    /// Another in-dialog request; only failures matter.
    Other,
}

#[derive(Debug, Clone)]
struct Pending {
    purpose: Purpose,
    /// Shared: a `Pending` is cloned for every response to it.
    request: Arc<Request>,
    target: Target,
    auth_attempts: u8,
    /// How the size rule of RFC 3261 §18.1.1 applied to this request.
    size_rule: SizeRule,
    /// A response arrived: the request reached the peer (no UDP retry), and after a final
    /// one a later transport failure of the target no longer concerns it.
    answered: Answered,
}

/// How far the responses to a pending request went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answered {
    /// No response yet.
    No,
    /// A provisional response.
    Provisional,
    /// A final response (an INVITE's 2xx leaves its transaction alive for Timer M).
    Finally,
}

impl Pending {
    /// The target the request was addressed to, before the size rule moved it to TCP
    /// (where the server's realm is remembered, [`Endpoint::preauthorize`]).
    fn origin_target(&self) -> Target {
        match self.size_rule {
            SizeRule::MovedToTcp => Target::new(Transport::Udp, self.target.addr),
            _ => self.target,
        }
    }
}

/// The UDP size rule (RFC 3261 §18.1.1, [`EndpointConfig::udp_size_threshold`]) for
/// one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SizeRule {
    /// The request may move from UDP to TCP if it is too large.
    Apply,
    /// It was too large for UDP and went over TCP instead.
    MovedToTcp,
    /// TCP was refused at the target: it stays on UDP whatever its size (a re-sent
    /// request with credentials included).
    UdpOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallState {
    /// UAC: INVITE sent, no provisional yet.
    Calling,
    /// UAC: a provisional arrived.
    Proceeding,
    /// UAS: INVITE received, not yet answered finally.
    Incoming,
    /// 2xx sent or received.
    Confirmed,
    /// BYE sent.
    Terminating,
}

/// A 2xx to INVITE we retransmit until the ACK comes (RFC 3261 §13.3.1.4).
#[derive(Debug, Clone)]
struct Retransmit {
    response: Response,
    target: Target,
    cseq: u32,
    next: Instant,
    interval: Duration,
    give_up: Instant,
}

/// What a `call_timers` entry is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum CallTimer {
    /// The call's [`Retransmit`] is due.
    Retransmit,
    /// The stored ACK may be dropped: 64*T1 after it was sent no 2xx retransmission
    /// can come any more (RFC 3261 §13.3.1.4, §13.2.2.4).
    AckExpiry,
}

/// An ACK we sent for a 2xx, kept printed for the 2xx's retransmissions.
#[derive(Debug, Clone)]
struct StoredAck {
    cseq: u32,
    data: Bytes,
    target: Target,
    until: Instant,
}

#[derive(Debug, Clone)]
struct Call {
    state: CallState,
    uac: bool,
    call_id: String,
    /// UAC: the last INVITE sent (CANCEL copies it); UAS: the INVITE received. Dropped
    /// once the INVITE got its final response: CANCEL (§9.1) and provisional or final
    /// responses to it no longer apply, and the ACK of the 2xx is kept on its own.
    invite: Option<Box<Request>>,
    /// The CSeq number of the initial INVITE (tells its 2xx/ACK from a re-INVITE's).
    invite_seq: u32,
    invite_target: Target,
    /// UAS: where the INVITE came from.
    source: Option<Target>,
    local_tag: String,
    dialog: Option<Dialog>,
    /// UAC: the ACK for the latest 2xx (CSeq, printed ACK, target), re-sent on its
    /// retransmissions (§13.2.2.4). Kept printed: a fraction of the parsed size.
    ack: Option<StoredAck>,
    /// UAC: 2xx from other forks (To tag, printed ACK, target), ACKed and ended with BYE.
    forks: Vec<(String, Bytes, Target)>,
    cancel_requested: bool,
    cancel_sent: bool,
    got_provisional: bool,
    answered_event: bool,
    retransmit: Option<Box<Retransmit>>,
    /// UAC re-INVITE in flight.
    reinvite_pending: bool,
    /// UAS: an incoming re-INVITE waiting for our answer.
    reinvite_server: Option<Box<(TransactionKey, Request)>>,
    /// UAS initial INVITE server transaction, until answered finally.
    server_key: Option<TransactionKey>,
    /// UAS: the caller asked for privacy; no Call-Info of ours in the answer.
    anonymous: bool,
    /// UAC: where 3xx responses sent the call, once one did.
    redirects: Option<Box<Redirects>>,
}

/// The targets of an outgoing call's redirections (RFC 3261 §8.1.3.4).
#[derive(Debug, Clone, Default)]
struct Redirects {
    /// Contacts still to try, best `q` first.
    queue: VecDeque<Uri>,
    /// Every Request-URI tried, the first included (each is tried once: no loops).
    tried: Vec<Uri>,
}

impl Call {
    /// A call in its first state as UAC (INVITE `invite` sent to `target` with CSeq 1);
    /// the UAS side overrides state, direction, CSeq and server transaction.
    fn new(
        call_id: String,
        local_tag: String,
        invite: Request,
        target: Target,
        anonymous: bool,
    ) -> Call {
        Call {
            state: CallState::Calling,
            uac: true,
            call_id,
            invite: Some(Box::new(invite)),
            invite_seq: 1,
            invite_target: target,
            source: None,
            local_tag,
            dialog: None,
            ack: None,
            forks: Vec::new(),
            cancel_requested: false,
            cancel_sent: false,
            got_provisional: false,
            answered_event: false,
            retransmit: None,
            reinvite_pending: false,
            reinvite_server: None,
            server_key: None,
            anonymous,
            redirects: None,
        }
    }
}

#[derive(Debug, Clone)]
struct Subscription {
    uri: Uri,
    event: String,
    call_id: String,
    from: NameAddr,
    to: NameAddr,
    cseq: u32,
    dialog: Option<Dialog>,
    expires: u32,
    refresh_at: Option<Instant>,
    unsubscribing: bool,
    target: Target,
}

/// The sans-IO SIP user agent. See the [module documentation](self).
pub struct Endpoint {
    config: EndpointConfig,
    tx: TransactionLayer,
    rng: StdRng,
    digest: Option<DigestSession>,
    now: Option<Instant>,
    registration: Option<Registration>,
    pending: HashMap<TransactionKey, Pending>,
    /// Boxed: a `Call` (with its `Dialog`) is ~1 KB, and a map slot of that size costs the
    /// whole spare capacity of the map (measured: ~4 KB per dialog in a burst of 10,000).
    calls: HashMap<CallId, Box<Call>>,
    /// Calls by SIP Call-ID, then our tag: in-dialog requests and stray 2xx find their
    /// call without scanning all calls (the dialog id of RFC 3261 §12 is Call-ID, local
    /// tag, remote tag; our tag alone already tells our calls apart).
    by_call_id: HashMap<String, Vec<(String, CallId)>>,
    /// Incoming calls by their INVITE server transaction, until answered finally: the
    /// transaction a CANCEL matches (RFC 3261 §9.2).
    by_server_key: HashMap<TransactionKey, CallId>,
    /// Per-call deadlines: 2xx retransmission (RFC 3261 §13.3.1.4), one entry per call
    /// with a [`Retransmit`] at `min(next, give_up)`; and the end of a stored ACK.
    call_timers: BTreeSet<(Instant, CallId, CallTimer)>,
    subscriptions: HashMap<SubscriptionId, Subscription>,
    next_id: u64,
    events: VecDeque<SipEvent>,
    /// Established TLS connections (from [`Input::Connected`]), at most
    /// [`MAX_CONNECTIONS`].
    connections: HashMap<Target, TlsInfo>,
    /// The digest realm each server challenged us with, by (server, proxy challenge):
    /// later requests to it carry credentials pre-emptively (RFC 7616 §3.4.5).
    auth_realms: HashMap<(Target, bool), String>,
    /// The transport failure being handled (set during one
    /// [`Endpoint::handle_input`] of [`Input::TransportError`]): its typed cause for the
    /// events of the transactions it ends.
    transport_failure: Option<(Target, TransportFailure)>,
}

/// Upper bound on remembered (server, realm) pairs.
const MAX_AUTH_REALMS: usize = 16;

/// Upper bound on remembered TLS connections.
const MAX_CONNECTIONS: usize = 1024;

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("local_addr", &self.config.local_addr)
            .field("calls", &self.calls.len())
            .field("subscriptions", &self.subscriptions.len())
            .field("transactions", &self.tx.len())
            .finish()
    }
}

fn random_hex(rng: &mut StdRng, bytes: usize) -> String {
    let mut out = String::with_capacity(bytes * 2);
    for _ in 0..bytes {
        let b = (rng.next_u32() & 0xff) as u8;
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

/// Makes the top Via of our own request name `transport` (`SIP/2.0/UDP` →
/// `SIP/2.0/TCP`): RFC 3261 §18.1.1 requires the Via to say how the request travels.
/// A Via that is not of the form `SIP/2.0/<token> ...` is left alone.
fn set_via_transport(req: &mut Request, transport: Transport) {
    let Some(via) = req.headers.get("Via") else {
        return;
    };
    let Some(rest) = via.strip_prefix("SIP/2.0/") else {
        return;
    };
    let token_len = rest
        .find(|c: char| c.is_ascii_whitespace())
        .unwrap_or(rest.len());
    let (token, tail) = rest.split_at(token_len);
    if token.eq_ignore_ascii_case(transport.as_str()) {
        return;
    }
    let new = format!("SIP/2.0/{}{tail}", transport.as_str());
    req.headers.remove_first("Via");
    req.headers.insert_first("Via", new);
}

fn host_of(addr: SocketAddr) -> Host {
    match addr {
        SocketAddr::V4(a) => Host::Ipv4(*a.ip()),
        SocketAddr::V6(a) => Host::Ipv6(*a.ip()),
    }
}

/// The host and port of `uri` as a socket address, when the host is an IP literal.
fn uri_addr(uri: &Uri, transport: Transport) -> Option<SocketAddr> {
    let ip = match &uri.host {
        Host::Ipv4(a) => std::net::IpAddr::V4(*a),
        Host::Ipv6(a) => std::net::IpAddr::V6(*a),
        Host::Domain(_) => return None,
    };
    Some(SocketAddr::new(
        ip,
        uri.port.unwrap_or(transport.default_port()),
    ))
}

fn header_reason(status: u16) -> &'static str {
    crate::msg::default_reason(status)
}

impl Endpoint {
    /// A new endpoint with a 64-bit seed, for reproducible tests and simulations: tags,
    /// Call-IDs, branches and client nonces are then predictable by whoever knows or
    /// guesses the seed. Production code uses [`Endpoint::from_seed`] with 256 bits of
    /// fresh OS randomness (as the driver's `ua::client::Client` does).
    pub fn new(config: EndpointConfig, seed: u64) -> Self {
        Self::with_rng(config, StdRng::seed_from_u64(seed))
    }

    /// A new endpoint whose random generator (tags, Call-IDs, branches, digest client
    /// nonces) is seeded with `seed`; the driver passes 32 bytes of OS randomness. The
    /// core reads no entropy of its own (sans-IO).
    pub fn from_seed(config: EndpointConfig, seed: [u8; 32]) -> Self {
        Self::with_rng(config, StdRng::from_seed(seed))
    }

    fn with_rng(config: EndpointConfig, rng: StdRng) -> Self {
        let digest = config
            .account
            .as_ref()
            .map(|a| DigestSession::new(DigestCredentials::new(&a.username, &a.password)));
        Endpoint {
            tx: TransactionLayer::new(config.timers),
            config,
            rng,
            digest,
            now: None,
            registration: None,
            pending: HashMap::new(),
            calls: HashMap::new(),
            by_call_id: HashMap::new(),
            by_server_key: HashMap::new(),
            call_timers: BTreeSet::new(),
            subscriptions: HashMap::new(),
            next_id: 1,
            events: VecDeque::new(),
            connections: HashMap::new(),
            auth_realms: HashMap::new(),
            transport_failure: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    /// Whether the registrar accepted our binding and it has not been removed.
    pub fn is_registered(&self) -> bool {
        self.registration.as_ref().is_some_and(|r| r.registered)
    }

    /// When the registration will be refreshed, if registered.
    pub fn registration_refresh_at(&self) -> Option<Instant> {
        self.registration.as_ref().and_then(|r| r.refresh_at)
    }

    /// Our Contact URI.
    pub fn contact_uri(&self) -> Uri {
        let user = if self.config.contact_user.is_empty() {
            self.config
                .account
                .as_ref()
                .and_then(|a| a.aor.user.clone())
        } else {
            Some(self.config.contact_user.clone())
        };
        let sent_by = self.sent_by();
        let mut uri = Uri::sip(user.as_deref(), host_of(sent_by));
        uri.port = Some(sent_by.port());
        if self.config.transport != Transport::Udp {
            uri.params.set(
                "transport",
                Some(self.config.transport.as_str().to_ascii_lowercase()),
            );
        }
        uri
    }

    /// The security of the hop to or from `target`: its transport and, for TLS, the
    /// parameters the driver reported for that connection ([`Input::Connected`]).
    pub fn security_of(&self, target: &Target) -> SignallingSecurity {
        SignallingSecurity {
            transport: target.transport,
            tls: (target.transport == Transport::Tls)
                .then(|| self.connections.get(target).cloned())
                .flatten(),
        }
    }

    /// Our address-of-record: the account's, else our Contact.
    pub fn local_uri(&self) -> Uri {
        match &self.config.account {
            Some(a) => a.aor.clone(),
            None => self.contact_uri(),
        }
    }

    // ------------------------------------------------------------------ I/O contract

    /// Whether undrained events reached [`EndpointConfig::event_queue_limit`]: the driver
    /// should drain [`Endpoint::poll_output`] before reading more input.
    pub fn is_backpressured(&self) -> bool {
        self.events.len() >= self.config.event_queue_limit.max(1)
    }

    /// Feeds input at `now` unless [`Endpoint::is_backpressured`]; then hands the input
    /// back in [`Backpressure`] (nothing is lost; offer it again after draining). Drivers
    /// use this so that the event queue stays bounded.
    pub fn try_handle_input(&mut self, now: Instant, input: Input) -> Result<(), Backpressure> {
        if self.is_backpressured() {
            return Err(Backpressure {
                input: Box::new(input),
                queued: self.events.len(),
            });
        }
        self.handle_input(now, input);
        Ok(())
    }

    /// Feeds input at `now`, whatever the number of undrained events (no event is ever
    /// dropped; a caller that does not drain lets the queue grow — drivers use
    /// [`Endpoint::try_handle_input`]).
    pub fn handle_input(&mut self, now: Instant, input: Input) {
        self.now = Some(now);
        match input {
            Input::Receive {
                data,
                source,
                transport,
            } => {
                if transport != Transport::Tls && !self.config.allow_insecure_transport {
                    tracing::warn!(%source, %transport, "message over a plain transport dropped");
                } else {
                    self.tx.handle_datagram(now, data, source, transport);
                }
            }
            Input::Timeout => {
                self.tx.handle_timeout(now);
                self.fire_timers(now);
            }
            Input::TransportError { target, reason } => {
                self.connections.remove(&target);
                self.tx
                    .handle_transport_error(now, &target, &reason.to_string());
                // The transaction layer reports the failed transactions as text; their
                // events are handled below, during this call, with the typed cause.
                self.transport_failure = Some((target, reason));
            }
            Input::Connected { target, tls } => {
                if self.connections.len() >= MAX_CONNECTIONS
                    && !self.connections.contains_key(&target)
                {
                    // Forgetting one only makes its later events report no TLS details
                    // (the safe direction): nothing is trusted for lack of them.
                    if let Some(k) = self.connections.keys().next().copied() {
                        self.connections.remove(&k);
                    }
                }
                self.connections.insert(target, tls);
            }
        }
        self.process_tx_events(now);
        if let Some((target, reason)) = self.transport_failure.take() {
            self.on_flow_lost(now, target, reason);
        }
    }

    /// The next output. Returns [`Output::Timeout`] when nothing else is queued.
    pub fn poll_output(&mut self) -> Option<Output> {
        if let Some(t) = self.tx.poll_transmit() {
            return Some(Output::Transmit(t));
        }
        if let Some(e) = self.events.pop_front() {
            return Some(Output::Event(e));
        }
        if self.events.capacity() > 0 {
            // Drained: give the memory back (an event is ~750 B, and an idle endpoint
            // would otherwise keep the capacity of its last burst — measured ~3 KB per
            // registered UA at 10,000 UAs).
            self.events = VecDeque::new();
        }
        let base = self.now?;
        let at = self
            .poll_timeout()
            .unwrap_or(base + Duration::from_secs(3600));
        Some(Output::Timeout(at))
    }

    /// The earliest deadline of the endpoint and its transactions.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut at = self.tx.poll_timeout();
        let mut take = |t: Option<Instant>| {
            if let Some(t) = t {
                at = Some(at.map_or(t, |a| a.min(t)));
            }
        };
        take(self.registration.as_ref().and_then(|r| r.refresh_at));
        for s in self.subscriptions.values() {
            take(s.refresh_at);
        }
        take(self.call_timers.first().map(|(t, _, _)| *t));
        at
    }

    // ------------------------------------------------------------------ call table

    /// Files a new call and indexes it by Call-ID and our tag (and by its INVITE server
    /// transaction for an incoming call).
    fn insert_call(&mut self, id: CallId, call: Call) {
        self.by_call_id
            .entry(call.call_id.clone())
            .or_default()
            .push((call.local_tag.clone(), id));
        if let Some(k) = &call.server_key {
            self.by_server_key.insert(k.clone(), id);
        }
        if let Some(r) = &call.retransmit {
            self.call_timers
                .insert((r.next.min(r.give_up), id, CallTimer::Retransmit));
        }
        if let Some(a) = &call.ack {
            self.call_timers.insert((a.until, id, CallTimer::AckExpiry));
        }
        self.calls.insert(id, Box::new(call));
    }

    /// Removes a call and every index entry pointing at it.
    fn remove_call(&mut self, id: CallId) -> Option<Call> {
        let call = self.calls.remove(&id)?;
        if let Some(list) = self.by_call_id.get_mut(&call.call_id) {
            list.retain(|(_, c)| *c != id);
            if list.is_empty() {
                self.by_call_id.remove(&call.call_id);
            }
        }
        if let Some(k) = &call.server_key {
            self.by_server_key.remove(k);
        }
        if let Some(r) = &call.retransmit {
            self.call_timers
                .remove(&(r.next.min(r.give_up), id, CallTimer::Retransmit));
        }
        if let Some(a) = &call.ack {
            self.call_timers
                .remove(&(a.until, id, CallTimer::AckExpiry));
        }
        Some(*call)
    }

    /// Replaces the 2xx retransmission state of `id`, keeping `call_timers` exact.
    fn set_retransmit(&mut self, id: CallId, r: Option<Box<Retransmit>>) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        if let Some(old) = &c.retransmit {
            self.call_timers
                .remove(&(old.next.min(old.give_up), id, CallTimer::Retransmit));
        }
        if let Some(new) = &r {
            self.call_timers
                .insert((new.next.min(new.give_up), id, CallTimer::Retransmit));
        }
        c.retransmit = r;
    }

    /// Replaces the stored ACK of `id`, keeping `call_timers` exact.
    fn set_ack(&mut self, id: CallId, a: Option<StoredAck>) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        if let Some(old) = &c.ack {
            self.call_timers
                .remove(&(old.until, id, CallTimer::AckExpiry));
        }
        if let Some(new) = &a {
            self.call_timers
                .insert((new.until, id, CallTimer::AckExpiry));
        }
        c.ack = a;
    }

    /// Ends the INVITE server transaction bookkeeping of an incoming call (it was
    /// answered finally).
    fn clear_server_key(&mut self, id: CallId) {
        if let Some(k) = self.calls.get_mut(&id).and_then(|c| c.server_key.take()) {
            self.by_server_key.remove(&k);
        }
    }

    /// The call whose confirmed or early dialog an in-dialog request from the peer
    /// belongs to (RFC 3261 §12.2.2): Call-ID, To tag = our tag, From tag = the
    /// peer's tag. One parse of each header and one hash lookup.
    fn find_call_for(&self, req: &Request) -> Option<CallId> {
        let call_id = req.headers.call_id().ok()?;
        let to = req.headers.to().ok()?;
        let local = to.tag()?;
        let from = req.headers.from().ok()?;
        let remote = from.tag()?;
        let (_, id) = self
            .by_call_id
            .get(call_id)?
            .iter()
            .find(|(tag, _)| tag == local)?;
        let d = self.calls.get(id)?.dialog.as_ref()?;
        d.id.matches(call_id, local, remote).then_some(*id)
    }

    /// Queues an event. Never drops one: the queue is bounded by
    /// [`Endpoint::try_handle_input`] refusing input once it holds
    /// [`EndpointConfig::event_queue_limit`] events (one input adds a bounded number).
    /// Tells the application that a request the endpoint sends on its own (ACK, BYE)
    /// was not sent because it would have left TLS or used a refused plain transport.
    fn report_refused_route(&mut self, call: CallId, e: &EndpointError) {
        if matches!(
            e,
            EndpointError::Downgrade(_) | EndpointError::InsecureTransport(_)
        ) {
            self.push_event(SipEvent::InsecureRouteRefused {
                call,
                reason: e.to_string(),
            });
        }
    }

    fn push_event(&mut self, e: SipEvent) {
        tracing::debug!(event = ?e, "sip event");
        self.events.push_back(e);
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn new_tag(&mut self) -> String {
        random_hex(&mut self.rng, 8)
    }

    fn new_call_id(&mut self) -> String {
        random_hex(&mut self.rng, 16)
    }

    // ------------------------------------------------------------------ building

    fn via(&mut self) -> String {
        let branch = new_branch(&mut self.rng);
        format!(
            "SIP/2.0/{} {};branch={};rport",
            self.config.transport.as_str(),
            self.sent_by(),
            branch
        )
    }

    /// The address in Via sent-by and Contact: the local address, with the transport's
    /// default port when the port is 0. A UA with only outgoing TLS connections has no
    /// listening port (port 0 is no valid sent-by, and Kamailio drops requests routed
    /// to it); requests reach it over its own connection (the proxy's alias for it,
    /// RFC 5923 §5, `;rport` of RFC 3581).
    fn sent_by(&self) -> SocketAddr {
        let mut a = self.config.local_addr;
        if a.port() == 0 {
            a.set_port(self.config.transport.default_port());
        }
        a
    }

    fn allow(&self) -> String {
        let mut s = String::from("INVITE, ACK, CANCEL, BYE, OPTIONS, NOTIFY, INFO");
        if self.config.allow_message {
            s.push_str(", MESSAGE");
        }
        s
    }

    /// Adds Via (fresh branch), Max-Forwards, Contact (where needed), User-Agent,
    /// Allow and the body headers. Call on a request that has Route/From/To/Call-ID/CSeq.
    fn finish_request(&mut self, req: &mut Request, body: Bytes, content_type: Option<&str>) {
        let via = self.via();
        req.headers.insert_first("Via", via);
        if !req.headers.contains("Max-Forwards") {
            req.headers.push("Max-Forwards", "70");
        }
        if matches!(
            req.method,
            Method::Invite | Method::Subscribe | Method::Register | Method::Notify
        ) && !req.headers.contains("Contact")
        {
            req.headers
                .push("Contact", format!("<{}>", self.contact_uri()));
        }
        req.headers
            .push("User-Agent", self.config.user_agent.clone());
        if matches!(req.method, Method::Invite | Method::Options) {
            req.headers.push("Allow", self.allow());
        }
        if !body.is_empty() {
            req.headers.push(
                "Content-Type",
                content_type.unwrap_or("application/sdp").to_owned(),
            );
        }
        req.headers.push("Content-Length", body.len().to_string());
        req.body = body;
    }

    fn local_from(&mut self, tag: &str) -> NameAddr {
        let mut from = NameAddr::new(self.local_uri());
        if let Some(name) = self
            .config
            .account
            .as_ref()
            .and_then(|a| a.display_name.clone())
        {
            from = from.with_display_name(name);
        }
        from.with_tag(tag)
    }

    /// Where an out-of-dialog request for `uri` goes (RFC 3261 §8.1.2): the outbound
    /// proxy, else the URI's own IP address, else the registrar.
    /// A `sips:` URI (RFC 3261 §26.2.2) must be reached over TLS on every hop we
    /// control: refuses any other route.
    fn route_out_of_dialog(&self, uri: &Uri) -> Result<Target, EndpointError> {
        let secure = uri.scheme == Scheme::Sips;
        self.route_to(uri, secure)
    }

    /// The route for `uri`; with `secure`, only a TLS target is acceptable.
    fn route_to(&self, uri: &Uri, secure: bool) -> Result<Target, EndpointError> {
        let target = self.route_unchecked(uri, secure)?;
        if secure && target.transport != Transport::Tls {
            tracing::warn!(%uri, %target, "refusing to downgrade a secure request");
            return Err(EndpointError::Downgrade(format!("{uri} via {target}")));
        }
        Ok(target)
    }

    fn route_unchecked(&self, uri: &Uri, secure: bool) -> Result<Target, EndpointError> {
        if let Some(acc) = &self.config.account
            && let Some(p) = acc.outbound_proxy
        {
            return Ok(p);
        }
        let transport = match uri.params.get("transport").flatten() {
            // An unknown transport token is no licence to fall back to a plain one.
            Some(t) => Transport::parse(t)
                .ok_or_else(|| EndpointError::NoRoute(format!("{uri}: unknown transport")))?,
            None if secure => Transport::Tls,
            None => self.config.transport,
        };
        if let Some(addr) = uri_addr(uri, transport) {
            return Ok(Target::new(transport, addr));
        }
        match &self.config.account {
            Some(acc) => Ok(acc.registrar),
            None => Err(EndpointError::NoRoute(uri.to_string())),
        }
    }

    /// Where an in-dialog request goes: the host of the first Route or of the remote
    /// target (RFC 3261 §12.2.1.1), else the out-of-dialog route. A secure dialog
    /// ([`Dialog::secure`]: `sips:` or established over TLS) stays on TLS: a hop asking
    /// for another transport is refused with [`EndpointError::Downgrade`].
    fn route_in_dialog(&self, dialog: &Dialog) -> Result<Target, EndpointError> {
        let hop = dialog.next_hop();
        let secure = dialog.secure || hop.scheme == Scheme::Sips;
        self.route_to(&hop, secure)
    }

    /// The name a TLS connection to `target` must authenticate (RFC 5922 §4, §7.2):
    /// the SIP domain of the account for the registrar and outbound proxy (the domain
    /// the user configured them for), else the target's IP address (the host of the
    /// IP-literal URI the target was taken from). The driver sends it as SNI and checks
    /// the certificate against it.
    pub fn tls_server_name(&self, target: &Target) -> String {
        if let Some(acc) = &self.config.account
            && (acc.registrar == *target || acc.outbound_proxy == Some(*target))
            && let Host::Domain(d) = &acc.aor.host
        {
            return d.clone();
        }
        target.addr.ip().to_string()
    }

    fn send(
        &mut self,
        now: Instant,
        request: Request,
        target: Target,
        purpose: Purpose,
        auth_attempts: u8,
    ) -> Result<TransactionKey, EndpointError> {
        self.send_sized(
            now,
            request,
            target,
            purpose,
            auth_attempts,
            SizeRule::Apply,
        )
    }

    /// Sends `request` to `target` in a new client transaction. With [`SizeRule::Apply`]
    /// a request too large for UDP goes over TCP instead (RFC 3261 §18.1.1); the top Via
    /// always names the transport actually used. The request and target as sent are
    /// kept in `pending` under the returned key.
    fn send_sized(
        &mut self,
        now: Instant,
        mut request: Request,
        mut target: Target,
        purpose: Purpose,
        auth_attempts: u8,
        mut size_rule: SizeRule,
    ) -> Result<TransactionKey, EndpointError> {
        if target.transport != Transport::Tls && !self.config.allow_insecure_transport {
            tracing::warn!(method = %request.method, %target, "plain transport refused");
            return Err(EndpointError::InsecureTransport(target));
        }
        if auth_attempts == 0 {
            self.preauthorize(&mut request, target);
        }
        if size_rule == SizeRule::Apply
            && target.transport == Transport::Udp
            && request.method != Method::Cancel
            && let Some(limit) = self.config.udp_size_threshold
        {
            let size = request.printed_len();
            if size > limit {
                tracing::debug!(
                    method = %request.method, %target, size, limit,
                    "request too large for UDP: sending it over TCP (RFC 3261 §18.1.1)"
                );
                target = Target::new(Transport::Tcp, target.addr);
                size_rule = SizeRule::MovedToTcp;
            }
        }
        set_via_transport(&mut request, target.transport);
        tracing::debug!(method = %request.method, uri = %request.uri(), %target, "sending request");
        let key = self
            .tx
            .send_request(now, request.clone(), target)
            .map_err(|e| EndpointError::Transaction(e.to_string()))?;
        self.pending.insert(
            key.clone(),
            Pending {
                purpose,
                request: Arc::new(request),
                target,
                auth_attempts,
                size_rule,
                answered: Answered::No,
            },
        );
        Ok(key)
    }

    /// Adds credentials to a new out-of-dialog request for a server that challenged us
    /// before (RFC 7616 §3.4.5, RFC 3261 §22.3): the remembered nonce of that server's
    /// realm with the next nonce count, saving the 401/407 round trip. A server that no
    /// longer accepts the nonce answers 401/407 (often `stale=true`) and
    /// [`Endpoint::retry_with_auth`] takes the challenge path as for a first request.
    fn preauthorize(&mut self, req: &mut Request, target: Target) {
        if matches!(req.method, Method::Ack | Method::Cancel)
            || req.headers.contains("Authorization")
            || req.headers.contains("Proxy-Authorization")
            || req.headers.to().ok().is_some_and(|t| t.tag().is_some())
        {
            return;
        }
        // REGISTER is challenged by the registrar (401), the rest by the proxy (407).
        let proxy = req.method != Method::Register;
        let Some(realm) = self.auth_realms.get(&(target, proxy)) else {
            return;
        };
        let Some(session) = self.digest.as_mut() else {
            return;
        };
        let method = req.method.as_str().to_owned();
        let uri = req.uri().to_string();
        if let Some(creds) = session.authorize(Some(realm), &method, &uri, &req.body, &mut self.rng)
        {
            tracing::debug!(%target, realm, %method, "pre-emptive credentials");
            let header = if proxy {
                "Proxy-Authorization"
            } else {
                "Authorization"
            };
            req.headers.push(header, creds.to_string());
        }
    }

    /// A response to `req` (RFC 3261 §8.2.6): Via, From, To (with `to_tag` if the To
    /// has none), Call-ID and CSeq copied; Record-Route copied for dialog-creating
    /// responses (§12.1.1).
    fn response_for(&self, req: &Request, status: u16, to_tag: Option<&str>) -> Response {
        let mut resp = Response::new(status, header_reason(status));
        for v in req.headers.get_all("Via") {
            resp.headers.push("Via", v.to_owned());
        }
        if let Some(f) = req.headers.get("From") {
            resp.headers.push("From", f.to_owned());
        }
        match (req.headers.to(), to_tag) {
            (Ok(to), Some(tag)) if to.tag().is_none() && status > 100 => {
                resp.headers.push("To", to.with_tag(tag).to_string());
            }
            _ => {
                if let Some(t) = req.headers.get("To") {
                    resp.headers.push("To", t.to_owned());
                }
            }
        }
        if let Some(c) = req.headers.get("Call-ID") {
            resp.headers.push("Call-ID", c.to_owned());
        }
        if let Some(c) = req.headers.get("CSeq") {
            resp.headers.push("CSeq", c.to_owned());
        }
        if matches!(req.method, Method::Invite | Method::Subscribe) && (101..300).contains(&status)
        {
            for rr in req.headers.get_all("Record-Route") {
                resp.headers.push("Record-Route", rr.to_owned());
            }
        }
        resp.headers
            .push("User-Agent", self.config.user_agent.clone());
        resp
    }

    fn reply(&mut self, now: Instant, key: &TransactionKey, req: &Request, status: u16) {
        let mut resp = self.response_for(req, status, None);
        if status == 405 {
            resp.headers.push("Allow", self.allow());
        }
        resp.headers.push("Content-Length", "0");
        if let Err(e) = self.tx.send_response(now, key, resp) {
            tracing::debug!(error = %e, "could not answer");
        }
    }

    // ------------------------------------------------------------------ registration

    /// Sends REGISTER for the account (RFC 3261 §10.2); also the refresh path: a
    /// second call refreshes the binding with the same Call-ID and CSeq + 1.
    pub fn register(&mut self, now: Instant) -> Result<(), EndpointError> {
        self.now = Some(now);
        let acc = self
            .config
            .account
            .clone()
            .ok_or(EndpointError::NoAccount)?;
        let reg = match self.registration.take() {
            Some(r) => r,
            None => Registration {
                call_id: self.new_call_id(),
                from_tag: self.new_tag(),
                cseq: 0,
                expires: acc.expires,
                refresh_at: None,
                registered: false,
                wanted: true,
                unregistering: false,
                interval_retries: 0,
            },
        };
        self.registration = Some(reg);
        if let Some(r) = self.registration.as_mut() {
            r.wanted = true;
        }
        self.send_register(now, false)
    }

    /// Removes our binding (REGISTER with Expires: 0, RFC 3261 §10.2.2).
    pub fn unregister(&mut self, now: Instant) -> Result<(), EndpointError> {
        self.now = Some(now);
        match self.registration.as_mut() {
            Some(r) => r.wanted = false,
            None => return Err(EndpointError::NoAccount),
        }
        self.send_register(now, true)
    }

    /// A stream connection to `target` broke (RFC 5626 §4.4.1). When it carried our
    /// registration and no REGISTER is under way (a failed one is retried on its own),
    /// re-registers at once over a new connection.
    fn on_flow_lost(&mut self, now: Instant, target: Target, error: TransportFailure) {
        if target.transport == Transport::Udp {
            return;
        }
        let Some(acc) = self.config.account.as_ref() else {
            return;
        };
        if acc.registrar != target {
            return;
        }
        let Some(reg) = self.registration.as_ref() else {
            return;
        };
        if !reg.registered || !reg.wanted || reg.unregistering {
            return;
        }
        if self
            .pending
            .values()
            .any(|p| p.purpose == Purpose::Register)
        {
            return;
        }
        tracing::info!(%target, %error, "registration flow lost: re-registering");
        self.push_event(SipEvent::RegistrationFlowLost { target, error });
        if let Err(e) = self.send_register(now, false) {
            tracing::warn!(error = %e, "could not re-register");
            if let Some(reg) = self.registration.as_mut() {
                reg.registered = false;
                reg.refresh_at = Some(now + REGISTER_RETRY);
            }
            self.push_event(SipEvent::RegistrationFailed {
                status: 503,
                reason: e.to_string(),
            });
        }
    }

    fn send_register(&mut self, now: Instant, remove: bool) -> Result<(), EndpointError> {
        let acc = self
            .config
            .account
            .clone()
            .ok_or(EndpointError::NoAccount)?;
        let contact = self.contact_uri();
        let Some(reg) = self.registration.as_mut() else {
            return Err(EndpointError::NoAccount);
        };
        reg.cseq += 1;
        reg.unregistering = remove;
        reg.refresh_at = None;
        let (call_id, tag, cseq, expires) = (
            reg.call_id.clone(),
            reg.from_tag.clone(),
            reg.cseq,
            reg.expires,
        );
        let mut registrar_uri = Uri::sip(None, acc.aor.host.clone());
        registrar_uri.port = acc.aor.port;
        let mut req = Request::new(Method::Register, registrar_uri);
        let from = self.local_from(&tag);
        req.headers.push("From", from.to_string());
        req.headers
            .push("To", NameAddr::new(acc.aor.clone()).to_string());
        req.headers.push("Call-ID", call_id);
        req.headers.push("CSeq", format!("{cseq} REGISTER"));
        req.headers.push("Contact", format!("<{contact}>"));
        req.headers
            .push("Expires", if remove { 0 } else { expires }.to_string());
        self.finish_request(&mut req, Bytes::new(), None);
        self.send(now, req, acc.registrar, Purpose::Register, 0)
            .map(|_| ())
    }

    fn on_register_response(&mut self, now: Instant, p: &Pending, resp: &Response) {
        let contact = self.contact_uri();
        let Some(reg) = self.registration.as_mut() else {
            return;
        };
        match resp.status {
            200..=299 => {
                reg.interval_retries = 0;
                if reg.unregistering {
                    reg.registered = false;
                    reg.refresh_at = None;
                    if let Some(d) = self.digest.as_mut() {
                        d.reset();
                    }
                    self.auth_realms.clear();
                    self.push_event(SipEvent::Unregistered);
                } else {
                    let expires = granted_expires(resp, &contact, reg.expires);
                    reg.registered = expires > 0;
                    reg.refresh_at = (expires > 0).then(|| now + refresh_delay(expires));
                    let security = self.security_of(&p.target);
                    self.push_event(SipEvent::Registered { expires, security });
                }
            }
            423 if reg.interval_retries < MAX_INTERVAL_RETRIES => {
                // RFC 3261 §10.2.8: retry with at least Min-Expires.
                match resp.headers.min_expires() {
                    Ok(Some(min)) if min > reg.expires => {
                        reg.expires = min;
                        reg.interval_retries += 1;
                        let remove = reg.unregistering;
                        if let Err(e) = self.send_register(now, remove) {
                            tracing::warn!(error = %e, "could not retry REGISTER");
                        }
                    }
                    _ => self.push_event(SipEvent::RegistrationFailed {
                        status: 423,
                        reason: resp.reason.clone(),
                    }),
                }
            }
            status => {
                reg.interval_retries = 0;
                // A REGISTER that failed for a transient reason (timeout, transport,
                // overload) is retried later while the application wants a binding.
                let transient = matches!(status, 408 | 500 | 503 | 504);
                reg.refresh_at =
                    (transient && reg.wanted && !reg.unregistering).then(|| now + REGISTER_RETRY);
                reg.registered = false;
                self.push_event(SipEvent::RegistrationFailed {
                    status: resp.status,
                    reason: resp.reason.clone(),
                });
            }
        }
    }

    // ------------------------------------------------------------------ calls

    /// Places a call to `to` with the offer `body` (opaque, sent as application/sdp).
    pub fn invite(
        &mut self,
        now: Instant,
        to: Uri,
        body: Bytes,
        opts: CallOptions,
    ) -> Result<CallId, EndpointError> {
        self.now = Some(now);
        if self.calls.len() >= MAX_CALLS {
            return Err(EndpointError::Overloaded);
        }
        let target = self.route_out_of_dialog(&to)?;
        let tag = self.new_tag();
        let call_id = self.new_call_id();
        let mut req = Request::new(Method::Invite, to.clone());
        if opts.anonymous {
            // RFC 3323 §4.1.1.3: anonymous From, no identity hint at all.
            req.headers
                .push("From", format!("{ANONYMOUS_FROM};tag={tag}"));
            req.headers.push("Privacy", "id");
        } else {
            let from = self.local_from(&tag);
            req.headers.push("From", from.to_string());
        }
        req.headers.push("To", NameAddr::new(to).to_string());
        req.headers.push("Call-ID", call_id.clone());
        req.headers.push("CSeq", "1 INVITE");
        if opts.call_info_impp
            && !opts.anonymous
            && let Some(impp) = &self.config.call_info_impp
        {
            req.headers.push("Call-Info", impp_call_info(impp));
        }
        self.finish_request(&mut req, body, None);
        let id = CallId(self.next_id());
        let key = self.send(now, req.clone(), target, Purpose::Invite(id), 0)?;
        // Keep the INVITE as sent (with pre-emptive credentials, which its ACK copies,
        // and the Via and target of the transport it took, which its CANCEL copies).
        let (req, target) = self
            .pending
            .get(&key)
            .map_or((req, target), |p| (Request::clone(&p.request), p.target));
        self.insert_call(id, Call::new(call_id, tag, req, target, opts.anonymous));
        Ok(id)
    }

    /// Sends `180 Ringing` for an incoming call (early dialog, RFC 3261 §13.3.1.1).
    pub fn ring(&mut self, now: Instant, call: CallId) -> Result<(), EndpointError> {
        self.provisional(now, call, 180, Bytes::new())
    }

    /// Sends `183 Session Progress` with an early-media answer.
    pub fn session_progress(
        &mut self,
        now: Instant,
        call: CallId,
        body: Bytes,
    ) -> Result<(), EndpointError> {
        self.provisional(now, call, 183, body)
    }

    fn provisional(
        &mut self,
        now: Instant,
        call: CallId,
        status: u16,
        body: Bytes,
    ) -> Result<(), EndpointError> {
        self.now = Some(now);
        let contact = self.contact_uri();
        let c = self
            .calls
            .get(&call)
            .ok_or(EndpointError::UnknownCall(call))?;
        let (Some(key), CallState::Incoming, Some(invite)) =
            (c.server_key.clone(), c.state, c.invite.as_deref())
        else {
            return Err(EndpointError::WrongState {
                call,
                action: "send a provisional response",
            });
        };
        let mut resp = self.response_for(invite, status, Some(&c.local_tag));
        resp.headers.push("Contact", format!("<{contact}>"));
        if !body.is_empty() {
            resp.headers.push("Content-Type", "application/sdp");
        }
        resp.headers.push("Content-Length", body.len().to_string());
        resp.body = body;
        self.tx
            .send_response(now, &key, resp)
            .map_err(|e| EndpointError::Transaction(e.to_string()))
    }

    /// Answers an incoming call or re-INVITE with a final status: 2xx with the answer
    /// `body`, or 300-699 to refuse.
    pub fn answer(
        &mut self,
        now: Instant,
        call: CallId,
        status: u16,
        body: Bytes,
    ) -> Result<(), EndpointError> {
        self.answer_with(now, call, status, body, AnswerOptions::default())
    }

    /// Like [`Endpoint::answer`], with Call-Info values in a 2xx (RFC 7081 §3.5: e.g. our
    /// XMPP address, `purpose=impp`). On a call whose caller asked for privacy (RFC 3323)
    /// no Call-Info is added: the caller stays unlinked from our XMPP presence.
    pub fn answer_with(
        &mut self,
        now: Instant,
        call: CallId,
        status: u16,
        body: Bytes,
        opts: AnswerOptions,
    ) -> Result<(), EndpointError> {
        self.now = Some(now);
        if !(200..=699).contains(&status) {
            return Err(EndpointError::BadStatus(status));
        }
        let contact = self.contact_uri();
        let allow = self.allow();
        let c = self
            .calls
            .get(&call)
            .ok_or(EndpointError::UnknownCall(call))?;
        let (key, req, initial) = if let Some((k, r)) = c.reinvite_server.as_deref().cloned() {
            (k, r, false)
        } else if let (Some(k), CallState::Incoming, Some(inv)) =
            (c.server_key.clone(), c.state, c.invite.as_deref())
        {
            (k, inv.clone(), true)
        } else {
            return Err(EndpointError::WrongState {
                call,
                action: "answer",
            });
        };
        let mut resp = self.response_for(&req, status, Some(&c.local_tag));
        let source = c.source.unwrap_or(c.invite_target);
        if status < 300 {
            resp.headers.push("Contact", format!("<{contact}>"));
            resp.headers.push("Allow", allow);
            if c.anonymous {
                if opts.call_info_impp || !opts.call_info.is_empty() {
                    tracing::debug!(?call, "anonymous caller: no Call-Info in the answer");
                }
            } else {
                if opts.call_info_impp
                    && let Some(impp) = &self.config.call_info_impp
                {
                    resp.headers.push("Call-Info", impp_call_info(impp));
                }
                for ci in &opts.call_info {
                    resp.headers.push("Call-Info", ci.to_string());
                }
            }
            if !body.is_empty() {
                resp.headers.push("Content-Type", "application/sdp");
            }
        }
        resp.headers.push("Content-Length", body.len().to_string());
        resp.body = body;
        self.tx
            .send_response(now, &key, resp.clone())
            .map_err(|e| EndpointError::Transaction(e.to_string()))?;
        let t1 = self.config.timers.t1;
        if initial {
            self.clear_server_key(call);
        }
        let Some(c) = self.calls.get_mut(&call) else {
            return Ok(());
        };
        if !initial {
            c.reinvite_server = None;
        }
        if status < 300 {
            if initial {
                c.state = CallState::Confirmed;
                // The INVITE is answered finally: nothing will respond to it again.
                c.invite = None;
                match Dialog::uas(&req, &c.local_tag) {
                    Ok(d) => c.dialog = Some(d.over(source.transport)),
                    Err(e) => tracing::warn!(error = %e, "cannot build UAS dialog"),
                }
            }
            let cseq = req.headers.cseq().map(|c| c.seq).unwrap_or(0);
            let r = Box::new(Retransmit {
                response: resp,
                target: response_target(&req, source),
                cseq,
                next: now + t1,
                interval: t1,
                give_up: now + 64 * t1,
            });
            self.set_retransmit(call, Some(r));
        } else if initial {
            self.remove_call(call);
        }
        Ok(())
    }

    /// Cancels an outgoing call that has not been answered (RFC 3261 §9.1). The CANCEL
    /// is sent once a provisional response arrived; the INVITE then gets 487 and the
    /// call ends with [`SipEvent::CallCancelled`].
    pub fn cancel(&mut self, now: Instant, call: CallId) -> Result<(), EndpointError> {
        self.now = Some(now);
        let c = self
            .calls
            .get_mut(&call)
            .ok_or(EndpointError::UnknownCall(call))?;
        if !c.uac || !matches!(c.state, CallState::Calling | CallState::Proceeding) {
            return Err(EndpointError::WrongState {
                call,
                action: "cancel",
            });
        }
        c.cancel_requested = true;
        if c.got_provisional {
            self.send_cancel(now, call);
        }
        Ok(())
    }

    fn send_cancel(&mut self, now: Instant, call: CallId) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if c.cancel_sent {
            return;
        }
        c.cancel_sent = true;
        let Some(inv) = c.invite.as_deref() else {
            return;
        };
        let mut req = Request::new(Method::Cancel, inv.uri().clone());
        // §9.1: same top Via, Request-URI, Call-ID, To, From, CSeq number, Route.
        if let Some(v) = inv.headers.get("Via") {
            req.headers.push("Via", v.to_owned());
        }
        req.headers.push("Max-Forwards", "70");
        for r in inv.headers.get_all("Route") {
            req.headers.push("Route", r.to_owned());
        }
        for h in ["From", "To", "Call-ID"] {
            if let Some(v) = inv.headers.get(h) {
                req.headers.push(h, v.to_owned());
            }
        }
        let seq = inv.headers.cseq().map(|c| c.seq).unwrap_or(1);
        req.headers.push("CSeq", format!("{seq} CANCEL"));
        req.headers
            .push("User-Agent", self.config.user_agent.clone());
        req.headers.push("Content-Length", "0");
        let target = c.invite_target;
        if let Err(e) = self.send(now, req, target, Purpose::Cancel(call), 0) {
            tracing::warn!(error = %e, "could not send CANCEL");
        }
    }

    /// Ends an established call with BYE (RFC 3261 §15.1.1). For an unanswered
    /// outgoing call this cancels it ([`Endpoint::cancel`]); an unanswered incoming call
    /// is refused with [`Endpoint::answer`] and a 486/603 status instead.
    pub fn bye(&mut self, now: Instant, call: CallId) -> Result<(), EndpointError> {
        self.now = Some(now);
        let c = self
            .calls
            .get(&call)
            .ok_or(EndpointError::UnknownCall(call))?;
        match c.state {
            CallState::Calling | CallState::Proceeding if c.uac => self.cancel(now, call),
            CallState::Confirmed => self.send_bye(now, call),
            _ => Err(EndpointError::WrongState {
                call,
                action: "hang up",
            }),
        }
    }

    fn send_bye(&mut self, now: Instant, call: CallId) -> Result<(), EndpointError> {
        let c = self
            .calls
            .get(&call)
            .ok_or(EndpointError::UnknownCall(call))?;
        let Some(dialog) = c.dialog.as_ref() else {
            return Err(EndpointError::WrongState {
                call,
                action: "hang up",
            });
        };
        // Route first: a refused route (downgrade) leaves the call as it was.
        let target = self.route_in_dialog(dialog)?;
        let Some(c) = self.calls.get_mut(&call) else {
            return Err(EndpointError::UnknownCall(call));
        };
        let Some(dialog) = c.dialog.as_mut() else {
            return Err(EndpointError::UnknownCall(call));
        };
        c.state = CallState::Terminating;
        let mut req = dialog.request(Method::Bye);
        self.set_retransmit(call, None);
        self.finish_request(&mut req, Bytes::new(), None);
        self.send(now, req, target, Purpose::Bye(call), 0)
            .map(|_| ())
    }

    /// Sends a re-INVITE with a new offer (hold: `a=sendonly`/`inactive`, resume;
    /// RFC 3261 §14.1). The result comes as [`SipEvent::ReinviteCompleted`].
    pub fn reinvite(
        &mut self,
        now: Instant,
        call: CallId,
        body: Bytes,
    ) -> Result<(), EndpointError> {
        self.now = Some(now);
        let c = self
            .calls
            .get(&call)
            .ok_or(EndpointError::UnknownCall(call))?;
        if c.state != CallState::Confirmed || c.reinvite_pending || c.reinvite_server.is_some() {
            return Err(EndpointError::WrongState {
                call,
                action: "re-INVITE",
            });
        }
        let Some(dialog) = c.dialog.as_ref() else {
            return Err(EndpointError::WrongState {
                call,
                action: "re-INVITE",
            });
        };
        let target = self.route_in_dialog(dialog)?;
        let Some((c, dialog)) = self
            .calls
            .get_mut(&call)
            .and_then(|c| c.dialog.as_mut().map(|d| (&mut c.reinvite_pending, d)))
        else {
            return Err(EndpointError::UnknownCall(call));
        };
        *c = true;
        let mut req = dialog.request(Method::Invite);
        self.finish_request(&mut req, body, None);
        self.send(now, req, target, Purpose::Reinvite(call), 0)
            .map(|_| ())
    }

    /// Sends an in-dialog INFO (RFC 6086) with the given body.
    pub fn info(
        &mut self,
        now: Instant,
        call: CallId,
        content_type: &str,
        body: Bytes,
    ) -> Result<(), EndpointError> {
        self.now = Some(now);
        let c = self
            .calls
            .get(&call)
            .ok_or(EndpointError::UnknownCall(call))?;
        let Some(dialog) = c.dialog.as_ref() else {
            return Err(EndpointError::WrongState {
                call,
                action: "INFO",
            });
        };
        let target = self.route_in_dialog(dialog)?;
        let Some(dialog) = self.calls.get_mut(&call).and_then(|c| c.dialog.as_mut()) else {
            return Err(EndpointError::UnknownCall(call));
        };
        let mut req = dialog.request(Method::Info);
        self.finish_request(&mut req, body, Some(content_type));
        self.send(now, req, target, Purpose::Other, 0).map(|_| ())
    }

    fn send_ack(&mut self, call: CallId, resp: &Response) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let cseq = resp.headers.cseq().map(|c| c.seq).unwrap_or(0);
        if let Some(a) = &c.ack
            && a.cseq == cseq
        {
            // A 2xx retransmission: re-send the same ACK (§13.2.2.4).
            let (ack, target) = (a.data.clone(), a.target);
            self.resend_printed(ack, target);
            return;
        }
        let Some(dialog) = c.dialog.clone() else {
            return;
        };
        let mut ack = dialog.request_with_seq(Method::Ack, cseq);
        // §22.1: the ACK for a 2xx carries the INVITE's credentials.
        let sent = if cseq == c.invite_seq {
            c.invite.as_deref().cloned()
        } else {
            self.pending
                .values()
                .find(|p| {
                    p.purpose == Purpose::Reinvite(call)
                        && p.request.headers.cseq().map(|c| c.seq).ok() == Some(cseq)
                })
                .map(|p| Request::clone(&p.request))
        };
        if let Some(inv) = sent {
            for h in ["Authorization", "Proxy-Authorization"] {
                for v in inv.headers.get_all(h) {
                    ack.headers.push(h, v.to_owned());
                }
            }
        }
        let target = match self.route_in_dialog(&dialog) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "no route for ACK");
                self.report_refused_route(call, &e);
                return;
            }
        };
        self.finish_request(&mut ack, Bytes::new(), None);
        set_via_transport(&mut ack, target.transport);
        let printed = ack.to_bytes();
        tracing::debug!(uri = %ack.uri(), %target, "sending ACK for a 2xx");
        self.tx.send_stateless(SipMessage::Request(ack), target);
        let until = self.now.map(|now| now + 64 * self.config.timers.t1);
        if let Some(until) = until {
            let stored = StoredAck {
                cseq,
                data: printed,
                target,
                until,
            };
            self.set_ack(call, Some(stored));
        }
    }

    /// Re-sends a message we printed earlier (an ACK for a retransmitted 2xx).
    fn resend_printed(&mut self, data: Bytes, target: Target) {
        match SipMessage::parse(data) {
            Ok(msg) => self.tx.send_stateless(msg, target),
            Err(e) => tracing::warn!(error = %e, "cannot re-send a stored message"),
        }
    }

    fn on_invite_response(&mut self, now: Instant, call: CallId, p: &Pending, resp: &Response) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let status = resp.status;
        match status {
            100 => {}
            101..=199 => {
                if !c.got_provisional {
                    c.got_provisional = true;
                }
                if c.state == CallState::Calling {
                    c.state = CallState::Proceeding;
                }
                if resp
                    .headers
                    .to()
                    .ok()
                    .and_then(|t| t.tag().map(str::to_owned))
                    .is_some()
                    && c.dialog.is_none()
                    && let Ok(d) = Dialog::uac(&p.request, resp)
                {
                    c.dialog = Some(d.over(p.target.transport));
                }
                let cancel = c.cancel_requested && !c.cancel_sent;
                if status == 180 && resp.body.is_empty() {
                    self.push_event(SipEvent::CallRinging { call });
                } else {
                    self.push_event(SipEvent::CallProgress {
                        call,
                        status,
                        body: resp.body.clone(),
                    });
                }
                if cancel {
                    self.send_cancel(now, call);
                }
            }
            200..=299 => {
                let to_tag = resp
                    .headers
                    .to()
                    .ok()
                    .and_then(|t| t.tag().map(str::to_owned));
                let other_branch = c.answered_event
                    && c.dialog.as_ref().map(|d| d.id.remote_tag.as_str()) != to_tag.as_deref();
                if other_branch {
                    // A forking proxy delivered a second 2xx from another UAS: ACK it
                    // and end that dialog with BYE (RFC 3261 §13.2.2.4).
                    self.ack_and_bye_fork(now, call, p, resp, to_tag.unwrap_or_default());
                    return;
                }
                let first = !c.answered_event;
                if first {
                    match Dialog::uac(&p.request, resp) {
                        Ok(mut d) => {
                            d.state = crate::dialog::DialogState::Confirmed;
                            c.dialog = Some(d.over(p.target.transport));
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "2xx cannot create a dialog");
                            return;
                        }
                    }
                    c.answered_event = true;
                    c.state = CallState::Confirmed;
                } else if let Some(d) = c.dialog.as_mut() {
                    d.refresh_target(&resp.headers);
                }
                let cancelled = c.cancel_requested;
                self.send_ack(call, resp);
                if first && let Some(c) = self.calls.get_mut(&call) {
                    // Final response: no CANCEL any more (§9.1), and the ACK holds
                    // the credentials a retransmitted 2xx needs.
                    c.invite = None;
                }
                if first {
                    if cancelled {
                        // The 2xx crossed our CANCEL: end the call (§9.1, §15).
                        if let Err(e) = self.send_bye(now, call) {
                            self.report_refused_route(call, &e);
                        }
                    } else {
                        let security = self.security_of(&p.target);
                        self.push_event(SipEvent::CallAnswered {
                            call,
                            body: resp.body.clone(),
                            call_info: lenient_call_info(&resp.headers),
                            security,
                        });
                    }
                }
            }
            _ => {
                let cancelled = c.cancel_requested;
                let redirected = c.redirects.is_some();
                if !cancelled
                    && self.config.follow_redirects
                    && (matches!(status, 300..=302) || (redirected && status < 600))
                    && self.redirect(now, call, p, resp)
                {
                    return;
                }
                self.remove_call(call);
                if status == 487 && cancelled {
                    self.push_event(SipEvent::CallCancelled { call });
                } else {
                    self.push_event(SipEvent::CallFailed {
                        call,
                        status,
                        reason: resp.reason.clone(),
                    });
                }
            }
        }
    }

    fn ack_and_bye_fork(
        &mut self,
        now: Instant,
        call: CallId,
        p: &Pending,
        resp: &Response,
        tag: String,
    ) {
        let known = self
            .calls
            .get(&call)
            .and_then(|c| c.forks.iter().find(|(t, _, _)| *t == tag).cloned());
        if let Some((_, ack, target)) = known {
            self.resend_printed(ack, target);
            return;
        }
        let Ok(mut d) = Dialog::uac(&p.request, resp) else {
            return;
        };
        d = d.over(p.target.transport);
        let Ok(target) = self.route_in_dialog(&d) else {
            return;
        };
        let seq = resp.headers.cseq().map(|c| c.seq).unwrap_or(0);
        let mut ack = d.request_with_seq(Method::Ack, seq);
        for h in ["Authorization", "Proxy-Authorization"] {
            for v in p.request.headers.get_all(h) {
                ack.headers.push(h, v.to_owned());
            }
        }
        self.finish_request(&mut ack, Bytes::new(), None);
        set_via_transport(&mut ack, target.transport);
        let printed = ack.to_bytes();
        self.tx.send_stateless(SipMessage::Request(ack), target);
        let mut bye = d.request(Method::Bye);
        self.finish_request(&mut bye, Bytes::new(), None);
        if let Err(e) = self.send(now, bye, target, Purpose::Other, 0) {
            tracing::debug!(error = %e, "could not end a forked dialog");
        }
        if let Some(c) = self.calls.get_mut(&call)
            && c.forks.len() < 16
        {
            c.forks.push((tag, printed, target));
        }
    }

    // ------------------------------------------------------------------ OPTIONS, MESSAGE

    /// Sends OPTIONS to `uri` (RFC 3261 §11).
    pub fn options(&mut self, now: Instant, uri: Uri) -> Result<RequestId, EndpointError> {
        self.now = Some(now);
        let id = RequestId(self.next_id());
        self.out_of_dialog(
            now,
            Method::Options,
            uri,
            Bytes::new(),
            None,
            Purpose::Options(id),
        )?;
        Ok(id)
    }

    /// Sends a MESSAGE (RFC 3428).
    pub fn message(
        &mut self,
        now: Instant,
        to: Uri,
        content_type: &str,
        body: Bytes,
    ) -> Result<RequestId, EndpointError> {
        self.now = Some(now);
        let id = RequestId(self.next_id());
        self.out_of_dialog(
            now,
            Method::Message,
            to,
            body,
            Some(content_type),
            Purpose::Message(id),
        )?;
        Ok(id)
    }

    fn out_of_dialog(
        &mut self,
        now: Instant,
        method: Method,
        uri: Uri,
        body: Bytes,
        content_type: Option<&str>,
        purpose: Purpose,
    ) -> Result<TransactionKey, EndpointError> {
        let target = self.route_out_of_dialog(&uri)?;
        let tag = self.new_tag();
        let call_id = self.new_call_id();
        let mut req = Request::new(method.clone(), uri.clone());
        let from = self.local_from(&tag);
        req.headers.push("From", from.to_string());
        req.headers.push("To", NameAddr::new(uri).to_string());
        req.headers.push("Call-ID", call_id);
        req.headers.push("CSeq", format!("1 {method}"));
        self.finish_request(&mut req, body, content_type);
        self.send(now, req, target, purpose, 0)
    }

    // ------------------------------------------------------------------ SUBSCRIBE

    /// Subscribes to `event` at `uri` for `expires` seconds (RFC 6665 §4.1.2.1). The
    /// subscription is refreshed before it expires until [`Endpoint::unsubscribe`].
    pub fn subscribe(
        &mut self,
        now: Instant,
        uri: Uri,
        event: &str,
        expires: u32,
    ) -> Result<SubscriptionId, EndpointError> {
        self.now = Some(now);
        if self.subscriptions.len() >= MAX_CALLS {
            return Err(EndpointError::Overloaded);
        }
        let target = self.route_out_of_dialog(&uri)?;
        let tag = self.new_tag();
        let from = self.local_from(&tag);
        let id = SubscriptionId(self.next_id());
        let sub = Subscription {
            uri: uri.clone(),
            event: event.to_owned(),
            call_id: self.new_call_id(),
            from,
            to: NameAddr::new(uri),
            cseq: 0,
            dialog: None,
            expires,
            refresh_at: None,
            unsubscribing: false,
            target,
        };
        self.subscriptions.insert(id, sub);
        self.send_subscribe(now, id, expires)?;
        Ok(id)
    }

    /// Ends a subscription (SUBSCRIBE with Expires: 0, RFC 6665 §4.1.2.3).
    pub fn unsubscribe(&mut self, now: Instant, id: SubscriptionId) -> Result<(), EndpointError> {
        self.now = Some(now);
        let s = self
            .subscriptions
            .get_mut(&id)
            .ok_or(EndpointError::UnknownSubscription(id))?;
        s.unsubscribing = true;
        s.refresh_at = None;
        self.send_subscribe(now, id, 0)
    }

    fn send_subscribe(
        &mut self,
        now: Instant,
        id: SubscriptionId,
        expires: u32,
    ) -> Result<(), EndpointError> {
        let s = self
            .subscriptions
            .get_mut(&id)
            .ok_or(EndpointError::UnknownSubscription(id))?;
        let (mut req, target) = match s.dialog.as_mut() {
            Some(d) => {
                let req = d.request(Method::Subscribe);
                s.cseq = d.local_seq;
                let d = d.clone();
                let fallback = s.target;
                (req, self.route_in_dialog(&d).unwrap_or(fallback))
            }
            None => {
                s.cseq += 1;
                let mut req = Request::new(Method::Subscribe, s.uri.clone());
                req.headers.push("From", s.from.to_string());
                req.headers.push("To", s.to.to_string());
                req.headers.push("Call-ID", s.call_id.clone());
                req.headers.push("CSeq", format!("{} SUBSCRIBE", s.cseq));
                (req, s.target)
            }
        };
        let Some(s) = self.subscriptions.get(&id) else {
            return Err(EndpointError::UnknownSubscription(id));
        };
        req.headers.push("Event", s.event.clone());
        req.headers.push("Expires", expires.to_string());
        req.headers.push("Accept", accept_for(&s.event));
        self.finish_request(&mut req, Bytes::new(), None);
        self.send(now, req, target, Purpose::Subscribe(id), 0)
            .map(|_| ())
    }

    fn on_subscribe_response(
        &mut self,
        now: Instant,
        id: SubscriptionId,
        p: &Pending,
        resp: &Response,
    ) {
        let Some(s) = self.subscriptions.get_mut(&id) else {
            return;
        };
        match resp.status {
            100..=199 => {}
            200..=299 => {
                if s.dialog.is_none() {
                    if let Ok(d) = Dialog::uac(&p.request, resp) {
                        s.dialog = Some(d.over(p.target.transport));
                    }
                } else if let Some(d) = s.dialog.as_mut() {
                    d.refresh_target(&resp.headers);
                }
                if s.unsubscribing {
                    // The terminated NOTIFY follows; nothing to refresh.
                    s.refresh_at = None;
                    return;
                }
                let expires = match resp.headers.expires() {
                    Ok(Some(e)) => e.min(s.expires.max(1)),
                    _ => s.expires,
                };
                s.refresh_at = (expires > 0).then(|| now + refresh_delay(expires));
                self.push_event(SipEvent::SubscriptionAccepted {
                    subscription: id,
                    expires,
                });
            }
            status => {
                let unsub = s.unsubscribing;
                self.subscriptions.remove(&id);
                self.push_event(SipEvent::SubscriptionTerminated {
                    subscription: id,
                    status: (!unsub || status != 481).then_some(status),
                    reason: None,
                });
            }
        }
    }

    // ------------------------------------------------------------------ timers

    fn fire_timers(&mut self, now: Instant) {
        if let Some(at) = self.registration.as_ref().and_then(|r| r.refresh_at)
            && at <= now
            && let Err(e) = self.register(now)
        {
            tracing::warn!(error = %e, "registration refresh failed");
        }
        let due: Vec<SubscriptionId> = self
            .subscriptions
            .iter()
            .filter(|(_, s)| s.refresh_at.is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let exp = self.subscriptions.get_mut(&id).map(|s| {
                s.refresh_at = None;
                s.expires
            });
            if let Some(exp) = exp
                && let Err(e) = self.send_subscribe(now, id, exp)
            {
                tracing::warn!(error = %e, "subscription refresh failed");
            }
        }
        let t2 = self.config.timers.t2;
        let mut give_up = Vec::new();
        let mut resend = Vec::new();
        // Only the due entries: O(due · log calls), not a scan of every call.
        while let Some(&(at, id, kind)) = self.call_timers.first() {
            if at > now {
                break;
            }
            self.call_timers.pop_first();
            let Some(c) = self.calls.get_mut(&id) else {
                continue;
            };
            if kind == CallTimer::AckExpiry {
                // No retransmission of that 2xx can come any more; a later one (from
                // a misbehaving peer) gets a freshly built ACK.
                c.ack = None;
                continue;
            }
            let Some(r) = c.retransmit.as_mut() else {
                continue;
            };
            if r.give_up <= now {
                give_up.push((id, r.cseq == c.invite_seq));
                c.retransmit = None;
            } else {
                if r.next <= now {
                    r.interval = (r.interval * 2).min(t2);
                    r.next = now + r.interval;
                    resend.push((r.response.clone(), r.target));
                }
                // Re-file at the next deadline (the entry was popped above).
                self.call_timers
                    .insert((r.next.min(r.give_up), id, CallTimer::Retransmit));
            }
        }
        for (resp, target) in resend {
            tracing::debug!(%target, "retransmitting 2xx");
            self.tx.send_stateless(SipMessage::Response(resp), target);
        }
        for (call, initial) in give_up {
            tracing::info!(?call, "no ACK for our 2xx within 64*T1; ending the call");
            if initial {
                match self.send_bye(now, call) {
                    Ok(()) => self.set_ack(call, None),
                    Err(e) => self.report_refused_route(call, &e),
                }
                self.push_event(SipEvent::CallEnded {
                    call,
                    by: EndedBy::AckTimeout,
                });
            }
        }
    }

    // ------------------------------------------------------------------ transaction events

    fn process_tx_events(&mut self, now: Instant) {
        // Each handled event may queue more (a zero Timer J ends a transaction at once).
        for _ in 0..100_000 {
            let Some(ev) = self.tx.poll_event() else {
                return;
            };
            match ev {
                TransactionEvent::Response { key, response } => {
                    self.on_response(now, key, response)
                }
                TransactionEvent::Request {
                    key,
                    request,
                    source,
                } => self.on_request(now, key, request, source),
                TransactionEvent::Ack { request, source } => self.on_ack(request, source),
                TransactionEvent::StrayResponse { response, .. } => self.on_stray(response),
                TransactionEvent::Timeout { key } => {
                    self.on_failure(now, &key, 408, "Request Timeout", None)
                }
                TransactionEvent::TransportError { key, reason } => {
                    tracing::debug!(%key, reason, "transport error");
                    // The typed cause the driver gave with this input; the text when a
                    // failure comes from elsewhere.
                    let cause = match &self.transport_failure {
                        Some((_, cause)) => cause.clone(),
                        None => TransportFailure::Other(reason),
                    };
                    self.on_failure(now, &key, 503, "Service Unavailable", Some(cause))
                }
                TransactionEvent::Terminated { key } => {
                    self.pending.remove(&key);
                }
                #[allow(unreachable_patterns)]
                _ => {}
            }
        }
    }

    /// A client or server transaction failed without a response: a timeout, or a
    /// transport failure (`transport`, reported first as [`SipEvent::TransportFailed`]).
    fn on_failure(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        status: u16,
        reason: &str,
        transport: Option<TransportFailure>,
    ) {
        if !key.is_client() {
            self.on_server_failure(key, reason, transport);
            return;
        }
        let Some(p) = self.pending.get(key).cloned() else {
            return;
        };
        if p.answered == Answered::Finally {
            // Answered already (an INVITE's transaction stays for Timer M after its 2xx,
            // RFC 6026): a later failure of the connection ends no call and fails no
            // request. It only ends the transaction.
            tracing::debug!(%key, "failure after the final response ignored");
            self.pending.remove(key);
            return;
        }
        if let Some(cause) = &transport
            && self.retry_over_udp(now, &p, cause)
        {
            self.pending.remove(key);
            return;
        }
        if let Some(error) = transport {
            let request = match p.purpose {
                Purpose::Register => FailedRequest::Register,
                Purpose::Invite(c) => FailedRequest::Invite(c),
                Purpose::Reinvite(c) => FailedRequest::Reinvite(c),
                Purpose::Bye(c) => FailedRequest::Bye(c),
                Purpose::Cancel(c) => FailedRequest::Cancel(c),
                Purpose::Options(id) => FailedRequest::Options(id),
                Purpose::Message(id) => FailedRequest::Message(id),
                Purpose::Subscribe(id) => FailedRequest::Subscribe(id),
                Purpose::Other => FailedRequest::Other(p.request.method.clone()),
            };
            self.push_event(SipEvent::TransportFailed {
                request,
                target: p.target,
                error,
            });
        }
        let mut resp = Response::new(status, reason);
        for h in ["Via", "From", "To", "Call-ID", "CSeq"] {
            if let Some(v) = p.request.headers.get(h) {
                resp.headers.push(h, v.to_owned());
            }
        }
        self.dispatch_final(now, &p, &resp);
        self.pending.remove(key);
    }

    /// A server transaction failed (transport error or timeout, RFC 3261 §17.2.4, §8.1.3.1).
    /// When it is the INVITE transaction of an incoming call not yet answered finally, the
    /// caller can no longer be answered: the call is removed and reported once as
    /// [`SipEvent::CallCancelled`] (it ends before being answered, like a CANCEL; it was
    /// never established, so [`SipEvent::CallEnded`] would not fit).
    fn on_server_failure(
        &mut self,
        key: &TransactionKey,
        reason: &str,
        transport: Option<TransportFailure>,
    ) {
        let Some(call) = self.by_server_key.get(key).copied() else {
            return;
        };
        if self
            .calls
            .get(&call)
            .is_none_or(|c| c.state != CallState::Incoming)
        {
            return;
        }
        tracing::info!(?call, %key, reason, "INVITE server transaction failed before an answer");
        if let Some(c) = self.remove_call(call) {
            if let Some(error) = transport {
                let target = self
                    .transport_failure
                    .as_ref()
                    .map_or(c.invite_target, |(t, _)| *t);
                self.push_event(SipEvent::TransportFailed {
                    request: FailedRequest::IncomingCall(call),
                    target,
                    error,
                });
            }
            self.push_event(SipEvent::CallCancelled { call });
        }
    }

    fn on_response(&mut self, now: Instant, key: TransactionKey, resp: Response) {
        if let Some(p) = self.pending.get_mut(&key) {
            p.answered = if resp.status >= 200 {
                Answered::Finally
            } else {
                Answered::Provisional
            };
        }
        let Some(p) = self.pending.get(&key).cloned() else {
            tracing::debug!(%key, "response for an unknown transaction");
            return;
        };
        if matches!(resp.status, 401 | 407)
            && !matches!(p.purpose, Purpose::Cancel(_))
            && self.retry_with_auth(now, &p, &resp)
        {
            return;
        }
        self.dispatch_final(now, &p, &resp);
    }

    fn dispatch_final(&mut self, now: Instant, p: &Pending, resp: &Response) {
        match p.purpose {
            Purpose::Register => self.on_register_response(now, p, resp),
            Purpose::Invite(call) => self.on_invite_response(now, call, p, resp),
            Purpose::Reinvite(call) => {
                if resp.status < 200 {
                    return;
                }
                let mut first = false;
                if let Some(c) = self.calls.get_mut(&call) {
                    first = c.reinvite_pending;
                    c.reinvite_pending = false;
                    if first
                        && (200..300).contains(&resp.status)
                        && let Some(d) = c.dialog.as_mut()
                    {
                        d.refresh_target(&resp.headers);
                    }
                }
                if (200..300).contains(&resp.status) {
                    // Also for retransmissions of the 2xx (§13.2.2.4).
                    self.send_ack(call, resp);
                }
                if first {
                    self.push_event(SipEvent::ReinviteCompleted {
                        call,
                        status: resp.status,
                        body: resp.body.clone(),
                    });
                    if resp.status == 481 || resp.status == 408 {
                        // §14.1: the dialog is gone.
                        if let Err(e) = self.send_bye(now, call) {
                            self.report_refused_route(call, &e);
                        }
                    }
                }
            }
            Purpose::Bye(call) => {
                if resp.status >= 200 && self.remove_call(call).is_some() {
                    self.push_event(SipEvent::CallEnded {
                        call,
                        by: EndedBy::Local,
                    });
                }
            }
            Purpose::Cancel(_) => {}
            Purpose::Options(id) => {
                if resp.status >= 200 {
                    self.push_event(SipEvent::OptionsResponse {
                        id,
                        status: resp.status,
                        allow: resp.headers.allow(),
                    });
                }
            }
            Purpose::Message(id) => {
                if resp.status >= 200 {
                    self.push_event(SipEvent::MessageResponse {
                        id,
                        status: resp.status,
                    });
                }
            }
            Purpose::Subscribe(id) => self.on_subscribe_response(now, id, p, resp),
            Purpose::Other => {}
        }
    }

    /// Sends the INVITE of `call` to its next redirect target after `resp` (a 3xx adds
    /// its Contacts to the targets, best `q` first). Returns whether it was sent; `false`
    /// when no target is left.
    fn redirect(&mut self, now: Instant, call: CallId, p: &Pending, resp: &Response) -> bool {
        let Some(c) = self.calls.get_mut(&call) else {
            return false;
        };
        let first_uri = p.request.uri().clone();
        let secure = first_uri.scheme == Scheme::Sips;
        let r = c.redirects.get_or_insert_with(|| {
            Box::new(Redirects {
                queue: VecDeque::new(),
                tried: vec![first_uri],
            })
        });
        if matches!(resp.status, 300..=302) {
            let mut contacts: Vec<(f32, Uri)> = resp
                .headers
                .contacts()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|c| {
                    let a = c.addr()?;
                    let q = a
                        .params
                        .get("q")
                        .flatten()
                        .and_then(|q| q.trim().parse::<f32>().ok())
                        .filter(|q| (0.0..=1.0).contains(q))
                        .unwrap_or(1.0);
                    Some((q, a.uri.clone()))
                })
                .collect();
            // Stable: equal q keep the server's order.
            contacts.sort_by(|a, b| b.0.total_cmp(&a.0));
            for (_, uri) in contacts {
                let usable = match uri.scheme {
                    Scheme::Sips => true,
                    Scheme::Sip => !secure,
                    _ => false,
                };
                // Only as many as may still be tried (no unbounded queue from a 3xx
                // with thousands of Contacts).
                if r.tried.len() + r.queue.len() >= MAX_REDIRECT_TARGETS {
                    break;
                }
                if usable && !r.tried.contains(&uri) && !r.queue.contains(&uri) {
                    r.queue.push_back(uri);
                }
            }
        }
        loop {
            // The next untried target, if the budget allows.
            let next = {
                let Some(r) = self
                    .calls
                    .get_mut(&call)
                    .and_then(|c| c.redirects.as_deref_mut())
                else {
                    return false;
                };
                if r.tried.len() >= MAX_REDIRECT_TARGETS {
                    return false;
                }
                let Some(next) = r.queue.pop_front() else {
                    return false;
                };
                r.tried.push(next.clone());
                next
            };
            match self.route_out_of_dialog(&next) {
                // A call that went over TLS stays on TLS (RFC 3261 §26.2.2 in spirit, as
                // for sips:).
                Ok(target)
                    if p.target.transport == Transport::Tls
                        && target.transport != Transport::Tls =>
                {
                    tracing::debug!(%next, %target, "redirect to a plain transport refused");
                }
                Ok(target) => {
                    if self.send_redirected(now, call, p, resp.status, next, target) {
                        return true;
                    }
                }
                Err(e) => tracing::debug!(%next, error = %e, "redirect target skipped"),
            }
        }
    }

    /// Sends the INVITE of `call` (as in `p`) again to `uri` via `target`: new
    /// Request-URI, Via and CSeq, same Call-ID, From and To (RFC 3261 §8.1.3.4), no
    /// credentials (they were for the old target). Returns whether it was sent.
    fn send_redirected(
        &mut self,
        now: Instant,
        call: CallId,
        p: &Pending,
        status: u16,
        uri: Uri,
        target: Target,
    ) -> bool {
        let mut req = Request::clone(&p.request);
        req.set_uri(uri.clone());
        req.headers.remove("Via");
        req.headers.remove("Authorization");
        req.headers.remove("Proxy-Authorization");
        let seq = p.request.headers.cseq().map_or(1, |c| c.seq) + 1;
        req.headers.set("CSeq", format!("{seq} INVITE"));
        let via = self.via();
        req.headers.insert_first("Via", via);
        match self.send(now, req, target, Purpose::Invite(call), 0) {
            Ok(key) => {
                if let Some(c) = self.calls.get_mut(&call) {
                    // A new attempt: whatever the old target started is over.
                    c.state = CallState::Calling;
                    c.dialog = None;
                    c.got_provisional = false;
                    c.cancel_sent = false;
                }
                self.remember_invite(call, &key, seq);
                tracing::debug!(%uri, status, "call redirected");
                self.push_event(SipEvent::CallRedirected {
                    call,
                    status,
                    target: uri,
                });
                true
            }
            Err(e) => {
                tracing::debug!(%uri, error = %e, "redirect target refused");
                false
            }
        }
    }

    /// Records the INVITE of `call` as sent in transaction `key` (its CANCEL and ACK
    /// copy it, and go where it went).
    fn remember_invite(&mut self, call: CallId, key: &TransactionKey, seq: u32) {
        let Some(p) = self.pending.get(key) else {
            return;
        };
        let (req, target) = (Request::clone(&p.request), p.target);
        if let Some(c) = self.calls.get_mut(&call) {
            c.invite_seq = seq;
            c.invite = Some(Box::new(req));
            c.invite_target = target;
        }
    }

    /// RFC 3261 §18.1.1: a request moved from UDP to TCP for its size whose TCP
    /// connection was refused is sent again over UDP (new transaction, same CSeq).
    /// Returns whether it was.
    fn retry_over_udp(&mut self, now: Instant, p: &Pending, cause: &TransportFailure) -> bool {
        if p.size_rule != SizeRule::MovedToTcp
            || *cause != TransportFailure::ConnectionRefused
            || p.answered != Answered::No
        {
            return false;
        }
        let mut req = Request::clone(&p.request);
        req.headers.remove("Via");
        let via = self.via();
        req.headers.insert_first("Via", via);
        let target = Target::new(Transport::Udp, p.target.addr);
        tracing::debug!(
            method = %req.method, %target,
            "TCP refused for a request too large for UDP: sending it over UDP"
        );
        match self.send_sized(
            now,
            req,
            target,
            p.purpose,
            p.auth_attempts,
            SizeRule::UdpOnly,
        ) {
            Ok(key) => {
                if let Purpose::Invite(call) = p.purpose {
                    let seq = p.request.headers.cseq().map_or(1, |c| c.seq);
                    self.remember_invite(call, &key, seq);
                }
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not re-send over UDP");
                false
            }
        }
    }

    /// Answers a 401/407 with credentials and re-sends the request (RFC 3261 §22.2,
    /// §22.3): same Call-ID, CSeq + 1, new branch. Returns false when the challenge
    /// cannot or must not be answered (then the response is final for the request).
    fn retry_with_auth(&mut self, now: Instant, p: &Pending, resp: &Response) -> bool {
        let proxy = resp.status == 407;
        let challenges = if proxy {
            resp.headers.proxy_authenticate()
        } else {
            resp.headers.www_authenticate()
        }
        .unwrap_or_default();
        let stale = challenges.iter().any(|c| c.stale());
        if p.auth_attempts >= MAX_AUTH_ATTEMPTS || (p.auth_attempts >= 1 && !stale) {
            self.push_event(SipEvent::AuthenticationFailed {
                method: p.request.method.clone(),
                reason: format!("{} {}: credentials refused", resp.status, resp.reason),
            });
            return false;
        }
        let Some(session) = self.digest.as_mut() else {
            self.push_event(SipEvent::AuthenticationFailed {
                method: p.request.method.clone(),
                reason: "challenged but no account is configured".into(),
            });
            return false;
        };
        if p.auth_attempts == 0 {
            // This request carried no credentials: a nonce we answered for an earlier
            // request may legitimately come back (servers reuse nonces until they
            // expire), so it is no sign of a wrong password.
            session.reset();
        }
        let method = p.request.method.as_str().to_owned();
        let uri = p.request.uri().to_string();
        let creds =
            match session.respond(&challenges, &method, &uri, &p.request.body, &mut self.rng) {
                Ok(c) => c,
                Err(e) => {
                    let reason = match &e {
                        DigestError::CredentialsRejected { .. } => "credentials refused".to_owned(),
                        other => other.to_string(),
                    };
                    self.push_event(SipEvent::AuthenticationFailed {
                        method: p.request.method.clone(),
                        reason,
                    });
                    return false;
                }
            };
        if let Some(realm) = creds.realm() {
            if self.auth_realms.len() >= MAX_AUTH_REALMS {
                self.auth_realms.clear();
            }
            self.auth_realms
                .insert((p.origin_target(), proxy), realm.to_owned());
        }
        let mut req = Request::clone(&p.request);
        req.headers.remove("Via");
        let header = if proxy {
            "Proxy-Authorization"
        } else {
            "Authorization"
        };
        // Pre-emptive credentials the server refused go too.
        req.headers.remove("Authorization");
        req.headers.remove("Proxy-Authorization");
        req.headers.push(header, creds.to_string());
        // New CSeq: for dialogs, the dialog's next number; else the old one + 1.
        let old = req.headers.cseq().map(|c| c.seq).unwrap_or(1);
        let seq = match p.purpose {
            Purpose::Reinvite(call) | Purpose::Bye(call) => self
                .calls
                .get_mut(&call)
                .and_then(|c| c.dialog.as_mut())
                .map_or(old + 1, |d| d.next_seq()),
            Purpose::Subscribe(id) => match self.subscriptions.get_mut(&id) {
                Some(s) => {
                    let seq = match s.dialog.as_mut() {
                        Some(d) => d.next_seq(),
                        None => s.cseq + 1,
                    };
                    s.cseq = seq;
                    seq
                }
                None => old + 1,
            },
            Purpose::Register => match self.registration.as_mut() {
                Some(r) => {
                    r.cseq += 1;
                    r.cseq
                }
                None => old + 1,
            },
            _ => old + 1,
        };
        req.headers
            .set("CSeq", format!("{seq} {}", p.request.method));
        let via = self.via();
        req.headers.insert_first("Via", via);
        // The original target (before a move to TCP): the size rule decides again for
        // the request with credentials, unless TCP was refused there.
        let (target, rule) = match p.size_rule {
            SizeRule::MovedToTcp => (Target::new(Transport::Udp, p.target.addr), SizeRule::Apply),
            rule => (p.target, rule),
        };
        match self.send_sized(now, req, target, p.purpose, p.auth_attempts + 1, rule) {
            Ok(key) => {
                if let Purpose::Invite(call) = p.purpose {
                    self.remember_invite(call, &key, seq);
                }
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not re-send with credentials");
                false
            }
        }
    }

    fn on_stray(&mut self, resp: Response) {
        // A 2xx retransmission after the INVITE client transaction ended (RFC 6026
        // §7.2): re-send the ACK of that call.
        if !(200..300).contains(&resp.status) {
            return;
        }
        let Ok(call_id) = resp.headers.call_id() else {
            return;
        };
        let call = self.by_call_id.get(call_id).and_then(|list| {
            list.iter()
                .map(|(_, id)| *id)
                .find(|id| self.calls.get(id).is_some_and(|c| c.uac))
        });
        if let Some(call) = call {
            self.send_ack(call, &resp);
        }
    }

    fn on_ack(&mut self, req: Request, _source: Target) {
        let Some(call) = self.find_call_for(&req) else {
            tracing::debug!("ACK for no dialog");
            return;
        };
        let seq = req.headers.cseq().map(|c| c.seq).unwrap_or(0);
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if c.retransmit.as_ref().is_some_and(|r| r.cseq == seq) {
            let initial = seq == c.invite_seq;
            self.set_retransmit(call, None);
            if initial {
                self.push_event(SipEvent::CallConfirmed { call });
            }
        }
    }

    fn on_request(&mut self, now: Instant, key: TransactionKey, req: Request, source: Target) {
        let in_dialog = req.headers.to().ok().is_some_and(|t| t.tag().is_some());
        // RFC 3261 §8.2.2.3: we support no extension, so any Require tag (except on
        // CANCEL and ACK) gets 420 Bad Extension listing it in Unsupported.
        let required = req.headers.require();
        if !required.is_empty() && !matches!(req.method, Method::Cancel | Method::Ack) {
            let mut resp = self.response_for(&req, 420, None);
            resp.headers.push("Unsupported", required.join(", "));
            resp.headers.push("Content-Length", "0");
            let _ = self.tx.send_response(now, &key, resp);
            return;
        }
        // §12.2.2: an in-dialog OPTIONS or MESSAGE of one of our calls is checked against
        // the dialog's remote CSeq like any other (BYE, INFO, re-INVITE check their own).
        if in_dialog
            && matches!(req.method, Method::Options | Method::Message)
            && let Some(call) = self.find_call_for(&req)
            && !self.accept_in_dialog_cseq(now, &key, call, &req)
        {
            return;
        }
        match req.method {
            Method::Invite if !in_dialog => self.on_new_invite(now, key, req, source),
            Method::Invite => self.on_reinvite(now, key, req),
            Method::Bye => {
                let Some(call) = self.find_call_for(&req) else {
                    self.reply(now, &key, &req, 481);
                    return;
                };
                if !self.accept_in_dialog_cseq(now, &key, call, &req) {
                    return;
                }
                self.reply(now, &key, &req, 200);
                self.remove_call(call);
                self.push_event(SipEvent::CallEnded {
                    call,
                    by: EndedBy::Remote,
                });
            }
            Method::Cancel => self.on_cancel(now, key, req),
            Method::Options => {
                let mut resp = self.response_for(&req, 200, None);
                resp.headers.push("Allow", self.allow());
                resp.headers.push("Accept", "application/sdp");
                resp.headers.push("Content-Length", "0");
                let _ = self.tx.send_response(now, &key, resp);
            }
            Method::Message => {
                if !self.config.allow_message {
                    let status = match self.config.message_refusal {
                        MessageRefusal::MethodNotAllowed => 405,
                        MessageRefusal::NotAcceptableHere => 488,
                    };
                    self.reply(now, &key, &req, status);
                    return;
                }
                let tag = self.new_tag();
                let mut resp = self.response_for(&req, 200, Some(&tag));
                resp.headers.push("Content-Length", "0");
                let _ = self.tx.send_response(now, &key, resp);
                if let Ok(from) = req.headers.from() {
                    self.push_event(SipEvent::MessageReceived {
                        from,
                        content_type: req.headers.content_type().map(str::to_owned),
                        body: req.body.clone(),
                    });
                }
            }
            Method::Notify => self.on_notify(now, key, req),
            Method::Info => match self.find_call_for(&req) {
                Some(call) => {
                    if self.accept_in_dialog_cseq(now, &key, call, &req) {
                        self.reply(now, &key, &req, 200);
                    }
                }
                None => self.reply(now, &key, &req, 481),
            },
            Method::Ack => {}
            _ => self.reply(now, &key, &req, 405),
        }
    }

    /// Checks the CSeq of an in-dialog request of `call` (RFC 3261 §12.2.2): a number
    /// lower than (or equal to) the last one from the peer is out of order and gets
    /// `500 Server Internal Error`; returns false then. Accepted numbers are remembered.
    fn accept_in_dialog_cseq(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        call: CallId,
        req: &Request,
    ) -> bool {
        let Ok(seq) = req.headers.cseq().map(|c| c.seq) else {
            self.reply(now, key, req, 400);
            return false;
        };
        let accepted = self
            .calls
            .get_mut(&call)
            .and_then(|c| c.dialog.as_mut())
            .is_none_or(|d| d.accept_remote_cseq(seq));
        if !accepted {
            tracing::debug!(?call, seq, method = %req.method, "in-dialog request out of order");
            self.reply(now, key, req, 500);
        }
        accepted
    }

    fn on_new_invite(&mut self, now: Instant, key: TransactionKey, req: Request, source: Target) {
        if self.calls.len() >= MAX_CALLS {
            self.reply(now, &key, &req, 486);
            return;
        }
        let (Ok(from), Ok(to), Ok(call_id)) =
            (req.headers.from(), req.headers.to(), req.headers.call_id())
        else {
            self.reply(now, &key, &req, 400);
            return;
        };
        let call_id = call_id.to_owned();
        let invite_seq = req.headers.cseq().map(|c| c.seq).unwrap_or(0);
        let call_info = lenient_call_info(&req.headers);
        let asserted_identity = req
            .headers
            .p_asserted_identity()
            .ok()
            .and_then(|v| v.into_iter().next())
            .map(|a| {
                if self.is_trusted_proxy(&source) {
                    AssertedIdentity::Trusted(a)
                } else {
                    AssertedIdentity::Untrusted(a)
                }
            });
        let anonymous = is_anonymous(&req.headers);
        let security = self.security_of(&source);
        let tag = self.new_tag();
        let id = CallId(self.next_id());
        let body = req.body.clone();
        self.insert_call(
            id,
            Call {
                state: CallState::Incoming,
                uac: false,
                invite_seq,
                source: Some(source),
                server_key: Some(key),
                ..Call::new(call_id, tag, req, source, anonymous)
            },
        );
        self.push_event(SipEvent::IncomingCall {
            call: id,
            from,
            to,
            call_info,
            asserted_identity,
            anonymous,
            body,
            security,
        });
    }

    /// Whether `source` is a configured trusted proxy reached over TLS with a verified
    /// certificate (RFC 3325 §5: a trust domain member, authenticated).
    fn is_trusted_proxy(&self, source: &Target) -> bool {
        let security = self.security_of(source);
        if !security.is_verified_tls() {
            return false;
        }
        let name = security.tls.as_ref().and_then(|t| t.server_name.as_deref());
        self.config
            .trusted_identity_proxies
            .iter()
            .any(|p| match p {
                TrustedProxy::Addr(a) => *a == source.addr,
                TrustedProxy::Name(n) => name.is_some_and(|v| v.eq_ignore_ascii_case(n)),
            })
    }

    fn on_reinvite(&mut self, now: Instant, key: TransactionKey, req: Request) {
        let Some(call) = self.find_call_for(&req) else {
            self.reply(now, &key, &req, 481);
            return;
        };
        let seq = req.headers.cseq().map(|c| c.seq).unwrap_or(0);
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let Some(d) = c.dialog.as_mut() else {
            self.reply(now, &key, &req, 481);
            return;
        };
        if !d.accept_remote_cseq(seq) {
            self.reply(now, &key, &req, 500);
            return;
        }
        if c.reinvite_pending {
            // §14.2: glare.
            self.reply(now, &key, &req, 491);
            return;
        }
        if c.reinvite_server.is_some() || c.retransmit.is_some() {
            // §14.2: a re-INVITE while another is in progress.
            let mut resp = self.response_for(&req, 500, None);
            resp.headers.push("Retry-After", "1");
            resp.headers.push("Content-Length", "0");
            let _ = self.tx.send_response(now, &key, resp);
            return;
        }
        d.refresh_target(&req.headers);
        c.reinvite_server = Some(Box::new((key, req.clone())));
        self.push_event(SipEvent::ReinviteReceived {
            call,
            body: req.body,
        });
    }

    fn on_cancel(&mut self, now: Instant, key: TransactionKey, req: Request) {
        let Some(invite_key) = key.cancelled_invite() else {
            self.reply(now, &key, &req, 481);
            return;
        };
        let call = self.by_server_key.get(&invite_key).copied();
        let Some(call) = call else {
            // §9.2: a CANCEL for an INVITE already answered finally gets 200 and has
            // no effect; one matching no transaction gets 481.
            let status = if self.tx.contains(&invite_key) {
                200
            } else {
                481
            };
            self.reply(now, &key, &req, status);
            return;
        };
        self.reply(now, &key, &req, 200);
        // §9.2: the INVITE gets 487 Request Terminated.
        if let Some(c) = self.remove_call(call)
            && let Some(invite) = c.invite.as_deref()
        {
            let mut resp = self.response_for(invite, 487, Some(&c.local_tag));
            resp.headers.push("Content-Length", "0");
            let _ = self.tx.send_response(now, &invite_key, resp);
        }
        self.push_event(SipEvent::CallCancelled { call });
    }

    fn on_notify(&mut self, now: Instant, key: TransactionKey, req: Request) {
        let call_id = req.headers.call_id().ok().map(str::to_owned);
        let to_tag = req
            .headers
            .to()
            .ok()
            .and_then(|t| t.tag().map(str::to_owned));
        let sub = self
            .subscriptions
            .iter()
            .find(|(_, s)| {
                Some(s.call_id.as_str()) == call_id.as_deref() && s.from.tag() == to_tag.as_deref()
            })
            .map(|(id, _)| *id);
        let Some(id) = sub else {
            self.reply(now, &key, &req, 481);
            return;
        };
        let state = match req.headers.subscription_state() {
            Ok(Some(s)) => s,
            _ => {
                self.reply(now, &key, &req, 400);
                return;
            }
        };
        let Some(s) = self.subscriptions.get_mut(&id) else {
            return;
        };
        match s.dialog.as_mut() {
            None => {
                // RFC 6665 §4.1.2.4: the NOTIFY may arrive before the 2xx; it creates
                // the dialog.
                let local_tag = s.from.tag().unwrap_or_default().to_owned();
                if let Ok(mut d) = Dialog::uas(&req, &local_tag) {
                    d.local_seq = s.cseq;
                    s.dialog = Some(d.over(s.target.transport));
                }
            }
            Some(d) => {
                if !d.accept_remote_cseq(req.headers.cseq().map(|c| c.seq).unwrap_or(0)) {
                    self.reply(now, &key, &req, 500);
                    return;
                }
                d.refresh_target(&req.headers);
            }
        }
        let terminated = state.is_terminated();
        if let (false, Some(e)) = (terminated || s.unsubscribing, state.expires()) {
            // Refresh ahead of the notifier's expiry if it is shorter.
            let at = now + refresh_delay(e);
            if s.refresh_at.is_none_or(|t| t > at) && e > 0 {
                s.refresh_at = Some(at);
            }
        }
        self.reply(now, &key, &req, 200);
        self.push_event(SipEvent::Notify {
            subscription: id,
            state: state.state.clone(),
            content_type: req.headers.content_type().map(str::to_owned),
            body: req.body.clone(),
        });
        if terminated {
            self.subscriptions.remove(&id);
            self.push_event(SipEvent::SubscriptionTerminated {
                subscription: id,
                status: None,
                reason: state.reason().map(str::to_owned),
            });
        }
    }
}

/// Most Call-Info values kept from one request (the hints are few in practice).
const MAX_CALL_INFO: usize = 32;

/// Every well-formed Call-Info value of `headers` (RFC 3261 §20.9, RFC 6993), skipping the
/// malformed ones: the values are hints only (RFC 7081 §3.5), so one bad value from the peer
/// must not hide the good ones. Each header line is split at top-level commas (outside
/// quotes and `<...>`) and each element is parsed alone with the strict parser.
fn lenient_call_info(headers: &crate::msg::Headers) -> Vec<CallInfo> {
    let mut out = Vec::new();
    for line in headers.get_all("Call-Info") {
        for element in split_top_level_commas(line) {
            if out.len() >= MAX_CALL_INFO {
                tracing::debug!("too many Call-Info values; keeping the first {MAX_CALL_INFO}");
                return out;
            }
            let mut one = crate::msg::Headers::new();
            one.push("Call-Info", element);
            match one.call_info() {
                Ok(v) => out.extend(v),
                Err(e) => tracing::debug!(error = %e, "skipping a malformed Call-Info value"),
            }
        }
    }
    out
}

/// Splits a header value at commas outside quoted strings and `<...>`; empty elements are
/// dropped. An unclosed quote or `<` swallows the rest of the line into one element, which
/// the strict parser then refuses.
fn split_top_level_commas(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped, mut angle) = (0, false, false, false);
    for (i, c) in value.char_indices() {
        if quoted {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            '<' => angle = true,
            '>' => angle = false,
            ',' if !angle => {
                out.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&value[start..]);
    out.into_iter()
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect()
}

/// The Accept value for an event package (RFC 6665 §4.1.2.1).
fn accept_for(event: &str) -> &'static str {
    match event {
        "conference" => "application/conference-info+xml",
        "presence" => "application/pidf+xml",
        "dialog" => "application/dialog-info+xml",
        "message-summary" => "application/simple-message-summary",
        "reg" => "application/reginfo+xml",
        _ => "*/*",
    }
}

#[cfg(test)]
mod tests {
    //! The call index: in-dialog requests find their call by Call-ID and tags.

    use super::*;

    const PEER: &str = "127.0.0.1:5080";

    fn ep() -> Endpoint {
        let addr: SocketAddr = "127.0.0.1:5070".parse().expect("addr");
        let mut cfg = EndpointConfig::insecure(addr, Transport::Udp);
        cfg.contact_user = "bob".into();
        Endpoint::new(cfg, 7)
    }

    fn feed(e: &mut Endpoint, now: Instant, text: &str) {
        e.handle_input(
            now,
            Input::Receive {
                data: Bytes::from(text.replace('\n', "\r\n")),
                source: PEER.parse().expect("addr"),
                transport: Transport::Udp,
            },
        );
    }

    /// Drains the endpoint: (responses sent, events).
    fn drain(e: &mut Endpoint) -> (Vec<Response>, Vec<SipEvent>) {
        let (mut resps, mut events) = (Vec::new(), Vec::new());
        while let Some(o) = e.poll_output() {
            match o {
                Output::Transmit(t) => {
                    if let Ok(SipMessage::Response(r)) = SipMessage::parse(t.data) {
                        resps.push(r);
                    }
                }
                Output::Event(ev) => events.push(ev),
                Output::Timeout(_) => break,
            }
        }
        (resps, events)
    }

    fn request(
        method: &str,
        branch: &str,
        from_tag: &str,
        to_tag: Option<&str>,
        seq: u32,
    ) -> String {
        let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        format!(
            "{method} sip:bob@127.0.0.1:5070 SIP/2.0
Via: SIP/2.0/UDP {PEER};branch=z9hG4bK{branch}
Max-Forwards: 70
From: <sip:alice@a.test>;tag={from_tag}
To: <sip:bob@b.test>{to_tag}
Call-ID: same-call-id@a.test
CSeq: {seq} {method}
Contact: <sip:alice@{PEER}>
Content-Length: 0

"
        )
    }

    /// Two incoming calls sharing a Call-ID (a forking/looping proxy may do this)
    /// with different From tags; returns (call, our tag) for each.
    fn two_calls(e: &mut Endpoint, now: Instant) -> Vec<(CallId, String)> {
        let mut out = Vec::new();
        for (branch, tag) in [("inv1", "a1"), ("inv2", "a2")] {
            feed(e, now, &request("INVITE", branch, tag, None, 1));
            let (_, events) = drain(e);
            let call = events
                .iter()
                .find_map(|ev| match ev {
                    SipEvent::IncomingCall { call, .. } => Some(*call),
                    _ => None,
                })
                .expect("incoming call");
            e.answer(now, call, 200, Bytes::new()).expect("answer");
            let (resps, _) = drain(e);
            let ok = resps.iter().find(|r| r.status == 200).expect("200 sent");
            let local = ok
                .headers
                .to()
                .expect("To")
                .tag()
                .expect("To tag")
                .to_owned();
            feed(
                e,
                now,
                &request("ACK", &format!("ack{tag}"), tag, Some(&local), 1),
            );
            let (_, events) = drain(e);
            assert!(events.contains(&SipEvent::CallConfirmed { call }));
            out.push((call, local));
        }
        assert_ne!(out[0].0, out[1].0);
        out
    }

    #[test]
    fn same_call_id_different_tags_route_to_their_own_call() {
        let now = Instant::now();
        let mut e = ep();
        let calls = two_calls(&mut e, now);
        assert_eq!(
            e.by_call_id.get("same-call-id@a.test").map(Vec::len),
            Some(2)
        );
        // BYE of the second dialog ends the second call only.
        feed(
            &mut e,
            now,
            &request("BYE", "bye2", "a2", Some(&calls[1].1), 2),
        );
        let (resps, events) = drain(&mut e);
        assert!(resps.iter().any(|r| r.status == 200));
        assert_eq!(
            events,
            vec![SipEvent::CallEnded {
                call: calls[1].0,
                by: EndedBy::Remote
            }]
        );
        assert!(e.calls.contains_key(&calls[0].0));
        assert!(!e.calls.contains_key(&calls[1].0));
        // The first dialog still answers INFO, then its BYE ends it.
        feed(
            &mut e,
            now,
            &request("INFO", "info1", "a1", Some(&calls[0].1), 2),
        );
        let (resps, _) = drain(&mut e);
        assert_eq!(resps.iter().map(|r| r.status).collect::<Vec<_>>(), [200]);
        feed(
            &mut e,
            now,
            &request("BYE", "bye1", "a1", Some(&calls[0].1), 3),
        );
        let (_, events) = drain(&mut e);
        assert_eq!(
            events,
            vec![SipEvent::CallEnded {
                call: calls[0].0,
                by: EndedBy::Remote
            }]
        );
        // Every index entry is gone with the calls.
        assert!(e.calls.is_empty());
        assert!(e.by_call_id.is_empty());
        assert!(e.by_server_key.is_empty());
        assert!(e.call_timers.is_empty());
    }

    #[test]
    fn malformed_call_info_value_keeps_the_good_ones() {
        let now = Instant::now();
        let mut e = ep();
        let invite = request("INVITE", "ci1", "a1", None, 1).replace(
            "Max-Forwards: 70\n",
            "Max-Forwards: 70\nCall-Info: <xmpp:a@b>;purpose=impp, garbage<<\n\
             Call-Info: <https://x/y.png>;purpose=icon\n",
        );
        feed(&mut e, now, &invite);
        let (_, events) = drain(&mut e);
        let call_info = events
            .iter()
            .find_map(|ev| match ev {
                SipEvent::IncomingCall { call_info, .. } => Some(call_info.clone()),
                _ => None,
            })
            .expect("incoming call");
        let got: Vec<(&str, Option<&str>)> = call_info
            .iter()
            .map(|c| (c.uri.as_str(), c.purpose()))
            .collect();
        assert_eq!(
            got,
            [
                ("xmpp:a@b", Some("impp")),
                ("https://x/y.png", Some("icon"))
            ]
        );
    }

    #[test]
    fn call_info_splitting_respects_quotes_and_angles() {
        assert_eq!(
            split_top_level_commas(r#"<http://a/b,c>;x="p,\"q", , <sip:d>"#),
            [r#"<http://a/b,c>;x="p,\"q""#, "<sip:d>"]
        );
        assert_eq!(split_top_level_commas("<a:b, c"), ["<a:b, c"]);
        let mut h = crate::msg::Headers::new();
        h.push(
            "Call-Info",
            "<sip:a@b>;purpose=impp,<>,x, <https://i/c.png>",
        );
        let got: Vec<String> = lenient_call_info(&h)
            .iter()
            .map(|c| c.uri.clone())
            .collect();
        assert_eq!(got, ["sip:a@b", "https://i/c.png"]);
    }

    #[test]
    fn failed_invite_server_transaction_cancels_the_ringing_call() {
        let now = Instant::now();
        let mut e = ep();
        feed(&mut e, now, &request("INVITE", "tf1", "a1", None, 1));
        let (_, events) = drain(&mut e);
        let call = events
            .iter()
            .find_map(|ev| match ev {
                SipEvent::IncomingCall { call, .. } => Some(*call),
                _ => None,
            })
            .expect("incoming call");
        e.ring(now, call).expect("ring");
        drain(&mut e);
        assert!(!e.by_server_key.is_empty());
        let target = Target::new(Transport::Udp, PEER.parse().expect("addr"));
        e.handle_input(
            now,
            Input::TransportError {
                target,
                reason: "connection reset".into(),
            },
        );
        let (_, events) = drain(&mut e);
        assert_eq!(
            events,
            vec![
                SipEvent::TransportFailed {
                    request: FailedRequest::IncomingCall(call),
                    target,
                    error: TransportFailure::Other("connection reset".into()),
                },
                SipEvent::CallCancelled { call }
            ]
        );
        assert!(e.calls.is_empty());
        assert!(e.by_call_id.is_empty());
        assert!(e.by_server_key.is_empty());
        assert!(e.call_timers.is_empty());
        assert!(matches!(
            e.answer(now, call, 200, Bytes::new()),
            Err(EndpointError::UnknownCall(_))
        ));
        // A second failure report for the same target finds nothing more to end.
        e.handle_input(
            now,
            Input::TransportError {
                target,
                reason: "again".into(),
            },
        );
        let (_, events) = drain(&mut e);
        assert!(events.is_empty(), "{events:?}");
    }

    #[test]
    fn bye_for_unknown_dialog_gets_481() {
        let now = Instant::now();
        let mut e = ep();
        let calls = two_calls(&mut e, now);
        // Our tag of call 1 with the peer tag of call 2: no such dialog.
        let wrong = [
            request("BYE", "b1", "a2", Some(&calls[0].1), 2),
            request("BYE", "b2", "a1", Some("not-our-tag"), 2),
            request("BYE", "b3", "a1", Some(&calls[0].1), 2).replace("same-call-id", "other"),
        ];
        for bye in wrong {
            feed(&mut e, now, &bye);
            let (resps, events) = drain(&mut e);
            assert_eq!(resps.iter().map(|r| r.status).collect::<Vec<_>>(), [481]);
            assert!(events.is_empty(), "{events:?}");
        }
        assert_eq!(e.calls.len(), 2);
    }

    #[test]
    fn retransmit_timers_are_filed_once_and_cleared_by_ack() {
        let now = Instant::now();
        let mut e = ep();
        feed(&mut e, now, &request("INVITE", "inv1", "a1", None, 1));
        let (_, events) = drain(&mut e);
        let Some(SipEvent::IncomingCall { call, .. }) = events.first().cloned() else {
            panic!("incoming call expected: {events:?}");
        };
        e.answer(now, call, 200, Bytes::new()).expect("answer");
        let (resps, _) = drain(&mut e);
        let local = resps[0]
            .headers
            .to()
            .expect("To")
            .tag()
            .expect("tag")
            .to_owned();
        let t1 = e.config.timers.t1;
        assert_eq!(e.call_timers.len(), 1);
        assert_eq!(e.poll_timeout().map(|t| t <= now + t1), Some(true));
        // Two retransmissions: the entry moves, there is still one.
        for k in 1..=2u32 {
            let at = now + t1 * (2u32.pow(k) - 1);
            e.handle_input(at, Input::Timeout);
            let (resps, _) = drain(&mut e);
            assert!(resps.iter().any(|r| r.status == 200), "retransmission {k}");
            assert_eq!(e.call_timers.len(), 1);
        }
        feed(
            &mut e,
            now + t1 * 4,
            &request("ACK", "ack1", "a1", Some(&local), 1),
        );
        let (_, events) = drain(&mut e);
        assert_eq!(events, vec![SipEvent::CallConfirmed { call }]);
        assert!(e.call_timers.is_empty());
        // The answered INVITE is no longer kept.
        assert!(e.calls.get(&call).is_some_and(|c| c.invite.is_none()));
    }

    #[test]
    fn uac_ack_is_kept_for_64_t1_then_dropped_and_rebuilt_on_demand() {
        let now = Instant::now();
        let mut e = ep();
        let to = Uri::parse("sip:alice@127.0.0.1:5080").expect("uri");
        let call = e
            .invite(now, to, Bytes::new(), CallOptions::default())
            .expect("invite");
        let Some(Output::Transmit(t)) = e.poll_output() else {
            panic!("INVITE expected");
        };
        let Ok(SipMessage::Request(inv)) = SipMessage::parse(t.data) else {
            panic!("INVITE parses");
        };
        drain(&mut e);
        let mut ok = String::from("SIP/2.0 200 OK\n");
        for h in ["Via", "From", "Call-ID", "CSeq"] {
            let v = inv.headers.get(h).expect("header");
            ok.push_str(&format!("{h}: {v}\n"));
        }
        let to = inv.headers.get("To").expect("To");
        ok.push_str(&format!("To: {to};tag=peer\nContact: <sip:alice@{PEER}>\n"));
        ok.push_str("Content-Length: 0\n\n");
        let count_acks = |e: &mut Endpoint| {
            let mut n = 0;
            while let Some(o) = e.poll_output() {
                match o {
                    Output::Transmit(t) => {
                        if let Ok(SipMessage::Request(r)) = SipMessage::parse(t.data) {
                            n += usize::from(r.method == Method::Ack);
                        }
                    }
                    Output::Event(_) => {}
                    Output::Timeout(_) => break,
                }
            }
            n
        };
        feed(&mut e, now, &ok);
        assert_eq!(count_acks(&mut e), 1);
        let c = e.calls.get(&call).expect("call");
        assert!(c.invite.is_none(), "the answered INVITE is dropped");
        let stored = c.ack.clone().expect("ACK kept");
        // A retransmitted 2xx gets the very same ACK.
        feed(&mut e, now, &ok);
        let mut again = Vec::new();
        while let Some(Output::Transmit(t)) = e.poll_output() {
            again.push(t.data);
        }
        assert_eq!(again, vec![stored.data.clone()]);
        // 64*T1 later no retransmission can come: the ACK is dropped.
        let t1 = e.config.timers.t1;
        assert_eq!(e.poll_timeout(), Some(now + 64 * t1));
        e.handle_input(now + 64 * t1, Input::Timeout);
        count_acks(&mut e);
        assert!(e.calls.get(&call).is_some_and(|c| c.ack.is_none()));
        // A late 2xx all the same is ACKed with a rebuilt ACK.
        feed(&mut e, now + 64 * t1, &ok);
        assert_eq!(count_acks(&mut e), 1);
        e.bye(now + 64 * t1, call).expect("bye");
    }
}
