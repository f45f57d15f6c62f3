//! RFC 3264 offer/answer for one audio stream, with SDES-SRTP (RFC 4568) and an optional
//! opaque video stream.
//!
//! Payload-type numbers: the numbers in *our* SDP are the ones the peer sends to us
//! (`recv_payload_map`); the numbers in the *peer's* SDP are the ones we send with
//! (`send_codec.pt`). They may differ (RFC 3264 §5.1, §6.1).
//!
//! The codec we send with is the first codec listed in the *answer* that both sides support,
//! so both ends agree (RFC 3264 §6.1: the answerer lists its preference).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use rand::rngs::StdRng;
use rand::{CryptoRng, RngCore, SeedableRng};

use super::model::*;
use crate::keying::sdes::{CryptoAttribute, CryptoError, MasterKey, SrtpSuite};

/// Stream direction (RFC 3264 §5.1, RFC 8866 §6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// Send and receive (the default when no attribute is present).
    #[default]
    SendRecv,
    /// Send only (we put the peer on hold).
    SendOnly,
    /// Receive only.
    RecvOnly,
    /// Neither.
    Inactive,
}

impl Direction {
    /// Whether this side sends.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }
    /// Whether this side receives.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
    /// Builds a direction from send/receive flags.
    pub fn from_flags(send: bool, recv: bool) -> Self {
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }
    /// The SDP attribute name.
    pub fn attr(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
    /// The direction of a media section (media level, else session level, else sendrecv).
    pub fn of(sdp: &SessionDescription, m: &MediaDescription) -> Self {
        let pick = |attrs: &[Attribute]| {
            attrs.iter().rev().find_map(|a| match a.name.as_str() {
                "sendrecv" => Some(Direction::SendRecv),
                "sendonly" => Some(Direction::SendOnly),
                "recvonly" => Some(Direction::RecvOnly),
                "inactive" => Some(Direction::Inactive),
                _ => None,
            })
        };
        pick(&m.attributes)
            .or_else(|| pick(&sdp.attributes))
            .unwrap_or_default()
    }
    /// RFC 3264 §6.1: the answer's direction given the offer's and what we want.
    pub fn answer_to(offer: Direction, wanted: Direction) -> Self {
        Direction::from_flags(
            offer.receives() && wanted.sends(),
            offer.sends() && wanted.receives(),
        )
    }
}

/// An audio codec we can offer or accept, in preference order in [`MediaConfig::codecs`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AudioCodec {
    /// Opus (RFC 7587), always signalled `opus/48000/2`.
    Opus {
        /// Offer/ask for in-band FEC (`useinbandfec=1`).
        fec: bool,
        /// `maxaveragebitrate` we ask the peer to respect.
        max_average_bitrate: Option<u32>,
    },
    /// G.711 µ-law, static PT 0.
    Pcmu,
    /// G.711 A-law, static PT 8.
    Pcma,
}

/// A codec as negotiated: payload type, encoding name, rate, channels and fmtp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecSpec {
    /// RTP payload type.
    pub pt: u8,
    /// Encoding name as in `a=rtpmap` (e.g. `opus`, `PCMU`, `telephone-event`).
    pub name: String,
    /// RTP clock rate.
    pub clock_rate: u32,
    /// Channels from `a=rtpmap` (1 when absent).
    pub channels: u8,
    /// `a=fmtp` parameters, when present.
    pub fmtp: Option<String>,
}

impl CodecSpec {
    fn same_codec(&self, other: &CodecSpec) -> bool {
        self.name.eq_ignore_ascii_case(&other.name)
            && self.clock_rate == other.clock_rate
            && self.channels == other.channels
    }
    /// Whether this is RFC 4733 `telephone-event`.
    pub fn is_telephone_event(&self) -> bool {
        self.name.eq_ignore_ascii_case("telephone-event")
    }
    /// A `key=value` fmtp parameter.
    pub fn fmtp_param(&self, key: &str) -> Option<&str> {
        self.fmtp.as_deref()?.split(';').find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            k.trim().eq_ignore_ascii_case(key).then_some(v.trim())
        })
    }
}

/// SRTP parameters of a negotiated stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpParams {
    /// The suite selected by the answer.
    pub suite: SrtpSuite,
    /// Our key: we protect what we send with it.
    pub local_key: MasterKey,
    /// The peer's key: we unprotect what we receive with it.
    pub remote_key: MasterKey,
}

/// Telephone-event payload types (RFC 4733).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TelephoneEventPts {
    /// PT we send events with (from the peer's SDP), at the send codec's clock rate.
    pub send: Option<u8>,
    /// PT the peer sends events with (from our SDP).
    pub recv: Option<u8>,
}

/// The audio stream agreed by offer/answer; feeds [`crate::session::SessionConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedAudio {
    /// Where to send RTP.
    pub remote_addr: SocketAddr,
    /// Where to send RTCP (equal to `remote_addr` with rtcp-mux).
    pub remote_rtcp_addr: SocketAddr,
    /// The codec we send with.
    pub send_codec: CodecSpec,
    /// PT → codec for what we accept (includes telephone-event).
    pub recv_payload_map: BTreeMap<u8, CodecSpec>,
    /// Telephone-event PTs.
    pub telephone_event_pt: TelephoneEventPts,
    /// Packetization time in ms (the peer's `a=ptime`, else ours).
    pub ptime: u32,
    /// Direction from our point of view.
    pub direction: Direction,
    /// RTP and RTCP share one port (RFC 5761).
    pub rtcp_mux: bool,
    /// SRTP keys when the stream is `RTP/SAVP`.
    pub srtp: Option<SrtpParams>,
}

