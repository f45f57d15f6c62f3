//! An async SIP user agent: the sans-IO [`Endpoint`] driven by the tokio transports of
//! [`crate::driver`].
//!
//! [`Client::start`] binds the sockets and spawns one task that owns them and runs the
//! endpoint loop (flush transmits, then wait for a datagram, the endpoint's deadline or
//! a command). Commands run on the caller's thread under a short lock with
//! [`Client::with`] (or the helpers built on it) and wake the task; events arrive on
//! [`Client::next_event`]. A failed connection (a TLS certificate the trust anchors do
//! not cover, a refused connection, ...) arrives as [`SipEvent::TransportFailed`] with
//! its typed cause, just before the failed request's own 503 event.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::RngCore;
use tokio::sync::{Notify, mpsc};

use crate::driver::{self, TransportConfig, TransportSetupError, Transports};
use crate::endpoint::{
    AnswerOptions, CallId, CallOptions, Endpoint, EndpointConfig, EndpointError, Input, Output,
    SipEvent,
};
use crate::msg::Uri;
use crate::transaction::{Transmit, Transport};

struct Shared {
    endpoint: Mutex<Endpoint>,
    wake: Notify,
}

/// A running SIP user agent. Dropping it stops its task (without un-REGISTER: call
/// [`Client::shutdown`] first for that).
pub struct Client {
    shared: Arc<Shared>,
    events: mpsc::Receiver<SipEvent>,
    task: tokio::task::JoinHandle<()>,
    local_addr: SocketAddr,
    /// A bound (not listening) TCP socket holding the port Via and Contact name when
    /// only outgoing TLS connections exist.
    _port: Option<tokio::net::TcpSocket>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

impl Client {
    /// Opens the sockets `config.transport` needs and starts the endpoint task: for
    /// TLS (the default) outgoing TLS trusting the Mozilla roots; for an explicitly
    /// chosen plain transport ([`EndpointConfig::insecure`]) a UDP socket or a TCP
    /// listener at `config.local_addr` (port 0 picks one; the endpoint then uses the
    /// bound address in Via and Contact).
    pub async fn start(config: EndpointConfig) -> Result<Client, TransportSetupError> {
        Self::start_with(config, None).await
    }

    /// Like [`start`](Self::start) with explicit transport settings (a private CA for
    /// TLS, TCP listener, ...). With `config.transport` TCP and a `tcp_listen` address,
    /// Via and Contact carry the listener's address; requests from the proxy come back
    /// over the connection we opened (the proxy's alias for it, RFC 5923 style); the
    /// same holds for TLS connections.
    pub async fn start_with(
        mut config: EndpointConfig,
        transports: Option<TransportConfig>,
    ) -> Result<Client, TransportSetupError> {
        let tc = transports.unwrap_or_else(|| match config.transport {
            Transport::Udp => TransportConfig::udp(config.local_addr),
            Transport::Tcp => TransportConfig {
                tcp_listen: Some(config.local_addr),
                tls: None,
                ..TransportConfig::default()
            },
            _ => TransportConfig::default(),
        });
        let transports = Transports::bind(tc).await?;
        // Via sent-by and Contact: the listening address of the configured transport
        // (the UDP socket, or the TCP listener), else the UDP socket.
        if let Some(bound) = transports
            .local_addr(config.transport)
            .or_else(|| transports.local_addr(Transport::Udp))
        {
            config.local_addr = bound;
        }
        // Outgoing TLS only: no socket of ours listens, but Via sent-by and Contact need
        // a port (0 is invalid and a default 5061 may be the proxy's own on loopback).
        // Reserve an ephemeral one; requests reach us over our connection (RFC 5923).
        let mut port = None;
        if config.local_addr.port() == 0 {
            let socket = if config.local_addr.is_ipv4() {
                tokio::net::TcpSocket::new_v4()
            } else {
                tokio::net::TcpSocket::new_v6()
            };
            let addr = config.local_addr;
            let bind = |e: std::io::Error| TransportSetupError::Bind { addr, source: e };
            let socket = socket.map_err(bind)?;
            socket.bind(addr).map_err(bind)?;
            config.local_addr = socket.local_addr().map_err(bind)?;
            port = Some(socket);
        }
        let local_addr = config.local_addr;
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        let shared = Arc::new(Shared {
            endpoint: Mutex::new(Endpoint::from_seed(config, seed)),
            wake: Notify::new(),
        });
        let (events_tx, events) = mpsc::channel(EVENT_CHANNEL);
        let task = tokio::spawn(run(shared.clone(), transports, events_tx));
        Ok(Client {
            shared,
            events,
            task,
            local_addr,
            _port: port,
        })
    }

