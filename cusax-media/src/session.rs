//! `MediaSession`: one sans-IO audio stream (RTP/RTCP/SRTP, codec, jitter buffer, DTMF).
//!
//! Contract (str0m/quinn style): feed datagrams with [`MediaSession::handle_input`], timer
//! expiries with [`MediaSession::handle_timeout`], app audio with
//! [`MediaSession::push_pcm`] / [`MediaSession::pull_pcm`]; after each call drain
//! [`MediaSession::poll_output`] until it returns [`Output::Timeout`] (or `None` once
//! closed). Time is always an argument; randomness comes from the configured seed.
//!
//! App audio is mono i16 at [`SessionConfig::app_rate`], pushed in frames (20 ms is
//! typical; any length works, packetization follows the negotiated ptime).

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::codec::resample::Resampler;
use crate::codec::{AudioDecoder, AudioEncoder, CodecError};
use crate::dtmf::{DtmfEvent, DtmfReceiver, DtmfSender, event_code};
use crate::jitter::{JitterBuffer, JitterConfig, JitterStats, Playout};
use crate::rtcp::{self, ReportBlock, RtcpPacket, SdesChunk, SenderInfo};
use crate::rtp::{ReceptionStats, RtpHeader, RtpPacket, SeqOutcome, is_rtcp};
use crate::sdp::offer_answer::{CodecSpec, Direction, NegotiatedAudio};
use crate::srtp::{SrtpError, SrtpSession};

/// Seconds between 1900-01-01 (NTP epoch) and 1970-01-01.
pub const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// Session configuration: the negotiated stream plus local choices.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Result of offer/answer.
    pub audio: NegotiatedAudio,
    /// Our SSRC (random, from the caller's RNG).
    pub local_ssrc: u32,
    /// RTCP CNAME (RFC 7022: a random, per-session value is fine).
    pub cname: String,
    /// Seed for the session's own randomness (RTCP interval jitter, initial seq/ts).
    pub rng_seed: u64,
    /// App PCM rate (Hz), mono.
    pub app_rate: u32,
    /// Jitter buffer bounds (its ptime is taken from `audio.ptime`).
    pub jitter: JitterConfig,
    /// Symmetric RTP (RFC 4961): whether packets of the current remote source arriving
    /// from a new address move where we send. Default [`SymmetricRtp::SrtpOnly`].
    pub symmetric_rtp: SymmetricRtp,
    /// Mean RTCP report interval (RFC 3550 §6.2 minimum 5 s).
    pub rtcp_interval: Duration,
    /// NTP timestamp (64-bit) that corresponds to the first `now` the session sees; only
    /// used for SR timestamps. The driver derives it from the wall clock.
    pub ntp_at_start: u64,
}

impl SessionConfig {
    /// Defaults: 48 kHz app audio, symmetric RTP for SRTP only
    /// ([`SymmetricRtp::SrtpOnly`]), 5 s RTCP.
    pub fn new(audio: NegotiatedAudio, local_ssrc: u32, rng_seed: u64) -> Self {
        SessionConfig {
            audio,
            local_ssrc,
            cname: format!("cusax-{local_ssrc:08x}"),
            rng_seed,
            app_rate: 48000,
            jitter: JitterConfig::default(),
            symmetric_rtp: SymmetricRtp::default(),
            rtcp_interval: Duration::from_secs(5),
            ntp_at_start: 0,
        }
    }
}

/// Symmetric RTP (RFC 4961) policy: may a packet from a new source address move the
/// address we send RTP (and, with rtcp-mux, RTCP) to?
///
/// With plain RTP anyone who can send a packet with the right SSRC and a plausible
/// sequence number redirects the stream to themselves (the "RTP bleed" attack), so plain
/// RTP follows only with [`SymmetricRtp::Always`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SymmetricRtp {
    /// Never: always send to the address from the SDP.
    Off,
    /// With SRTP only, and only after a packet from the new address passed SRTP
    /// authentication and the replay check. Plain RTP never moves. The default.
    #[default]
    SrtpOnly,
    /// Also with plain RTP, for a peer behind a NAT that rewrites its port; exposes the
    /// stream to RTP bleed. Opt in only knowingly.
    Always,
}

/// Something that happened on the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaEvent {
    /// A DTMF event ended (RFC 4733).
    Dtmf(DtmfEvent),
    /// The peer's SSRC changed (RFC 3550 §8.2); buffers were reset.
    RemoteSsrcChanged {
        /// Previous SSRC.
        old: Option<u32>,
        /// New SSRC.
        new: u32,
    },
    /// Symmetric RTP moved the send address (see [`SymmetricRtp`]).
    RemoteAddressChanged(SocketAddr),
    /// The peer sent RTCP BYE.
    Bye {
        /// Reason, if given.
        reason: Option<String>,
    },
}