/// An accepted video stream. Its payload is opaque: this crate has no video codec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedVideo {
    /// Where to send video RTP.
    pub remote_addr: SocketAddr,
    /// Payload type (the offer's first format).
    pub pt: u8,
    /// `a=rtpmap` encoding of that PT, when given.
    pub encoding: Option<String>,
    /// Direction from our point of view.
    pub direction: Direction,
    /// SRTP keys when `RTP/SAVP`.
    pub srtp: Option<SrtpParams>,
}

/// What RFC 7081 §7 calls for the user to see: is media encrypted, and were the keys
/// carried over secure signalling (SDES keys are only as safe as the SIP hop: TLS).
/// Its `Display` is a one-line text for the user, e.g. `SRTP AES_CM_128_HMAC_SHA1_80,
/// SDES keys sent over INSECURE signalling: not confidential`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecuritySummary {
    /// The SRTP suite in use, `None` for plain RTP.
    pub srtp_suite: Option<SrtpSuite>,
    /// Supplied by the caller: whether the SDP travelled over TLS (`sips:`/TLS hop).
    pub keys_via_secure_signalling: bool,
    /// `srtp_suite.is_some() && keys_via_secure_signalling`.
    pub confidential: bool,
}

impl std::fmt::Display for SecuritySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.srtp_suite, self.keys_via_secure_signalling) {
            (None, _) => f.write_str("plain RTP: not encrypted"),
            (Some(s), true) => write!(
                f,
                "SRTP {}, SDES keys sent over secure signalling: confidential",
                s.name()
            ),
            (Some(s), false) => write!(
                f,
                "SRTP {}, SDES keys sent over INSECURE signalling: not confidential \
                 (anyone on the signalling path can decrypt)",
                s.name()
            ),
        }
    }
}

/// Result of a completed offer/answer exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The audio stream.
    pub audio: NegotiatedAudio,
    /// The video stream, when offered and accepted.
    pub video: Option<NegotiatedVideo>,
    /// Security summary.
    pub security: SecuritySummary,
}

/// What to do with an offered video stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VideoPolicy {
    /// Answer with port 0 (RFC 3264 §6).
    #[default]
    Decline,
    /// Accept on this local port, carrying opaque app-encoded frames.
    AcceptOpaque {
        /// Our video RTP port.
        port: u16,
    },
}

/// Local configuration for offer/answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaConfig {
    /// Our RTP address (its IP goes into `c=` and `o=`).
    pub local_addr: SocketAddr,
    /// Our RTCP port when not muxed (`a=rtcp`, RFC 3605); default RTP port + 1.
    pub local_rtcp_port: Option<u16>,
    /// Audio codecs in preference order.
    pub codecs: Vec<AudioCodec>,
    /// Offer/accept RFC 4733 telephone-event.
    pub telephone_event: bool,
    /// Our preferred packetization time (ms).
    pub ptime: u32,
    /// Direction we want (hold = `SendOnly`).
    pub direction: Direction,
    /// Offer `a=rtcp-mux`.
    pub rtcp_mux: bool,
    /// SRTP suites in preference order; empty offers plain `RTP/AVP`.
    pub srtp_suites: Vec<SrtpSuite>,
    /// Accept/offer plain RTP. Off by default: secure by default.
    pub allow_plain_rtp: bool,
    /// Put SDES keys (`a=crypto`) into SDP, and accept the peer's, even when the SDP
    /// travels over insecure signalling (UDP/TCP without TLS). Off by default: RFC 4568
    /// §8.3 and RFC 7081 §7 require SDES keys to be carried only over secure signalling,
    /// since anyone who sees the SDP can decrypt the media. Turn it on only knowingly
    /// (e.g. a lab peer without TLS); [`SecuritySummary`] then reports the media as not
    /// confidential.
    pub allow_insecure_sdes: bool,
    /// Keep our SDES keys in re-offers and re-answers of this call instead of drawing
    /// fresh ones for every exchange (the default, see [`OfferAnswer`]). RFC 4568 §7.1.4
    /// allows it only while SSRC, rollover counter and sequence numbers continue under the
    /// key, which holds when every exchange is applied to the same session with
    /// [`crate::session::MediaSession::update`] (it keeps the SRTP context of an
    /// unchanged key); never when a new session would start under the same key (a
    /// keystream would be reused, RFC 3711 §9.1). For peers that ignore new keys in a
    /// re-INVITE, such as baresip 1.0.
    pub reuse_sdes_keys: bool,
    /// Offered video handling.
    pub video: VideoPolicy,
}