    /// The bound local address (Via sent-by and Contact).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Runs a command on the endpoint with the current time and wakes the task so that
    /// its output is sent.
    pub fn with<R>(&self, f: impl FnOnce(&mut Endpoint, Instant) -> R) -> R {
        let r = {
            let mut ep = match self.shared.endpoint.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            f(&mut ep, Instant::now())
        };
        self.shared.wake.notify_one();
        r
    }

    /// The next event, or `None` when the task has stopped.
    pub async fn next_event(&mut self) -> Option<SipEvent> {
        self.events.recv().await
    }

    /// The next event within `timeout`.
    pub async fn next_event_timeout(&mut self, timeout: Duration) -> Option<SipEvent> {
        tokio::time::timeout(timeout, self.events.recv())
            .await
            .ok()
            .flatten()
    }

    /// Waits up to `timeout` for the first event for which `f` returns `Some`,
    /// discarding the others (logged at debug level).
    pub async fn wait_for<T>(
        &mut self,
        timeout: Duration,
        mut f: impl FnMut(&SipEvent) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let ev = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .ok()
                .flatten()?;
            if let Some(t) = f(&ev) {
                return Some(t);
            }
            tracing::debug!(event = ?ev, "event skipped while waiting");
        }
    }

    /// REGISTER (see [`Endpoint::register`]).
    pub fn register(&self) -> Result<(), EndpointError> {
        self.with(|ep, now| ep.register(now))
    }

    /// Un-REGISTER (see [`Endpoint::unregister`]).
    pub fn unregister(&self) -> Result<(), EndpointError> {
        self.with(|ep, now| ep.unregister(now))
    }

    /// Places a call (see [`Endpoint::invite`]).
    pub fn invite(&self, to: Uri, body: Bytes, opts: CallOptions) -> Result<CallId, EndpointError> {
        self.with(|ep, now| ep.invite(now, to, body, opts))
    }

    /// Sends 180 Ringing.
    pub fn ring(&self, call: CallId) -> Result<(), EndpointError> {
        self.with(|ep, now| ep.ring(now, call))
    }

    /// Answers a call or re-INVITE.
    pub fn answer(&self, call: CallId, status: u16, body: Bytes) -> Result<(), EndpointError> {
        self.with(|ep, now| ep.answer(now, call, status, body))
    }

    /// Answers a call with options (Call-Info in the 2xx, see [`Endpoint::answer_with`]).
    pub fn answer_with(
        &self,
        call: CallId,
        status: u16,
        body: Bytes,
        opts: AnswerOptions,
    ) -> Result<(), EndpointError> {
        self.with(|ep, now| ep.answer_with(now, call, status, body, opts))
    }

    /// Sends a re-INVITE.
    pub fn reinvite(&self, call: CallId, body: Bytes) -> Result<(), EndpointError> {
        self.with(|ep, now| ep.reinvite(now, call, body))
    }

    /// Cancels an unanswered outgoing call.
    pub fn cancel(&self, call: CallId) -> Result<(), EndpointError> {
        self.with(|ep, now| ep.cancel(now, call))
    }