/// Input to the session.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Input<'a> {
    /// A received UDP datagram (RTP or RTCP, muxed or not).
    Datagram {
        /// Bytes.
        data: &'a [u8],
        /// Who sent it.
        source: SocketAddr,
    },
}

/// Output of the session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Send `data` to `dest`.
    Transmit {
        /// Destination.
        dest: SocketAddr,
        /// Datagram.
        data: Vec<u8>,
    },
    /// An event for the app.
    Event(MediaEvent),
    /// Call [`MediaSession::handle_timeout`] at this time.
    Timeout(Instant),
}

/// Result of [`MediaSession::pull_pcm`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PullResult {
    /// Samples written (always the buffer length).
    pub samples: usize,
    /// Frames concealed (PLC/repeat) while filling.
    pub concealed_frames: u32,
    /// Frames recovered by FEC while filling.
    pub fec_frames: u32,
    /// No audio at all (buffering, hold or nothing received).
    pub silence: bool,
}

/// Counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionStats {
    /// RTP packets sent.
    pub packets_sent: u64,
    /// RTP payload octets sent.
    pub octets_sent: u64,
    /// RTP packets accepted.
    pub packets_received: u64,
    /// RTCP compounds sent.
    pub rtcp_sent: u64,
    /// RTCP compounds accepted.
    pub rtcp_received: u64,
    /// Cumulative lost (A.3) for the current remote source.
    pub cumulative_lost: i32,
    /// Interarrival jitter of the remote source (ms).
    pub jitter_ms: u32,
    /// Fraction lost the peer reports about us (x/256).
    pub remote_fraction_lost: u8,
    /// Round-trip time from the last report about us.
    pub rtt: Option<Duration>,
    /// SRTP (RTP) packets failing authentication.
    pub srtp_auth_failures: u64,
    /// SRTCP packets failing authentication (counted apart: some peers get SRTCP wrong
    /// while their SRTP is fine, e.g. a 32-bit SRTCP tag with AES_CM_128_HMAC_SHA1_32,
    /// where RFC 3711 §7.5 and RFC 4568 §6.2.2 keep SRTCP at 80 bits).
    pub srtcp_auth_failures: u64,
    /// SRTP/SRTCP packets rejected as replays.
    pub srtp_replays: u64,
    /// Malformed datagrams.
    pub malformed: u64,
    /// RTP packets with a payload type we did not negotiate.
    pub unknown_payload_type: u64,
    /// Current remote SSRC.
    pub remote_ssrc: Option<u32>,
    /// Jitter buffer counters.
    pub jitter_buffer: JitterStats,
}

/// API misuse or local failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// Codec setup or encode failure.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// SRTP setup or protect failure.
    #[error(transparent)]
    Srtp(#[from] SrtpError),
    /// The session was closed (our misuse).
    #[error("session closed")]
    Closed,
    /// Not a DTMF digit (our misuse).
    #[error("invalid DTMF digit {0:?}")]
    InvalidDigit(char),
    /// The peer did not accept telephone-event at the send clock rate.
    #[error("telephone-event not negotiated")]
    NoTelephoneEvent,
}

struct Remote {
    ssrc: u32,
    stats: ReceptionStats,
    last_sr: Option<(u32, Instant)>,
}

/// A sans-IO media session.
pub struct MediaSession {
    cfg: SessionConfig,
    direction: Direction,
    remote_addr: SocketAddr,
    remote_rtcp_addr: SocketAddr,
    /// The address the peer left by a re-negotiation: symmetric RTP does not move back
    /// there for its packets still in flight.
    left_addr: Option<SocketAddr>,
    srtp: Option<SrtpSession>,
    encoder: AudioEncoder,
    tx_resampler: Resampler,
    tx_pcm: Vec<i16>,
    tx_frame: Vec<i16>,
    samples_per_packet: usize,
    ts_per_packet: u32,
    seq: u16,
    ts: u32,
    marker_next: bool,
    tx_buf: Vec<u8>,
    /// The plain RTP packet before SRTP protection, reused from packet to packet (only
    /// the protected copy leaves the session).
    tx_rtp: Vec<u8>,
    dtmf_queue: VecDeque<(u8, u32)>,
    dtmf_tx: Option<DtmfSender>,
    decoder: Option<(u8, AudioDecoder, Resampler)>,
    /// Payload types of the previous negotiation still accepted after [`Self::update`]
    /// until a packet with a PT of the new one arrives (RFC 3264 §8.3.2: packets in
    /// flight under the old codec).
    prev_payload_map: BTreeMap<u8, CodecSpec>,
    rx_pcm: VecDeque<i16>,
    dec_buf: Vec<i16>,
    last_frame_len: usize,
    jitter: JitterBuffer,
    remote: Option<Remote>,
    candidate: Option<(u32, u8)>,
    dtmf_rx: DtmfReceiver,
    outputs: VecDeque<Output>,
    epoch: Option<Instant>,
    next_rtcp: Option<Instant>,
    rng: StdRng,
    sent_since_report: bool,
    closed: bool,
    stats: SessionStats,
}