impl MediaConfig {
    /// Defaults: Opus (FEC) then PCMU, PCMA; telephone-event; 20 ms; rtcp-mux; all SRTP
    /// suites (strongest first); plain RTP refused; SDES keys only over secure
    /// signalling; video declined.
    pub fn new(local_addr: SocketAddr) -> Self {
        MediaConfig {
            local_addr,
            local_rtcp_port: None,
            codecs: vec![
                AudioCodec::Opus {
                    fec: true,
                    max_average_bitrate: None,
                },
                AudioCodec::Pcmu,
                AudioCodec::Pcma,
            ],
            telephone_event: true,
            ptime: 20,
            direction: Direction::SendRecv,
            rtcp_mux: true,
            srtp_suites: SrtpSuite::ALL.to_vec(),
            allow_plain_rtp: false,
            allow_insecure_sdes: false,
            reuse_sdes_keys: false,
            video: VideoPolicy::Decline,
        }
    }
}

/// Why offer/answer failed. Most are the peer's SDP being unacceptable (a SIP UA answers
/// 488); `Config` is our misuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NegotiationError {
    /// Plain RTP offered/answered while `allow_plain_rtp` is false (peer incompatible).
    #[error("plain RTP refused: SRTP is required")]
    PlainRtpRefused,
    /// SDES keys would travel, or travelled, over insecure signalling while
    /// [`MediaConfig::allow_insecure_sdes`] is false (RFC 4568 §8.3, RFC 7081 §7): use a
    /// TLS (`sips:`) signalling path, or opt in knowingly. Local policy, not the peer's
    /// fault; a SIP UA answers such an offer with 488.
    #[error(
        "SDES-SRTP keys refused over insecure signalling (RFC 4568 §8.3): use TLS or set allow_insecure_sdes"
    )]
    InsecureSignalling,
    /// No usable audio m-line (peer incompatible).
    #[error("no audio stream")]
    NoAudio,
    /// The answer rejected audio (port 0).
    #[error("audio stream rejected by the peer")]
    AudioRejected,
    /// No codec in common (peer incompatible).
    #[error("no common audio codec")]
    NoCommonCodec,
    /// No `a=crypto` we can use, or the answer's does not match the offer (peer).
    #[error("no acceptable crypto attribute: {0}")]
    NoAcceptableCrypto(String),
    /// Transport profile we do not implement (e.g. `UDP/TLS/RTP/SAVPF`) (peer incompatible).
    #[error("unsupported transport {0}")]
    UnsupportedTransport(String),
    /// No `c=` for the stream (peer's fault).
    #[error("no connection address")]
    MissingConnection,
    /// `c=` holds a host name: resolve it first with
    /// [`SessionDescription::resolve_hosts`] (our misuse).
    #[error("connection address {0} is a host name; resolve it first")]
    UnresolvedHost(String),
    /// The answer does not fit the offer (peer's fault).
    #[error("answer does not match the offer: {0}")]
    AnswerMismatch(&'static str),
    /// `accept_answer` without an outstanding offer (our misuse).
    #[error("no offer outstanding")]
    NoOfferOutstanding,
    /// Our configuration cannot produce a description (our misuse).
    #[error("invalid configuration: {0}")]
    Config(&'static str),
}

const PT_OPUS: u8 = 111;
const PT_TE_48K: u8 = 101;
const PT_TE_8K: u8 = 100;

/// Codec table of a media section: PT → codec, in m-line order.
pub fn codecs_of(m: &MediaDescription) -> Vec<CodecSpec> {
    let mut out = Vec::new();
    for f in &m.formats {
        let Ok(pt) = f.parse::<u8>() else { continue };
        if pt > 127 {
            continue;
        }
        let rtpmap = m.attributes_named("rtpmap").find_map(|a| {
            let v = a.value.as_deref()?;
            let (p, enc) = v.split_once(' ')?;
            (p.parse::<u8>().ok()? == pt).then_some(enc.trim())
        });
        let (name, clock_rate, channels) = match rtpmap {
            Some(enc) => {
                let mut it = enc.split('/');
                let name = it.next().unwrap_or_default().to_owned();
                let Some(rate) = it.next().and_then(|r| r.parse::<u32>().ok()) else {
                    continue;
                };
                let ch = it.next().and_then(|c| c.parse::<u8>().ok()).unwrap_or(1);
                (name, rate, ch)
            }
            None => match pt {
                0 => ("PCMU".to_owned(), 8000, 1),
                8 => ("PCMA".to_owned(), 8000, 1),
                _ => continue,
            },
        };
        let fmtp = m.attributes_named("fmtp").find_map(|a| {
            let v = a.value.as_deref()?;
            let (p, params) = v.split_once(' ')?;
            (p.parse::<u8>().ok()? == pt).then(|| params.trim().to_owned())
        });
        out.push(CodecSpec {
            pt,
            name,
            clock_rate,
            channels,
            fmtp,
        });
    }
    out
}

fn supported(spec: &CodecSpec) -> bool {
    let n = spec.name.to_ascii_lowercase();
    matches!(
        (n.as_str(), spec.clock_rate, spec.channels),
        ("opus", 48000, 2) | ("pcmu", 8000, 1) | ("pcma", 8000, 1) | ("telephone-event", _, 1)
    )
}

fn local_codec_table(cfg: &MediaConfig) -> Vec<CodecSpec> {
    let mut out = Vec::new();
    let mut rates = Vec::new();
    for c in &cfg.codecs {
        match c {
            AudioCodec::Opus {
                fec,
                max_average_bitrate,
            } => {
                let mut fmtp = String::from("minptime=10");
                if *fec {
                    fmtp.push_str(";useinbandfec=1");
                }
                if let Some(b) = max_average_bitrate {
                    fmtp.push_str(&format!(";maxaveragebitrate={b}"));
                }
                out.push(CodecSpec {
                    pt: PT_OPUS,
                    name: "opus".into(),
                    clock_rate: 48000,
                    channels: 2,
                    fmtp: Some(fmtp),
                });
                rates.push(48000);
            }
            AudioCodec::Pcmu => {
                out.push(CodecSpec {
                    pt: 0,
                    name: "PCMU".into(),
                    clock_rate: 8000,
                    channels: 1,
                    fmtp: None,
                });
                rates.push(8000);
            }
            AudioCodec::Pcma => {
                out.push(CodecSpec {
                    pt: 8,
                    name: "PCMA".into(),
                    clock_rate: 8000,
                    channels: 1,
                    fmtp: None,
                });
                rates.push(8000);
            }
        }
    }
    if cfg.telephone_event {
        for (rate, pt) in [(48000, PT_TE_48K), (8000, PT_TE_8K)] {
            if rates.contains(&rate) {
                out.push(CodecSpec {
                    pt,
                    name: "telephone-event".into(),
                    clock_rate: rate,
                    channels: 1,
                    fmtp: Some("0-16".into()),
                });
            }
        }
    }
    out
}

fn push_codec_attrs(m: &mut MediaDescription, c: &CodecSpec) {
    let enc = if c.channels > 1 {
        format!("{} {}/{}/{}", c.pt, c.name, c.clock_rate, c.channels)
    } else {
        format!("{} {}/{}", c.pt, c.name, c.clock_rate)
    };
    m.attributes.push(Attribute::value("rtpmap", enc));
    if let Some(f) = &c.fmtp {
        m.attributes
            .push(Attribute::value("fmtp", format!("{} {}", c.pt, f)));
    }
}

fn addr_type(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "IP4" } else { "IP6" }
}

