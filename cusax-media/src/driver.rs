//! Tokio UDP driver (feature `driver`): owns the socket(s) and the timer and drives a
//! [`MediaSession`]. This is the only module that reads the clock.
//!
//! Shape: the app runs its audio clock (e.g. every 20 ms) and calls
//! [`UdpDriver::push_pcm`], [`UdpDriver::pull_pcm`], then [`UdpDriver::drive_until`] the
//! next tick; received datagrams and RTCP timers are handled meanwhile, and events are
//! collected for [`UdpDriver::take_events`].

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::net::UdpSocket;

use crate::rtp::is_rtcp;
use crate::session::{
    Input, MediaEvent, MediaSession, NTP_UNIX_OFFSET, Output, PullResult, SessionConfig,
    SessionError,
};

/// Errors of the driver: socket I/O or session misuse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// Socket error.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// Session error.
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// The NTP timestamp of the wall clock now (for [`SessionConfig::ntp_at_start`]).
pub fn ntp_now() -> u64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let secs = d.as_secs() + NTP_UNIX_OFFSET;
    let frac = ((d.subsec_nanos() as u64) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// Drives one session over UDP.
#[derive(Debug)]
pub struct UdpDriver {
    session: MediaSession,
    rtp: UdpSocket,
    rtcp: Option<UdpSocket>,
    events: VecDeque<MediaEvent>,
    timeout: Option<Instant>,
    buf: Vec<u8>,
    buf2: Vec<u8>,
}

impl UdpDriver {
    /// Binds the RTP socket (and an RTCP socket unless rtcp-mux) and builds the session,
    /// filling in [`SessionConfig::ntp_at_start`] from the wall clock.
    pub async fn bind(
        mut cfg: SessionConfig,
        rtp: SocketAddr,
        rtcp: Option<SocketAddr>,
    ) -> Result<Self, DriverError> {
        cfg.ntp_at_start = ntp_now();
        let mux = cfg.audio.rtcp_mux;
        let session = MediaSession::new(cfg)?;
        let rtp = UdpSocket::bind(rtp).await?;
        let rtcp = match (mux, rtcp) {
            (false, Some(a)) => Some(UdpSocket::bind(a).await?),
            _ => None,
        };
        Ok(Self::new(session, rtp, rtcp))
    }

    /// Wraps already bound sockets.
    pub fn new(session: MediaSession, rtp: UdpSocket, rtcp: Option<UdpSocket>) -> Self {
        UdpDriver {
            session,
            rtp,
            rtcp,
            events: VecDeque::new(),
            timeout: None,
            buf: vec![0; 2048],
            buf2: vec![0; 2048],
        }
    }

    /// Local RTP address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.rtp.local_addr()
    }

    /// The session (stats, direction, DTMF...).
    pub fn session_mut(&mut self) -> &mut MediaSession {
        &mut self.session
    }

    /// Events collected so far.
    pub fn take_events(&mut self) -> Vec<MediaEvent> {
        self.events.drain(..).collect()
    }

    async fn flush(&mut self) -> io::Result<()> {
        while let Some(o) = self.session.poll_output() {
            match o {
                Output::Transmit { dest, data } => {
                    let sock = match &self.rtcp {
                        Some(s) if is_rtcp_like(&data) => s,
                        _ => &self.rtp,
                    };
                    if let Err(e) = sock.send_to(&data, dest).await {
                        // ICMP errors on UDP are not fatal for media
                        tracing::debug!(error = %e, %dest, "send failed");
                    }
                }
                Output::Event(e) => self.events.push_back(e),
                Output::Timeout(t) => {
                    self.timeout = Some(t);
                    break;
                }
            }
        }
        Ok(())
    }

    /// Pushes one frame of app audio and sends what it produced.
    pub async fn push_pcm(&mut self, pcm: &[i16]) -> Result<(), DriverError> {
        self.session.push_pcm(Instant::now(), pcm)?;
        self.flush().await?;
        Ok(())
    }

    /// Pulls playout audio.
    pub fn pull_pcm(&mut self, out: &mut [i16]) -> PullResult {
        self.session.pull_pcm(Instant::now(), out)
    }

    /// Queues DTMF.
    pub fn send_dtmf(&mut self, digit: char, duration: Duration) -> Result<(), DriverError> {
        Ok(self.session.send_dtmf(digit, duration)?)
    }

    fn drain_ready(&mut self) -> io::Result<()> {
        for _ in 0..256 {
            match self.rtp.try_recv_from(&mut self.buf) {
                Ok((n, from)) => {
                    let data = self.buf.get(..n).unwrap_or_default();
                    self.session
                        .handle_input(Instant::now(), Input::Datagram { data, source: from });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if let Some(s) = &self.rtcp {
            for _ in 0..64 {
                match s.try_recv_from(&mut self.buf2) {
                    Ok((n, from)) => {
                        let data = self.buf2.get(..n).unwrap_or_default();
                        self.session
                            .handle_input(Instant::now(), Input::Datagram { data, source: from });
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Handles datagrams and timers until `deadline` (datagrams already queued are
    /// handled even when the deadline has passed).
    pub async fn drive_until(&mut self, deadline: Instant) -> Result<(), DriverError> {
        self.drain_ready()?;
        if self.timeout.is_some_and(|t| t <= Instant::now()) {
            self.session.handle_timeout(Instant::now());
        }
        loop {
            self.flush().await?;
            let now = Instant::now();
            if now >= deadline {
                return Ok(());
            }
            let wake = self.timeout.map_or(deadline, |t| t.min(deadline));
            let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(wake));
            tokio::select! {
                r = self.rtp.recv_from(&mut self.buf) => {
                    let (n, from) = r?;
                    let data = self.buf.get(..n).unwrap_or_default();
                    self.session.handle_input(Instant::now(), Input::Datagram { data, source: from });
                }
                r = recv_opt(&self.rtcp, &mut self.buf2) => {
                    let (n, from) = r?;
                    let data = self.buf2.get(..n).unwrap_or_default();
                    self.session.handle_input(Instant::now(), Input::Datagram { data, source: from });
                }
                _ = sleep => {
                    self.session.handle_timeout(Instant::now());
                }
            }
        }
    }

    /// Sends RTCP BYE and flushes.
    pub async fn close(&mut self) -> Result<(), DriverError> {
        self.session.close(Instant::now());
        self.flush().await?;
        Ok(())
    }
}

fn is_rtcp_like(data: &[u8]) -> bool {
    // SRTCP keeps the RTCP header in clear, so the RFC 5761 test works for it too.
    is_rtcp(data)
}

async fn recv_opt(sock: &Option<UdpSocket>, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    match sock {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}