impl std::fmt::Debug for MediaSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaSession")
            .field("local_ssrc", &self.cfg.local_ssrc)
            .field("remote_addr", &self.remote_addr)
            .field("direction", &self.direction)
            .finish_non_exhaustive()
    }
}

impl MediaSession {
    /// Builds the session: encoder for the send codec, SRTP contexts when keyed.
    pub fn new(cfg: SessionConfig) -> Result<Self, SessionError> {
        let a = &cfg.audio;
        let encoder = AudioEncoder::new(&a.send_codec, cfg.app_rate)?;
        let srtp = match &a.srtp {
            Some(p) => Some(SrtpSession::new(p.suite, &p.local_key, &p.remote_key)?),
            None => None,
        };
        let ptime = a.ptime.clamp(10, 60);
        let samples_per_packet = (encoder.pcm_rate() * ptime / 1000) as usize;
        let ts_per_packet = a.send_codec.clock_rate * ptime / 1000;
        let mut rng = StdRng::seed_from_u64(cfg.rng_seed);
        let jitter = JitterBuffer::new(JitterConfig {
            ptime_ms: ptime,
            ..cfg.jitter
        });
        Ok(MediaSession {
            direction: a.direction,
            remote_addr: a.remote_addr,
            remote_rtcp_addr: a.remote_rtcp_addr,
            left_addr: None,
            srtp,
            tx_resampler: Resampler::new(cfg.app_rate, encoder.pcm_rate()),
            encoder,
            tx_pcm: Vec::new(),
            tx_frame: Vec::with_capacity(samples_per_packet),
            samples_per_packet,
            ts_per_packet,
            seq: rng.random(),
            ts: rng.random(),
            marker_next: true,
            tx_buf: Vec::with_capacity(1500),
            tx_rtp: Vec::with_capacity(1500),
            dtmf_queue: VecDeque::new(),
            dtmf_tx: None,
            decoder: None,
            prev_payload_map: BTreeMap::new(),
            rx_pcm: VecDeque::new(),
            dec_buf: Vec::new(),
            last_frame_len: 0,
            jitter,
            remote: None,
            candidate: None,
            dtmf_rx: DtmfReceiver::new(),
            outputs: VecDeque::new(),
            epoch: None,
            next_rtcp: None,
            rng,
            sent_since_report: false,
            closed: false,
            stats: SessionStats::default(),
            cfg,
        })
    }

    /// Our SSRC.
    pub fn local_ssrc(&self) -> u32 {
        self.cfg.local_ssrc
    }