/// Our audio media section.
fn audio_section(
    config: &MediaConfig,
    codecs: &[CodecSpec],
    direction: Direction,
    crypto: Vec<CryptoAttribute>,
    secure: bool,
) -> MediaDescription {
    let mut m = MediaDescription {
        media: "audio".into(),
        port: config.local_addr.port(),
        num_ports: None,
        proto: if secure {
            "RTP/SAVP".into()
        } else {
            "RTP/AVP".into()
        },
        formats: codecs.iter().map(|c| c.pt.to_string()).collect(),
        connection: None,
        other: Vec::new(),
        attributes: Vec::new(),
    };
    for c in codecs {
        push_codec_attrs(&mut m, c);
    }
    m.attributes
        .push(Attribute::value("ptime", config.ptime.to_string()));
    m.attributes.push(Attribute::flag(direction.attr()));
    if config.rtcp_mux {
        m.attributes.push(Attribute::flag("rtcp-mux"));
    }
    if !config.rtcp_mux || config.local_rtcp_port.is_some() {
        let p = config
            .local_rtcp_port
            .unwrap_or(config.local_addr.port().wrapping_add(1));
        m.attributes.push(Attribute::value("rtcp", p.to_string()));
    }
    for c in crypto {
        m.attributes.push(Attribute::value("crypto", c.to_value()));
    }
    m
}

/// Offer/answer state of one call: keeps `o=` ids, our keys, and the outstanding offer.
///
/// ## SDES keys and re-offers (RFC 4568 §7.1.4)
/// Every offer/answer exchange gets fresh master keys: the first offer or answer built
/// after a completed exchange (an answer we sent, or an answer we accepted) draws new
/// keys for every suite. Keeping a key across a re-INVITE is only safe while SSRC and
/// packet index continue under it (otherwise a keystream is reused, RFC 3711 §9.1);
/// this type cannot know whether the application applies every exchange to the same
/// session, so by default it never keeps them ([`MediaConfig::reuse_sdes_keys`] opts
/// out, for peers that need it).
/// [`crate::session::MediaSession::update`] switches the SRTP contexts whose key changed
/// and keeps the others (and all RTP state). An offer re-created before its answer
/// arrived (it replaces the outstanding one) keeps that offer's keys.
///
/// Keys come from a ChaCha12 generator seeded once from the caller's cryptographically
/// secure RNG ([`OfferAnswer::new`]). The type is deliberately not `Clone`: a clone
/// would draw the same future keys.
#[derive(Debug)]
pub struct OfferAnswer {
    config: MediaConfig,
    session_id: u64,
    version: u64,
    last_body: Option<String>,
    keys: Vec<(SrtpSuite, MasterKey)>,
    /// The current keys were sent in a completed exchange: the next description gets new.
    keys_spent: bool,
    rng: StdRng,
    pending: Option<SessionDescription>,
    local: Option<SessionDescription>,
}

fn fresh_keys(rng: &mut StdRng) -> Vec<(SrtpSuite, MasterKey)> {
    SrtpSuite::ALL
        .iter()
        .map(|s| (*s, MasterKey::generate(*s, rng)))
        .collect()
}