    /// Hangs up.
    pub fn bye(&self, call: CallId) -> Result<(), EndpointError> {
        self.with(|ep, now| ep.bye(now, call))
    }

    /// Un-REGISTERs if registered and waits up to `timeout` for the registrar's answer,
    /// then stops the task.
    pub async fn shutdown(mut self, timeout: Duration) {
        let registered = self.with(|ep, _| ep.is_registered());
        if registered && self.unregister().is_ok() {
            let _ = self
                .wait_for(timeout, |e| match e {
                    SipEvent::Unregistered | SipEvent::RegistrationFailed { .. } => Some(()),
                    _ => None,
                })
                .await;
        }
        self.task.abort();
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Endpoint> {
    match shared.endpoint.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Events the task holds for the application beyond the channel before it stops
/// reading the network.
const EVENT_CHANNEL: usize = 1024;

fn to_core(input: driver::Input) -> Option<Input> {
    Some(match input {
        driver::Input::Receive {
            data,
            source,
            transport,
        } => Input::Receive {
            data,
            source,
            transport,
        },
        driver::Input::TransportError { target, reason } => {
            Input::TransportError { target, reason }
        }
        driver::Input::Connected { target, tls } => Input::Connected { target, tls },
        #[allow(unreachable_patterns)]
        _ => return None,
    })
}

/// The endpoint loop. Backpressure, never loss: events go to the application over a
/// bounded channel; those that do not fit wait in `backlog`, and while any wait (or the
/// endpoint refuses input, [`Endpoint::try_handle_input`]) the task reads nothing from
/// the network — timers and commands still run — until the application caught up.
async fn run(shared: Arc<Shared>, mut transports: Transports, events: mpsc::Sender<SipEvent>) {
    let mut backlog: std::collections::VecDeque<SipEvent> = std::collections::VecDeque::new();
    let mut held: Option<Input> = None;
    loop {
        let mut sends: Vec<(Transmit, Option<String>)> = Vec::new();
        let deadline = {
            let mut ep = lock(&shared);
            let mut deadline = None;
            while let Some(out) = ep.poll_output() {
                match out {
                    Output::Transmit(t) => {
                        // RFC 5922 §7.2: each TLS connection checks its own target's name.
                        let name = (t.target.transport == Transport::Tls)
                            .then(|| ep.tls_server_name(&t.target));
                        sends.push((t, name));
                    }
                    Output::Event(e) => backlog.push_back(e),
                    Output::Timeout(at) => {
                        deadline = Some(at);
                        // The queue is drained: offer the refused input again.
                        match held.take().map(|i| ep.try_handle_input(Instant::now(), i)) {
                            Some(Ok(())) => continue,
                            Some(Err(refused)) => held = Some(*refused.input),
                            None => {}
                        }
                        break;
                    }
                    #[allow(unreachable_patterns)]
                    _ => {}
                }
            }
            deadline
        };
        while let Some(e) = backlog.pop_front() {
            match events.try_send(e) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(e)) => {
                    backlog.push_front(e);
                    break;
                }
                // The application dropped its receiver; keep running.
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        for (t, name) in sends {
            transports.send_named(t, name).await;
        }
        let paused = !backlog.is_empty() || held.is_some();
        let sleep_until = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            input = transports.recv(), if !paused => {
                if let Some(input) = to_core(input)
                    && let Err(refused) = lock(&shared).try_handle_input(Instant::now(), input)
                {
                    held = Some(*refused.input);
                }
            }
            permit = events.reserve(), if !backlog.is_empty() => {
                match (permit, backlog.pop_front()) {
                    (Ok(permit), Some(e)) => permit.send(e),
                    (Err(_), _) => backlog.clear(), // receiver dropped
                    (Ok(_), None) => {}
                }
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(sleep_until)) => {
                lock(&shared).handle_input(Instant::now(), Input::Timeout);
            }
            _ = shared.wake.notified() => {}
        }
    }
}