    /// Where RTP currently goes.
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote_addr
    }

    /// Current direction.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Changes the direction after a re-negotiation (hold: `SendOnly`/`Inactive`
    /// stops or keeps sending accordingly; `RecvOnly` stops sending).
    pub fn set_direction(&mut self, d: Direction) {
        if d.sends() && !self.direction.sends() {
            self.marker_next = true;
        }
        self.direction = d;
    }

    /// Applies the result of a new offer/answer exchange (re-INVITE or UPDATE: hold and
    /// resume, codec change, new remote address or port, new SDES keys) without
    /// dropping the RTP state: our SSRC, sequence numbers and timestamps continue, the
    /// remote source, its reception statistics, RTCP timing and counters are kept.
    ///
    /// - Direction: as [`Self::set_direction`].
    /// - Send codec or ptime changed: new encoder; the next packet has the marker bit.
    /// - A received payload type that now maps to another codec: its decoder is rebuilt.
    /// - ptime changed: the jitter buffer restarts (buffered audio is dropped).
    /// - Remote address or RTCP address in the SDP changed: we send there (an address
    ///   learnt by symmetric RTP is kept while the SDP address stays the same, and
    ///   symmetric RTP does not move back to the address the peer left).
    /// - SRTP: a direction whose key changed gets a new context
    ///   ([`SrtpSession::rekey`]); [`crate::sdp::offer_answer::OfferAnswer`] generates
    ///   fresh keys for every exchange (RFC 4568 §7.1.4). We keep accepting the peer's
    ///   packets under its previous key until one under the new key authenticates, so
    ///   packets in flight are not lost here; a peer without such a grace drops our
    ///   packets under the new key until it has applied the exchange (about one round
    ///   trip). Payload types of the previous negotiation stay accepted in the same way
    ///   until a packet with a new one arrives (RFC 3264 §8.3.2).
    ///
    /// On error (a codec or key the session cannot use; our misuse) nothing changes.
    pub fn update(&mut self, audio: NegotiatedAudio) -> Result<(), SessionError> {
        if self.closed {
            return Err(SessionError::Closed);
        }
        let old = &self.cfg.audio;
        let ptime_changed = audio.ptime.clamp(10, 60) != old.ptime.clamp(10, 60);
        let codec_changed = audio.send_codec != old.send_codec || ptime_changed;
        // Fallible parts first, so that an error leaves the session as it was.
        let encoder = if codec_changed {
            Some(AudioEncoder::new(&audio.send_codec, self.cfg.app_rate)?)
        } else {
            None
        };
        match (&audio.srtp, self.srtp.as_mut()) {
            (Some(p), Some(cur)) => {
                let (tx, rx) = cur.rekey(p.suite, &p.local_key, &p.remote_key)?;
                tracing::debug!(tx, rx, "SRTP contexts rekeyed");
            }
            (Some(p), None) => {
                self.srtp = Some(SrtpSession::new(p.suite, &p.local_key, &p.remote_key)?);
            }
            (None, Some(_)) => {
                tracing::warn!("re-negotiation dropped SRTP: media is now plain RTP");
                self.srtp = None;
            }
            (None, None) => {}
        }
        if let Some(encoder) = encoder {
            let ptime = audio.ptime.clamp(10, 60);
            if encoder.pcm_rate() != self.encoder.pcm_rate() {
                self.tx_pcm.clear();
            }
            self.tx_resampler = Resampler::new(self.cfg.app_rate, encoder.pcm_rate());
            self.samples_per_packet = (encoder.pcm_rate() * ptime / 1000) as usize;
            self.ts_per_packet = audio.send_codec.clock_rate * ptime / 1000;
            self.tx_frame = Vec::with_capacity(self.samples_per_packet);
            self.encoder = encoder;
            // A digit in progress was timed for the old packet size.
            self.dtmf_tx = None;
            self.marker_next = true;
        }
        if ptime_changed {
            self.jitter = JitterBuffer::new(JitterConfig {
                ptime_ms: audio.ptime.clamp(10, 60),
                ..self.cfg.jitter
            });
        }
        // A decoder whose PT now means another codec is rebuilt; one whose PT left the
        // negotiation keeps serving packets in flight (see `prev_payload_map`).
        if self.decoder.as_ref().is_some_and(|(pt, _, _)| {
            audio
                .recv_payload_map
                .get(pt)
                .is_some_and(|new| Some(new) != old.recv_payload_map.get(pt))
        }) {
            self.decoder = None;
        }
        self.prev_payload_map = old
            .recv_payload_map
            .iter()
            .filter(|(pt, _)| !audio.recv_payload_map.contains_key(pt))
            .map(|(pt, c)| (*pt, c.clone()))
            .collect();
        if audio.remote_addr != old.remote_addr {
            self.left_addr = Some(self.remote_addr);
            self.remote_addr = audio.remote_addr;
        } else {
            self.left_addr = None;
        }
        if audio.remote_rtcp_addr != old.remote_rtcp_addr || audio.rtcp_mux != old.rtcp_mux {
            self.remote_rtcp_addr = if audio.rtcp_mux {
                self.remote_addr
            } else {
                audio.remote_rtcp_addr
            };
        }
        self.set_direction(audio.direction);
        self.cfg.audio = audio;
        Ok(())
    }

    /// Statistics snapshot.
    pub fn stats(&self) -> SessionStats {
        let mut s = self.stats;
        s.jitter_buffer = self.jitter.stats();
        if let Some(r) = &self.remote {
            s.cumulative_lost = r.stats.cumulative_lost();
            let rate = self.cfg.audio.send_codec.clock_rate.max(1);
            s.jitter_ms = (r.stats.jitter() as u64 * 1000 / rate as u64) as u32;
            s.remote_ssrc = Some(r.ssrc);
        }
        s
    }

    fn start(&mut self, now: Instant) {
        if self.epoch.is_none() {
            self.epoch = Some(now);
            let half = self.cfg.rtcp_interval / 2;
            self.next_rtcp = Some(now + half);
        }
    }

    fn ntp(&self, now: Instant) -> u64 {
        let el = self
            .epoch
            .map_or(Duration::ZERO, |e| now.saturating_duration_since(e));
        let frac = ((el.subsec_nanos() as u64) << 32) / 1_000_000_000;
        self.cfg
            .ntp_at_start
            .wrapping_add((el.as_secs() << 32) | frac)
    }

    /// Next output; `Timeout` when only the timer is left, `None` after close once drained.
    pub fn poll_output(&mut self) -> Option<Output> {
        if let Some(o) = self.outputs.pop_front() {
            return Some(o);
        }
        if self.closed {
            return None;
        }
        self.next_rtcp.map(Output::Timeout)
    }

    fn transmit(&mut self, dest: SocketAddr, data: Vec<u8>) {
        self.outputs.push_back(Output::Transmit { dest, data });
    }

    fn send_rtp(&mut self, header: &RtpHeader, payload_len: usize) -> Result<(), SessionError> {
        let data = match self.srtp.as_mut() {
            Some(s) => {
                // The plain packet goes into a reused buffer; the protected one that
                // webrtc-srtp allocates becomes the datagram without another copy
                // (`Vec::from(Bytes)` takes over a uniquely owned buffer).
                self.tx_rtp.clear();
                header.write(&self.tx_buf, 0, &mut self.tx_rtp);
                Vec::from(s.protect_rtp(&self.tx_rtp)?)
            }
            None => {
                let mut buf = Vec::with_capacity(header.len() + payload_len);
                header.write(&self.tx_buf, 0, &mut buf);
                buf
            }
        };
        self.stats.packets_sent += 1;
        self.stats.octets_sent += payload_len as u64;
        self.sent_since_report = true;
        let dest = self.remote_addr;
        self.transmit(dest, data);
        Ok(())
    }

    /// Queues a DTMF digit of `duration` (RFC 4733); it replaces audio packets while sent.
    pub fn send_dtmf(&mut self, digit: char, duration: Duration) -> Result<(), SessionError> {
        if self.closed {
            return Err(SessionError::Closed);
        }
        let ev = event_code(digit).ok_or(SessionError::InvalidDigit(digit))?;
        if self.cfg.audio.telephone_event_pt.send.is_none() {
            return Err(SessionError::NoTelephoneEvent);
        }
        let samples = (duration.as_millis() as u64 * self.cfg.audio.send_codec.clock_rate as u64
            / 1000) as u32;
        self.dtmf_queue.push_back((ev, samples));
        Ok(())
    }

    /// Pushes app audio captured at `now`. Full packets are encoded and queued for
    /// transmission; audio is discarded while the direction does not send.
    pub fn push_pcm(&mut self, now: Instant, pcm: &[i16]) -> Result<(), SessionError> {
        if self.closed {
            return Err(SessionError::Closed);
        }
        self.start(now);
        self.tx_resampler.process(pcm, &mut self.tx_pcm);
        let mut off = 0;
        while self.tx_pcm.len() - off >= self.samples_per_packet {
            self.tx_frame.clear();
            self.tx_frame
                .extend_from_slice(&self.tx_pcm[off..off + self.samples_per_packet]);
            off += self.samples_per_packet;
            self.send_frame()?;
        }
        self.tx_pcm.drain(..off);
        Ok(())
    }

    fn send_frame(&mut self) -> Result<(), SessionError> {
        if !self.direction.sends() {
            self.ts = self.ts.wrapping_add(self.ts_per_packet);
            self.marker_next = true;
            return Ok(());
        }
        if self.dtmf_tx.is_none()
            && let Some((ev, dur)) = self.dtmf_queue.pop_front()
        {
            self.dtmf_tx = Some(DtmfSender::new(ev, self.ts, dur, self.ts_per_packet));
        }
        if let (Some(tx), Some(pt)) = (
            self.dtmf_tx.as_mut(),
            self.cfg.audio.telephone_event_pt.send,
        ) {
            if let Some(p) = tx.next_packet() {
                let h = RtpHeader {
                    marker: p.marker,
                    payload_type: pt,
                    sequence: self.seq,
                    timestamp: p.timestamp,
                    ssrc: self.cfg.local_ssrc,
                    ..Default::default()
                };
                self.tx_buf.clear();
                self.tx_buf.extend_from_slice(&p.payload);
                self.seq = self.seq.wrapping_add(1);
                self.ts = self.ts.wrapping_add(self.ts_per_packet);
                if tx.is_done() {
                    self.dtmf_tx = None;
                    self.marker_next = true;
                }
                return self.send_rtp(&h, 4);
            }
            self.dtmf_tx = None;
        }
        self.tx_buf.clear();
        self.encoder.encode(&self.tx_frame, &mut self.tx_buf)?;
        let h = RtpHeader {
            marker: std::mem::take(&mut self.marker_next),
            payload_type: self.cfg.audio.send_codec.pt,
            sequence: self.seq,
            timestamp: self.ts,
            ssrc: self.cfg.local_ssrc,
            ..Default::default()
        };
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(self.ts_per_packet);
        let n = self.tx_buf.len();
        self.send_rtp(&h, n)
    }

    /// Feeds an input.
    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) {
        if self.closed {
            return;
        }
        self.start(now);
        match input {
            Input::Datagram { data, source } => {
                if is_rtcp(data) {
                    self.handle_rtcp(now, data);
                } else {
                    self.handle_rtp(now, data, source);
                }
            }
        }
    }

    fn handle_rtp(&mut self, now: Instant, data: &[u8], source: SocketAddr) {
        let plain;
        let bytes: &[u8] = match self.srtp.as_mut() {
            Some(s) => match s.unprotect_rtp(data) {
                Ok(p) => {
                    plain = p;
                    &plain
                }
                Err(e) => {
                    self.count_srtp_error(&e, false);
                    return;
                }
            },
            None => data,
        };
        let pkt = match RtpPacket::parse(bytes) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(error = %e, "dropping malformed RTP");
                self.stats.malformed += 1;
                return;
            }
        };
        let h = &pkt.header;
        let codec = match self.cfg.audio.recv_payload_map.get(&h.payload_type) {
            Some(c) => {
                if !self.prev_payload_map.is_empty() {
                    self.prev_payload_map.clear();
                }
                c
            }
            None => match self.prev_payload_map.get(&h.payload_type) {
                Some(c) => c,
                None => {
                    self.stats.unknown_payload_type += 1;
                    return;
                }
            },
        };
        let is_event = codec.is_telephone_event();
        // SSRC handling (RFC 3550 §8.2): switch after two packets from a new source.
        match &self.remote {
            Some(r) if r.ssrc == h.ssrc => {}
            other => {
                let old = other.as_ref().map(|r| r.ssrc);
                let count = match self.candidate {
                    Some((s, c)) if s == h.ssrc => c + 1,
                    _ => 1,
                };
                if old.is_some() && count < 2 {
                    self.candidate = Some((h.ssrc, count));
                    return;
                }
                self.candidate = None;
                self.remote = Some(Remote {
                    ssrc: h.ssrc,
                    stats: ReceptionStats::new(h.sequence),
                    last_sr: None,
                });
                self.jitter.reset();
                self.decoder = None;
                self.dtmf_rx = DtmfReceiver::new();
                self.outputs
                    .push_back(Output::Event(MediaEvent::RemoteSsrcChanged {
                        old,
                        new: h.ssrc,
                    }));
            }
        }
        let clock = codec.clock_rate as u64;
        let arrival = self.epoch.map_or(0, |e| {
            (now.saturating_duration_since(e).as_micros() as u64 * clock / 1_000_000) as u32
        });
        let Some(remote) = self.remote.as_mut() else {
            return;
        };
        let ext = match remote.stats.update_seq(h.sequence) {
            SeqOutcome::Valid(e) | SeqOutcome::Old(e) => e,
            SeqOutcome::Probation => h.sequence as u64,
            SeqOutcome::BadJump => return,
        };
        if !is_event {
            remote.stats.update_jitter(h.timestamp, arrival);
        }
        self.stats.packets_received += 1;
        // With SRTP this packet already passed authentication and the replay check.
        let may_move = match self.cfg.symmetric_rtp {
            SymmetricRtp::Off => false,
            SymmetricRtp::SrtpOnly => self.srtp.is_some(),
            SymmetricRtp::Always => true,
        };
        if may_move && source != self.remote_addr && self.left_addr != Some(source) {
            self.remote_addr = source;
            if self.cfg.audio.rtcp_mux {
                self.remote_rtcp_addr = source;
            }
            self.outputs
                .push_back(Output::Event(MediaEvent::RemoteAddressChanged(source)));
        }
        if is_event {
            for ev in self.dtmf_rx.on_packet(h.timestamp, pkt.payload) {
                self.outputs.push_back(Output::Event(MediaEvent::Dtmf(ev)));
            }
            self.jitter.insert_silence(now, ext);
            return;
        }
        if !self.direction.receives() || pkt.payload.is_empty() {
            return;
        }
        let mut entry = Vec::with_capacity(pkt.payload.len() + 1);
        entry.push(h.payload_type);
        entry.extend_from_slice(pkt.payload);
        self.jitter.insert(now, ext, entry);
    }

    fn count_srtp_error(&mut self, e: &SrtpError, rtcp: bool) {
        match e {
            SrtpError::Replay => self.stats.srtp_replays += 1,
            SrtpError::Auth if rtcp => self.stats.srtcp_auth_failures += 1,
            SrtpError::Auth => self.stats.srtp_auth_failures += 1,
            _ => self.stats.malformed += 1,
        }
        tracing::debug!(error = %e, "dropping SRTP/SRTCP packet");
    }

    fn handle_rtcp(&mut self, now: Instant, data: &[u8]) {
        let plain;
        let bytes: &[u8] = match self.srtp.as_mut() {
            Some(s) => match s.unprotect_rtcp(data) {
                Ok(p) => {
                    plain = p;
                    &plain
                }
                Err(e) => {
                    self.count_srtp_error(&e, true);
                    return;
                }
            },
            None => data,
        };
        let packets = match rtcp::parse_compound(bytes) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(error = %e, "dropping malformed RTCP");
                self.stats.malformed += 1;
                return;
            }
        };
        self.stats.rtcp_received += 1;
        let now_ntp = self.ntp(now);
        for p in packets {
            match p {
                RtcpPacket::SenderReport {
                    ssrc,
                    info,
                    reports,
                } => {
                    if let Some(r) = self.remote.as_mut().filter(|r| r.ssrc == ssrc) {
                        r.last_sr = Some((rtcp::ntp_middle(info.ntp), now));
                    }
                    self.take_reports(now_ntp, &reports);
                }
                RtcpPacket::ReceiverReport { reports, .. } => self.take_reports(now_ntp, &reports),
                RtcpPacket::Bye { ssrcs, reason }
                    if self
                        .remote
                        .as_ref()
                        .is_some_and(|r| ssrcs.contains(&r.ssrc)) =>
                {
                    self.outputs
                        .push_back(Output::Event(MediaEvent::Bye { reason }));
                }
                _ => {}
            }
        }
    }

    fn take_reports(&mut self, now_ntp: u64, reports: &[ReportBlock]) {
        for b in reports.iter().filter(|b| b.ssrc == self.cfg.local_ssrc) {
            self.stats.remote_fraction_lost = b.fraction_lost;
            if let Some(rtt) = rtcp::rtt_from_report(now_ntp, b) {
                self.stats.rtt = Some(rtt);
            }
        }
    }

    /// Handles the timer: sends an RTCP report when due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        self.start(now);
        if self.next_rtcp.is_some_and(|t| now >= t) {
            let pk = self.report(now);
            self.send_rtcp(pk);
            let f: f64 = self.rng.random_range(0.5..1.5);
            self.next_rtcp = Some(now + self.cfg.rtcp_interval.mul_f64(f));
        }
    }

    fn report(&mut self, now: Instant) -> Vec<RtcpPacket> {
        let ssrc = self.cfg.local_ssrc;
        let mut reports = Vec::new();
        if let Some(r) = self.remote.as_mut() {
            let (lsr, dlsr) = match r.last_sr {
                Some((lsr, at)) => {
                    let d = now.saturating_duration_since(at);
                    (lsr, ((d.as_micros() as u64) << 16) / 1_000_000)
                }
                None => (0, 0),
            };
            reports.push(ReportBlock {
                ssrc: r.ssrc,
                fraction_lost: r.stats.take_fraction_lost(),
                cumulative_lost: r.stats.cumulative_lost(),
                highest_seq: r.stats.extended_max() as u32,
                jitter: r.stats.jitter(),
                lsr,
                dlsr: dlsr.min(u32::MAX as u64) as u32,
            });
        }
        let first = if std::mem::take(&mut self.sent_since_report) {
            RtcpPacket::SenderReport {
                ssrc,
                info: SenderInfo {
                    ntp: self.ntp(now),
                    rtp_timestamp: self.ts,
                    packet_count: self.stats.packets_sent as u32,
                    octet_count: self.stats.octets_sent as u32,
                },
                reports,
            }
        } else {
            RtcpPacket::ReceiverReport { ssrc, reports }
        };
        vec![
            first,
            RtcpPacket::Sdes(vec![SdesChunk {
                ssrc,
                items: vec![(1, self.cfg.cname.as_bytes().to_vec())],
            }]),
        ]
    }

    fn send_rtcp(&mut self, packets: Vec<RtcpPacket>) {
        let buf = rtcp::write_compound(&packets);
        let data = match self.srtp.as_mut() {
            Some(s) => match s.protect_rtcp(&buf) {
                Ok(d) => Vec::from(d),
                Err(e) => {
                    tracing::warn!(error = %e, "SRTCP protect failed");
                    return;
                }
            },
            None => buf,
        };
        self.stats.rtcp_sent += 1;
        let dest = self.remote_rtcp_addr;
        self.transmit(dest, data);
    }

    /// Ends the session: queues RTCP report + BYE (RFC 3550 §6.6). Drain `poll_output`.
    pub fn close(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        self.start(now);
        let mut pk = self.report(now);
        pk.push(RtcpPacket::Bye {
            ssrcs: vec![self.cfg.local_ssrc],
            reason: None,
        });
        self.send_rtcp(pk);
        self.closed = true;
    }

    /// Fills `out` with app-rate audio for playout at `now`, decoding from the jitter
    /// buffer one packet time at a time (FEC, then PLC, on gaps).
    pub fn pull_pcm(&mut self, now: Instant, out: &mut [i16]) -> PullResult {
        self.start(now);
        let mut res = PullResult {
            samples: out.len(),
            ..Default::default()
        };
        let mut any_audio = false;
        let mut guard = 0;
        while self.rx_pcm.len() < out.len() && guard < 64 {
            guard += 1;
            let frame = self.jitter.pop();
            let had = self.decode_frame(frame, &mut res);
            any_audio |= had;
        }
        for o in out.iter_mut() {
            *o = self.rx_pcm.pop_front().unwrap_or(0);
        }
        res.silence = !any_audio;
        res
    }

    fn default_frame_len(&self, rate: u32) -> usize {
        (rate * self.cfg.audio.ptime.clamp(10, 60) / 1000) as usize
    }

    fn push_decoded(&mut self) {
        if let Some((_, _, rs)) = self.decoder.as_mut() {
            let mut tmp = Vec::with_capacity(self.dec_buf.len() * 6);
            rs.process(&self.dec_buf, &mut tmp);
            self.rx_pcm.extend(tmp);
        }
    }

    fn push_silence(&mut self) {
        let n = self.default_frame_len(self.cfg.app_rate);
        self.rx_pcm.extend(std::iter::repeat_n(0, n));
    }

    fn decode_frame(&mut self, frame: Playout, res: &mut PullResult) -> bool {
        self.dec_buf.clear();
        match frame {
            Playout::Buffering | Playout::Silence => {
                self.push_silence();
                false
            }
            Playout::Packet(p) => {
                let Some((&pt, payload)) = p.split_first() else {
                    self.push_silence();
                    return false;
                };
                if self.decoder.as_ref().is_none_or(|(cur, _, _)| *cur != pt) {
                    let spec = self
                        .cfg
                        .audio
                        .recv_payload_map
                        .get(&pt)
                        .or_else(|| self.prev_payload_map.get(&pt));
                    let Some(spec) = spec else {
                        self.push_silence();
                        return false;
                    };
                    match AudioDecoder::new(spec, self.cfg.app_rate) {
                        Ok(d) => {
                            let rs = Resampler::new(d.pcm_rate(), self.cfg.app_rate);
                            self.decoder = Some((pt, d, rs));
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "no decoder");
                            self.push_silence();
                            return false;
                        }
                    }
                }
                let Some((_, dec, _)) = self.decoder.as_mut() else {
                    return false;
                };
                match dec.decode(payload, &mut self.dec_buf) {
                    Ok(n) => self.last_frame_len = n,
                    Err(_) => {
                        let n = if self.last_frame_len > 0 {
                            self.last_frame_len
                        } else {
                            (dec.pcm_rate() / 50) as usize
                        };
                        let _ = dec.conceal(n, &mut self.dec_buf);
                        self.jitter.stats_mut().concealed += 1;
                        res.concealed_frames += 1;
                    }
                }
                self.push_decoded();
                true
            }
            Playout::Missing { next, .. } => {
                let Some((_, dec, _)) = self.decoder.as_mut() else {
                    self.push_silence();
                    return false;
                };
                let n = if self.last_frame_len > 0 {
                    self.last_frame_len
                } else {
                    (dec.pcm_rate() * self.cfg.audio.ptime.clamp(10, 60) / 1000) as usize
                };
                let fec = match next.as_deref().and_then(|p| p.split_first()) {
                    Some((_, payload)) => {
                        dec.decode_fec(payload, n, &mut self.dec_buf).ok().flatten()
                    }
                    None => None,
                };
                if fec.is_some() {
                    self.jitter.stats_mut().fec_recovered += 1;
                    res.fec_frames += 1;
                } else {
                    self.dec_buf.clear();
                    let _ = dec.conceal(n, &mut self.dec_buf);
                    self.jitter.stats_mut().concealed += 1;
                    res.concealed_frames += 1;
                }
                self.push_decoded();
                true
            }
        }
    }
}