impl OfferAnswer {
    /// New state; the `o=` session id and all SRTP keys (now and for later re-offers)
    /// come from `rng`, which must be cryptographically secure (e.g. `rand::rng()`,
    /// RFC 4568 §6.1).
    pub fn new<R: CryptoRng + RngCore + ?Sized>(config: MediaConfig, rng: &mut R) -> Self {
        let session_id = rng.next_u64() >> 2;
        let mut seed = <StdRng as SeedableRng>::Seed::default();
        rng.fill_bytes(&mut seed);
        let mut rng = StdRng::from_seed(seed);
        let keys = fresh_keys(&mut rng);
        OfferAnswer {
            config,
            session_id,
            version: session_id,
            last_body: None,
            keys,
            keys_spent: false,
            rng,
            pending: None,
            local: None,
        }
    }

    /// Like [`OfferAnswer::new`] with a generator seeded from `seed`: deterministic, so
    /// the SRTP keys are predictable from the seed. For tests and fuzzing only (cargo
    /// feature `test-util`); real calls use [`OfferAnswer::new`] with a secure RNG.
    #[cfg(feature = "test-util")]
    #[doc(hidden)]
    pub fn with_seed(config: MediaConfig, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        Self::new(config, &mut rng)
    }

    /// The configuration.
    pub fn config(&self) -> &MediaConfig {
        &self.config
    }

    /// The configuration, to change before a re-offer or re-answer (e.g. other codecs, a
    /// new local address or port); changes take effect in the next offer or answer.
    pub fn config_mut(&mut self) -> &mut MediaConfig {
        &mut self.config
    }

    /// Changes the wanted direction (hold: `SendOnly`; resume: `SendRecv`); takes effect
    /// in the next offer or answer.
    pub fn set_direction(&mut self, d: Direction) {
        self.config.direction = d;
    }

    /// Our last sent description (offer or answer).
    pub fn local_description(&self) -> Option<&SessionDescription> {
        self.local.as_ref()
    }

    /// Starts a new exchange: fresh keys when the current ones were used in a completed
    /// exchange (see the type's docs).
    fn begin_exchange(&mut self) {
        if std::mem::take(&mut self.keys_spent) && !self.config.reuse_sdes_keys {
            self.keys = fresh_keys(&mut self.rng);
        }
    }

    fn key_for(&self, suite: SrtpSuite) -> MasterKey {
        self.keys
            .iter()
            .find(|(s, _)| *s == suite)
            .map(|(_, k)| k.clone())
            .unwrap_or(MasterKey {
                key: Vec::new(),
                salt: Vec::new(),
            })
    }

    fn finish(&mut self, media: Vec<MediaDescription>) -> SessionDescription {
        let ip = self.config.local_addr.ip();
        let mut sdp = SessionDescription {
            origin: Origin {
                username: "-".into(),
                session_id: self.session_id,
                session_version: self.version,
                addr_type: addr_type(ip).into(),
                address: ip.to_string(),
            },
            session_name: "-".into(),
            connection: Some(Connection::ip(ip)),
            timing: (0, 0),
            other: Vec::new(),
            attributes: Vec::new(),
            media,
        };
        // RFC 3264 §8: the version changes only when the description changes.
        let body = sdp.to_string();
        let body_wo_origin = body
            .split_once("\r\ns=")
            .map(|x| x.1.to_owned())
            .unwrap_or(body);
        if let Some(prev) = &self.last_body
            && *prev != body_wo_origin
        {
            self.version += 1;
            sdp.origin.session_version = self.version;
        }
        self.last_body = Some(body_wo_origin);
        self.local = Some(sdp.clone());
        sdp
    }

    /// Creates an offer (initial or re-offer, e.g. for hold or a new address). RFC 3264
    /// §5. `secure_signalling`: the offer will travel over TLS end to end as far as we
    /// can tell (a `sips:` or TLS hop); without it an SRTP offer (which carries our
    /// SDES keys) is refused with [`NegotiationError::InsecureSignalling`] unless
    /// [`MediaConfig::allow_insecure_sdes`] is set. A re-offer after a completed
    /// exchange carries fresh keys.
    pub fn create_offer(
        &mut self,
        secure_signalling: bool,
    ) -> Result<SessionDescription, NegotiationError> {
        let codecs = local_codec_table(&self.config);
        if codecs.is_empty() {
            return Err(NegotiationError::Config("no codecs"));
        }
        let secure = !self.config.srtp_suites.is_empty();
        if !secure && !self.config.allow_plain_rtp {
            return Err(NegotiationError::Config(
                "no SRTP suite and plain RTP not allowed",
            ));
        }
        if secure && !secure_signalling && !self.config.allow_insecure_sdes {
            return Err(NegotiationError::InsecureSignalling);
        }
        if self.pending.is_none() {
            self.begin_exchange();
        }
        let crypto = self
            .config
            .srtp_suites
            .iter()
            .enumerate()
            .map(|(i, s)| CryptoAttribute {
                tag: i as u32 + 1,
                suite: *s,
                key: self.key_for(*s),
                lifetime: None,
            })
            .collect();
        let m = audio_section(&self.config, &codecs, self.config.direction, crypto, secure);
        let sdp = self.finish(vec![m]);
        self.pending = Some(sdp.clone());
        Ok(sdp)
    }

    /// Processes the answer to our outstanding offer. `secure_signalling`: the SDP came
    /// over TLS (RFC 7081 §7).
    pub fn accept_answer(
        &mut self,
        answer: &SessionDescription,
        secure_signalling: bool,
    ) -> Result<Negotiated, NegotiationError> {
        let offer = self
            .pending
            .take()
            .ok_or(NegotiationError::NoOfferOutstanding)?;
        let n = process_answer(&self.config, &offer, answer, secure_signalling)?;
        self.keys_spent = true;
        Ok(n)
    }

    /// Answers an offer (RFC 3264 §6). Returns the answer to send and the result.
    /// `secure_signalling`: the offer came, and the answer goes, over TLS. Without it an
    /// `RTP/SAVP` stream (SDES keys both ways) is refused with
    /// [`NegotiationError::InsecureSignalling`] unless
    /// [`MediaConfig::allow_insecure_sdes`] is set. Each answer after a completed
    /// exchange carries fresh keys.
    pub fn answer_offer(
        &mut self,
        offer: &SessionDescription,
        secure_signalling: bool,
    ) -> Result<(SessionDescription, Negotiated), NegotiationError> {
        self.pending = None;
        self.begin_exchange();
        let mut out_media = Vec::with_capacity(offer.media.len());
        let mut audio: Option<NegotiatedAudio> = None;
        let mut video: Option<NegotiatedVideo> = None;
        let mut last_err = None;
        for (idx, om) in offer.media.iter().enumerate() {
            let rejected = || MediaDescription {
                media: om.media.clone(),
                port: 0,
                num_ports: None,
                proto: om.proto.clone(),
                formats: om.formats.clone(),
                connection: None,
                other: Vec::new(),
                attributes: Vec::new(),
            };
            if om.port == 0 {
                out_media.push(rejected());
                continue;
            }
            if om.media == "audio" && audio.is_none() {
                match self.answer_audio(offer, idx, om, secure_signalling) {
                    Ok((m, a)) => {
                        out_media.push(m);
                        audio = Some(a);
                    }
                    Err(e) => {
                        last_err = Some(e);
                        out_media.push(rejected());
                    }
                }
            } else if om.media == "video" && video.is_none() {
                match (
                    self.config.video,
                    self.answer_video(offer, idx, om, secure_signalling),
                ) {
                    (VideoPolicy::AcceptOpaque { .. }, Ok(Some((m, v)))) => {
                        out_media.push(m);
                        video = Some(v);
                    }
                    _ => out_media.push(rejected()),
                }
            } else {
                out_media.push(rejected());
            }
        }
        let Some(audio) = audio else {
            return Err(last_err.unwrap_or(NegotiationError::NoAudio));
        };
        let answer = self.finish(out_media);
        self.keys_spent = true;
        Ok((
            answer,
            Negotiated {
                security: summary(&audio.srtp, secure_signalling),
                audio,
                video,
            },
        ))
    }

    fn select_crypto(
        &self,
        om: &MediaDescription,
        secure_signalling: bool,
    ) -> Result<Option<(CryptoAttribute, CryptoAttribute)>, NegotiationError> {
        match om.proto.as_str() {
            "RTP/AVP" => {
                if self.config.allow_plain_rtp {
                    Ok(None)
                } else {
                    Err(NegotiationError::PlainRtpRefused)
                }
            }
            "RTP/SAVP" if !secure_signalling && !self.config.allow_insecure_sdes => {
                Err(NegotiationError::InsecureSignalling)
            }
            "RTP/SAVP" => {
                // RFC 4568 §7.1.1: take the first offered line we can use (the offerer's
                // preference), skipping those with parameters we do not support.
                let mut why = String::from("no a=crypto");
                for a in om.attributes_named("crypto") {
                    match CryptoAttribute::parse(a.value.as_deref().unwrap_or_default()) {
                        Ok(c) if self.config.srtp_suites.contains(&c.suite) => {
                            let ours = CryptoAttribute {
                                tag: c.tag,
                                suite: c.suite,
                                key: self.key_for(c.suite),
                                lifetime: None,
                            };
                            return Ok(Some((ours, c)));
                        }
                        Ok(c) => why = format!("suite {} disabled", c.suite.name()),
                        Err(CryptoError::UnsupportedSuite(s)) => {
                            why = format!("unsupported suite {s}")
                        }
                        Err(e) => why = e.to_string(),
                    }
                }
                Err(NegotiationError::NoAcceptableCrypto(why))
            }
            other => Err(NegotiationError::UnsupportedTransport(
                other.chars().take(64).collect(),
            )),
        }
    }

    fn answer_audio(
        &self,
        offer: &SessionDescription,
        idx: usize,
        om: &MediaDescription,
        secure_signalling: bool,
    ) -> Result<(MediaDescription, NegotiatedAudio), NegotiationError> {
        let crypto = self.select_crypto(om, secure_signalling)?;
        let offered = codecs_of(om);
        let ours = local_codec_table(&self.config);
        // Our preference order, the offer's PT numbers.
        let mut chosen: Vec<CodecSpec> = Vec::new();
        for c in ours.iter().filter(|c| !c.is_telephone_event()) {
            if let Some(o) = offered.iter().find(|o| o.same_codec(c) && supported(o)) {
                let mut a = o.clone();
                a.fmtp = c.fmtp.clone();
                chosen.push(a);
            }
        }
        let Some(first) = chosen.first().cloned() else {
            return Err(NegotiationError::NoCommonCodec);
        };
        if self.config.telephone_event
            && let Some(te) = offered
                .iter()
                .find(|o| o.is_telephone_event() && o.clock_rate == first.clock_rate)
        {
            let mut te = te.clone();
            te.fmtp = Some("0-16".into());
            chosen.push(te);
        }
        let dir = Direction::answer_to(Direction::of(offer, om), self.config.direction);
        let secure = crypto.is_some();
        let (crypto_attrs, srtp) = match crypto {
            Some((ours, theirs)) => (
                vec![ours.clone()],
                Some(SrtpParams {
                    suite: ours.suite,
                    local_key: ours.key,
                    remote_key: theirs.key,
                }),
            ),
            None => (Vec::new(), None),
        };
        let mut cfg = self.config.clone();
        cfg.rtcp_mux = self.config.rtcp_mux && om.has_flag("rtcp-mux");
        let m = audio_section(&cfg, &chosen, dir, crypto_attrs, secure);
        let neg = derive(&cfg, &m, dir, offer, idx, om, &m, srtp)?;
        Ok((m, neg))
    }

    fn answer_video(
        &self,
        offer: &SessionDescription,
        idx: usize,
        om: &MediaDescription,
        secure_signalling: bool,
    ) -> Result<Option<(MediaDescription, NegotiatedVideo)>, NegotiationError> {
        let VideoPolicy::AcceptOpaque { port } = self.config.video else {
            return Ok(None);
        };
        let crypto = self.select_crypto(om, secure_signalling)?;
        let Some(fmt) = om.formats.first() else {
            return Ok(None);
        };
        let Ok(pt) = fmt.parse::<u8>() else {
            return Ok(None);
        };
        let encoding = om.attributes_named("rtpmap").find_map(|a| {
            let (p, e) = a.value.as_deref()?.split_once(' ')?;
            (p == fmt).then(|| e.to_owned())
        });
        let dir = Direction::answer_to(Direction::of(offer, om), self.config.direction);
        let ip = remote_ip(offer, idx)?;
        let mut m = MediaDescription {
            media: "video".into(),
            port,
            num_ports: None,
            proto: om.proto.clone(),
            formats: vec![fmt.clone()],
            connection: None,
            other: Vec::new(),
            attributes: Vec::new(),
        };
        if let Some(e) = &encoding {
            m.attributes
                .push(Attribute::value("rtpmap", format!("{fmt} {e}")));
        }
        m.attributes.push(Attribute::flag(dir.attr()));
        let srtp = crypto.map(|(ours, theirs)| {
            m.attributes
                .push(Attribute::value("crypto", ours.to_value()));
            SrtpParams {
                suite: ours.suite,
                local_key: ours.key,
                remote_key: theirs.key,
            }
        });
        Ok(Some((
            m,
            NegotiatedVideo {
                remote_addr: SocketAddr::new(ip, om.port),
                pt,
                encoding,
                direction: dir,
                srtp,
            },
        )))
    }
}

/// Processes `answer` against `offer` (our offer). [`OfferAnswer::accept_answer`] calls this
/// with its outstanding offer; it is public for re-INVITE handling and tests. An SRTP
/// answer over insecure signalling is refused ([`NegotiationError::InsecureSignalling`])
/// unless [`MediaConfig::allow_insecure_sdes`] is set: its keys were exposed.
pub fn process_answer(
    cfg: &MediaConfig,
    offer: &SessionDescription,
    answer: &SessionDescription,
    secure_signalling: bool,
) -> Result<Negotiated, NegotiationError> {
    let (oi, om) = offer
        .media
        .iter()
        .enumerate()
        .find(|(_, m)| m.media == "audio")
        .ok_or(NegotiationError::NoAudio)?;
    let am = answer
        .media
        .get(oi)
        .ok_or(NegotiationError::AnswerMismatch(
            "fewer m-lines than the offer",
        ))?;
    if am.media != "audio" {
        return Err(NegotiationError::AnswerMismatch("m-line kind differs"));
    }
    if am.port == 0 {
        return Err(NegotiationError::AudioRejected);
    }
    if am.proto != om.proto {
        if am.proto == "RTP/AVP" && !cfg.allow_plain_rtp {
            return Err(NegotiationError::PlainRtpRefused);
        }
        return Err(NegotiationError::AnswerMismatch(
            "transport differs from the offer",
        ));
    }
    let srtp = if om.proto == "RTP/SAVP" {
        if !secure_signalling && !cfg.allow_insecure_sdes {
            return Err(NegotiationError::InsecureSignalling);
        }
        let crypto = am
            .attributes_named("crypto")
            .next()
            .and_then(|a| a.value.as_deref())
            .ok_or_else(|| NegotiationError::NoAcceptableCrypto("answer has no a=crypto".into()))?;
        let theirs = CryptoAttribute::parse(crypto)
            .map_err(|e| NegotiationError::NoAcceptableCrypto(e.to_string()))?;
        let ours = om
            .attributes_named("crypto")
            .filter_map(|a| CryptoAttribute::parse(a.value.as_deref()?).ok())
            .find(|c| c.tag == theirs.tag && c.suite == theirs.suite)
            .ok_or(NegotiationError::AnswerMismatch(
                "a=crypto tag/suite not offered",
            ))?;
        Some(SrtpParams {
            suite: ours.suite,
            local_key: ours.key,
            remote_key: theirs.key,
        })
    } else {
        None
    };
    let audio = derive(cfg, om, Direction::of(offer, om), answer, oi, am, am, srtp)?;
    Ok(Negotiated {
        security: summary(&audio.srtp, secure_signalling),
        audio,
        video: None,
    })
}

fn remote_ip(sdp: &SessionDescription, idx: usize) -> Result<IpAddr, NegotiationError> {
    match sdp.connection_for(idx) {
        Some(Address::Ip(ip)) => Ok(*ip),
        Some(Address::Host { name, .. }) => Err(NegotiationError::UnresolvedHost(name.clone())),
        None => Err(NegotiationError::MissingConnection),
    }
}

fn summary(srtp: &Option<SrtpParams>, secure_signalling: bool) -> SecuritySummary {
    let suite = srtp.as_ref().map(|s| s.suite);
    SecuritySummary {
        srtp_suite: suite,
        keys_via_secure_signalling: secure_signalling,
        confidential: suite.is_some() && secure_signalling,
    }
}

/// Derives the negotiated audio stream.
/// `local_m`/`local_dir`: our section; `remote`/`ridx`/`remote_m`: the peer's; `answer_m`:
/// whichever of the two is the answer (its order decides the send codec).
#[allow(clippy::too_many_arguments)]
fn derive(
    cfg: &MediaConfig,
    local_m: &MediaDescription,
    local_dir: Direction,
    remote: &SessionDescription,
    ridx: usize,
    remote_m: &MediaDescription,
    answer_m: &MediaDescription,
    srtp: Option<SrtpParams>,
) -> Result<NegotiatedAudio, NegotiationError> {
    let local = codecs_of(local_m);
    let theirs = codecs_of(remote_m);
    let answer = codecs_of(answer_m);
    let send_codec = answer
        .iter()
        .filter(|c| !c.is_telephone_event() && supported(c))
        .find_map(|a| theirs.iter().find(|t| t.same_codec(a)))
        .filter(|t| local.iter().any(|l| l.same_codec(t)))
        .cloned()
        .ok_or(NegotiationError::NoCommonCodec)?;
    let recv_payload_map: BTreeMap<u8, CodecSpec> = local
        .iter()
        .filter(|l| supported(l) && theirs.iter().any(|t| t.same_codec(l)))
        .map(|l| (l.pt, l.clone()))
        .collect();
    let te_send = theirs
        .iter()
        .find(|t| t.is_telephone_event() && t.clock_rate == send_codec.clock_rate)
        .map(|t| t.pt);
    let te_recv = recv_payload_map
        .values()
        .find(|l| l.is_telephone_event() && l.clock_rate == send_codec.clock_rate)
        .or_else(|| recv_payload_map.values().find(|l| l.is_telephone_event()))
        .map(|l| l.pt);
    let ip = remote_ip(remote, ridx)?;
    let remote_addr = SocketAddr::new(ip, remote_m.port);
    let rtcp_mux = local_m.has_flag("rtcp-mux") && remote_m.has_flag("rtcp-mux");
    let remote_rtcp_addr = if rtcp_mux {
        remote_addr
    } else {
        match remote_m.attribute("rtcp").and_then(|a| a.value.as_deref()) {
            Some(v) => {
                let mut it = v.split(' ');
                let port = it.next().and_then(|p| p.parse::<u16>().ok());
                let addr = match (it.next(), it.next(), it.next()) {
                    (Some("IN"), Some(_), Some(a)) => a.parse::<IpAddr>().ok(),
                    _ => None,
                };
                SocketAddr::new(
                    addr.unwrap_or(ip),
                    port.unwrap_or(remote_m.port.wrapping_add(1)),
                )
            }
            None => SocketAddr::new(ip, remote_m.port.wrapping_add(1)),
        }
    };
    let ptime = remote_m
        .attribute("ptime")
        .and_then(|a| a.value.as_deref()?.trim().parse::<u32>().ok())
        .filter(|p| [10, 20, 40, 60].contains(p))
        .unwrap_or(cfg.ptime);
    let remote_dir = Direction::of(remote, remote_m);
    // An old-style hold (c=0.0.0.0, RFC 3264 §8.4) means: do not send.
    let zero = ip.is_unspecified() || ip == IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let direction = Direction::from_flags(
        local_dir.sends() && remote_dir.receives() && !zero,
        local_dir.receives() && remote_dir.sends(),
    );
    Ok(NegotiatedAudio {
        remote_addr,
        remote_rtcp_addr,
        send_codec,
        recv_payload_map,
        telephone_event_pt: TelephoneEventPts {
            send: te_send,
            recv: te_recv,
        },
        ptime,
        direction,
        rtcp_mux,
        srtp,
    })
}
