//! The four RFC 3261 §17 transaction state machines, their timers and matching.
//!
//! [`TransactionLayer`] is sans-IO: it takes received messages, commands from the
//! transaction user (TU) and the current time, and produces [`Transmit`]s, events for
//! the TU and its next deadline:
//!
//! ```text
//!   TU ──send_request / send_response / send_stateless──▶ TransactionLayer
//!   network ──handle_datagram / handle_message──────────▶ TransactionLayer
//!   clock ──handle_timeout(now) (at poll_timeout())─────▶ TransactionLayer
//!   TransactionLayer ──poll_transmit()──▶ driver (sockets)
//!   TransactionLayer ──poll_event()─────▶ TU
//! ```
//!
//! Machines (each documented on its state enum):
//! - INVITE client, §17.1.1, with RFC 6026's *Accepted* state (Timer M) so that 2xx
//!   retransmissions reach the TU, which sends the ACK for a 2xx itself; the ACK for a
//!   non-2xx final response is generated here (§17.1.1.3).
//! - non-INVITE client, §17.1.2 (Timers E, F, K).
//! - INVITE server, §17.2.1 with RFC 6026 (Timers G, H, I, L); `100 Trying` is sent
//!   when the TU has not answered within 200 ms.
//! - non-INVITE server, §17.2.2 (Timer J).
//!
//! Retransmission timers (A, E, G) run only on unreliable transports; the wait timers
//! D, I, J and K are zero on reliable ones.
//!
//! The server side stamps `received` and `rport` on the top Via of every incoming
//! request (RFC 3261 §18.2.1, RFC 3581 §4) before handing it to the TU, and sends
//! responses to the address RFC 3261 §18.2.2 / RFC 3581 §4 name.
//!
//! # Memory
//!
//! A transaction keeps only what its state still needs: its key, its target, its
//! timers and at most one serialized message to send again (the request while it may
//! be retransmitted, the ACK of a non-2xx final response, the last response of a
//! server transaction). The parsed request is kept only by an INVITE client
//! transaction until its final response (to build the ACK of a non-2xx, §17.1.1.3)
//! and by an INVITE server transaction until the TU's first response (to send
//! `100 Trying` itself, §17.2.1). In the RFC 6026 Accepted state nothing is
//! retransmitted by the transaction, so it keeps no message at all. Queues and maps
//! give their memory back when they are drained while no transaction is live, or when
//! a burst left them mostly empty.
//!
//! # Backpressure
//!
//! Output is never dropped. When [`MAX_QUEUED`] transmits or events wait for the
//! driver or the TU, received messages are refused before they change any state
//! ([`TransactionLayer::is_congested`], counted by
//! [`TransactionLayer::refused_messages`]): for UDP this is the same as a loss, which
//! the peer repairs by retransmitting; a driver reading a stream (TCP, TLS) should stop
//! reading while the layer is congested. Timers keep running while congested: what
//! they queue is bounded by the transactions (at most [`MAX_TRANSACTIONS`]).

mod key;
mod timer;
mod transport;
mod wire;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::msg::{Method, Request, Response, SipMessage};

pub use key::{MAGIC_COOKIE, TransactionKey, new_branch};
pub use timer::TimerConfig;
pub use transport::{Target, Transmit, Transport};
pub use wire::{build_ack_for_non_2xx, response_target};

use key::{KeyInner, LegacyKey};

/// Upper bound on concurrent transactions; beyond it new requests get a stateless
/// `503 Service Unavailable` and new client transactions are refused.
pub const MAX_TRANSACTIONS: usize = 8192;

/// Queued transmits, or queued events, from which on received messages are refused
/// (see [Backpressure](self#backpressure)). Nothing already queued is ever dropped.
pub const MAX_QUEUED: usize = 65536;

/// Capacity (in entries) above which a drained queue gives its memory back even while
/// transactions are live: a burst should not pin its peak memory.
const KEEP_QUEUE_CAPACITY: usize = 1024;

/// Maps with at least this capacity shrink when they are three quarters empty.
const SHRINK_MAP_FROM: usize = 64;

/// Capacities of a [`TransactionLayer`]'s tables and queues, in entries (see
/// [`TransactionLayer::capacities`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Capacities {
    /// The transaction map (a boxed transaction and its key per entry).
    pub transactions: usize,
    /// The id → key map used by the timer set.
    pub by_id: usize,
    /// Entries in the timer set (a B-tree: it allocates per entry, not ahead).
    pub timers: usize,
    /// The transmit queue.
    pub transmits: usize,
    /// The event queue.
    pub events: usize,
}

/// What the transaction layer tells the transaction user.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TransactionEvent {
    /// A provisional or final response for a client transaction.
    Response {
        /// The client transaction.
        key: TransactionKey,
        /// The response.
        response: Response,
    },
    /// A new request: a server transaction was created; answer it with
    /// [`TransactionLayer::send_response`].
    Request {
        /// The new server transaction.
        key: TransactionKey,
        /// The request, with `received`/`rport` filled on the top Via.
        request: Request,
        /// Where it came from.
        source: Target,
    },
    /// An ACK outside any server transaction (the ACK for a 2xx, RFC 3261 §17.2.1), or
    /// an ACK matching an INVITE server transaction in the Accepted state (RFC 6026).
    Ack {
        /// The ACK.
        request: Request,
        /// Where it came from.
        source: Target,
    },
    /// A response that matches no client transaction but may matter to the TU: a 2xx
    /// to an INVITE after the client transaction ended (RFC 6026 §7.2).
    StrayResponse {
        /// The response.
        response: Response,
        /// Where it came from.
        source: Target,
    },
    /// Timer B, F or H fired: the TU should act as on a `408 Request Timeout` (client)
    /// or know that the ACK never came (server).
    Timeout {
        /// The transaction that timed out.
        key: TransactionKey,
    },
    /// The transport reported a failure for this transaction (RFC 3261 §17.1.4,
    /// §17.2.4); the transaction is terminated.
    TransportError {
        /// The failed transaction.
        key: TransactionKey,
        /// What the transport said.
        reason: String,
    },
    /// The transaction ended and was forgotten.
    Terminated {
        /// The transaction.
        key: TransactionKey,
    },
}

/// A misuse of the transaction layer by its user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransactionError {
    /// The request lacks a header the transaction layer needs (API misuse).
    #[error("request cannot start a transaction: {0}")]
    InvalidRequest(&'static str),
    /// The response cannot be sent (API misuse).
    #[error("response cannot be sent: {0}")]
    InvalidResponse(&'static str),
    /// A transaction with this key already exists (branch reused).
    #[error("transaction {0} already exists")]
    Duplicate(TransactionKey),
    /// No such transaction (it may have terminated already).
    #[error("no transaction {0}")]
    UnknownTransaction(TransactionKey),
    /// The transaction is not in a state where this is allowed.
    #[error("transaction {key} cannot send this in state {state}")]
    WrongState {
        /// The transaction.
        key: TransactionKey,
        /// Its state.
        state: &'static str,
    },
    /// Too many transactions (local limit).
    #[error("too many transactions (limit {MAX_TRANSACTIONS})")]
    Overloaded,
}

/// Which of the four machines, with its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Machine {
    InviteClient(InviteClientState),
    NonInviteClient(NonInviteClientState),
    InviteServer(InviteServerState),
    NonInviteServer(NonInviteServerState),
}

/// INVITE client transaction states (RFC 3261 §17.1.1, Figure 5; RFC 6026 Figure 3).
///
/// ```text
///  Calling ──1xx──▶ Proceeding ──2xx──▶ Accepted ──Timer M──▶ Terminated
///     │  └──────2xx────────────────────────┘
///     └──300-699 (send ACK)──▶ Completed ──Timer D──▶ Terminated
///  Calling ──Timer B──▶ Terminated (Timeout)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InviteClientState {
    Calling,
    Proceeding,
    Completed,
    Accepted,
}

/// Non-INVITE client transaction states (RFC 3261 §17.1.2, Figure 6).
///
/// ```text
///  Trying ──1xx──▶ Proceeding ──200-699──▶ Completed ──Timer K──▶ Terminated
///  Trying/Proceeding ──Timer F──▶ Terminated (Timeout)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NonInviteClientState {
    Trying,
    Proceeding,
    Completed,
}

/// INVITE server transaction states (RFC 3261 §17.2.1, Figure 7; RFC 6026 Figure 5).
///
/// ```text
///  Proceeding ──2xx from TU──▶ Accepted ──Timer L──▶ Terminated
///  Proceeding ──300-699 from TU──▶ Completed ──ACK──▶ Confirmed ──Timer I──▶ Terminated
///  Completed ──Timer H──▶ Terminated (Timeout)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InviteServerState {
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
}

/// Non-INVITE server transaction states (RFC 3261 §17.2.2, Figure 8).
///
/// ```text
///  Trying ──1xx from TU──▶ Proceeding ──200-699 from TU──▶ Completed ──Timer J──▶ Terminated
///  Trying ──200-699 from TU──▶ Completed
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NonInviteServerState {
    Trying,
    Proceeding,
    Completed,
}

impl Machine {
    fn state_name(&self) -> &'static str {
        match self {
            Machine::InviteClient(s) => match s {
                InviteClientState::Calling => "Calling",
                InviteClientState::Proceeding => "Proceeding",
                InviteClientState::Completed => "Completed",
                InviteClientState::Accepted => "Accepted",
            },
            Machine::NonInviteClient(s) => match s {
                NonInviteClientState::Trying => "Trying",
                NonInviteClientState::Proceeding => "Proceeding",
                NonInviteClientState::Completed => "Completed",
            },
            Machine::InviteServer(s) => match s {
                InviteServerState::Proceeding => "Proceeding",
                InviteServerState::Completed => "Completed",
                InviteServerState::Confirmed => "Confirmed",
                InviteServerState::Accepted => "Accepted",
            },
            Machine::NonInviteServer(s) => match s {
                NonInviteServerState::Trying => "Trying",
                NonInviteServerState::Proceeding => "Proceeding",
                NonInviteServerState::Completed => "Completed",
            },
        }
    }
}

/// One transaction: only what its state still needs (see [Memory](self#memory)).
#[derive(Debug)]
struct Tx {
    machine: Machine,
    /// Client: where requests go. Server: where responses go.
    target: Target,
    /// The one message the transaction may have to send again: a client's request
    /// while Timer A or E may fire (unreliable transports only); the ACK an INVITE
    /// client sent for a non-2xx final response (Completed); a server's last response
    /// (`None` in Accepted, RFC 6026 §8.5, and before the TU's first response).
    resend: Option<Bytes>,
    /// The request that created the transaction, while the transaction may still use
    /// it: an INVITE client until its final response (the ACK of a non-2xx, RFC 3261
    /// §17.1.1.3), an INVITE server until the TU's first response (`100 Trying`,
    /// §17.2.1). Otherwise `None`.
    request: Option<Box<Request>>,
    /// Timer A / E / G: when to retransmit next, and the current interval.
    retransmit: Option<(Instant, Duration)>,
    /// Timer B / F / H: transaction timeout.
    timeout: Option<Instant>,
    /// Timer D / I / J / K / L / M: end of a wait state.
    end: Option<Instant>,
    /// INVITE server: when to send `100 Trying` if the TU has not answered.
    trying: Option<Instant>,
    /// Index in the layer's timer set.
    id: u64,
    /// The deadline under which `id` is filed in the timer set.
    scheduled: Option<Instant>,
}

impl Tx {
    fn reliable(&self) -> bool {
        self.target.transport.is_reliable()
    }

    fn next_deadline(&self) -> Option<Instant> {
        [
            self.retransmit.map(|(at, _)| at),
            self.timeout,
            self.end,
            self.trying,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// The RFC 3261 §17 transaction layer. See the [module docs](self).
#[derive(Debug)]
pub struct TransactionLayer {
    config: TimerConfig,
    /// Boxed: a map keeps room for more entries than it holds, and an empty slot
    /// then costs a pointer, not a whole transaction.
    transactions: HashMap<TransactionKey, Box<Tx>>,
    /// Every pending deadline, ordered: `(when, transaction id)`.
    timers: BTreeSet<(Instant, u64)>,
    /// Transaction id → key.
    by_id: HashMap<u64, TransactionKey>,
    next_id: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<TransactionEvent>,
    /// Received messages refused while congested (see [Backpressure](self#backpressure)).
    refused: u64,
    /// Whether the last received message was refused (logs once per congestion).
    refusing: bool,
}

impl TransactionLayer {
    /// A layer with these timer values.
    pub fn new(config: TimerConfig) -> Self {
        Self {
            config,
            transactions: HashMap::new(),
            timers: BTreeSet::new(),
            by_id: HashMap::new(),
            next_id: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            refused: 0,
            refusing: false,
        }
    }

    /// The timer values in use.
    pub fn config(&self) -> &TimerConfig {
        &self.config
    }

    /// Number of live transactions.
    pub fn len(&self) -> usize {
        self.transactions.len()
    }

    /// Whether no transaction is live.
    pub fn is_empty(&self) -> bool {
        self.transactions.is_empty()
    }

    /// Whether `key` names a live transaction (e.g. the INVITE a CANCEL refers to, via
    /// [`TransactionKey::cancelled_invite`]).
    pub fn contains(&self, key: &TransactionKey) -> bool {
        self.transactions.contains_key(key)
    }

    /// The request that created a live transaction, while the transaction keeps it:
    /// an INVITE client transaction until its final response, an INVITE server
    /// transaction until the TU's first response (see [Memory](self#memory)). `None`
    /// for other transactions, which do not keep their request.
    pub fn request(&self, key: &TransactionKey) -> Option<&Request> {
        self.transactions
            .get(key)
            .and_then(|t| t.request.as_deref())
    }

    /// Whether received messages are refused because [`MAX_QUEUED`] transmits or
    /// events wait to be polled (see [Backpressure](self#backpressure)). A driver
    /// should stop reading streams while this holds, and poll the layer.
    pub fn is_congested(&self) -> bool {
        self.transmits.len() >= MAX_QUEUED || self.events.len() >= MAX_QUEUED
    }

    /// How many received messages were refused because the layer was congested.
    pub fn refused_messages(&self) -> u64 {
        self.refused
    }

    /// Queued transmits and events not yet polled.
    pub fn queued(&self) -> (usize, usize) {
        (self.transmits.len(), self.events.len())
    }

    /// The room (in entries) the layer's tables and queues hold, for memory
    /// accounting: each costs its capacity times its entry size even when empty.
    pub fn capacities(&self) -> Capacities {
        Capacities {
            transactions: self.transactions.capacity(),
            by_id: self.by_id.capacity(),
            timers: self.timers.len(),
            transmits: self.transmits.capacity(),
            events: self.events.capacity(),
        }
    }

    /// Starts a client transaction (RFC 3261 §17.1). `request` must already carry its
    /// top Via with a branch starting with the magic cookie (see [`new_branch`]) and a
    /// CSeq whose method is the request's. ACK is not sent through a transaction: use
    /// [`send_stateless`](Self::send_stateless).
    pub fn send_request(
        &mut self,
        now: Instant,
        request: Request,
        target: Target,
    ) -> Result<TransactionKey, TransactionError> {
        if request.method == Method::Ack {
            return Err(TransactionError::InvalidRequest(
                "ACK is sent with send_stateless, not in a transaction",
            ));
        }
        let info = wire::request_info(&request).map_err(TransactionError::InvalidRequest)?;
        let Some(branch) = info.branch.as_deref() else {
            return Err(TransactionError::InvalidRequest("top Via has no branch"));
        };
        if !branch.starts_with(MAGIC_COOKIE) {
            return Err(TransactionError::InvalidRequest(
                "branch lacks the z9hG4bK magic cookie",
            ));
        }
        if info.cseq_method != request.method {
            return Err(TransactionError::InvalidRequest(
                "CSeq method differs from the request method",
            ));
        }
        let key = TransactionKey::client(branch, &request.method);
        if self.transactions.contains_key(&key) {
            return Err(TransactionError::Duplicate(key));
        }
        if self.transactions.len() >= MAX_TRANSACTIONS {
            return Err(TransactionError::Overloaded);
        }
        let bytes = wire::request_bytes(&request);
        let reliable = target.transport.is_reliable();
        let invite = request.method == Method::Invite;
        let c = &self.config;
        let (machine, retransmit, timeout) = if invite {
            (
                Machine::InviteClient(InviteClientState::Calling),
                (!reliable).then(|| (now + c.timer_a(), c.timer_a())),
                now + c.timer_b(),
            )
        } else {
            (
                Machine::NonInviteClient(NonInviteClientState::Trying),
                (!reliable).then(|| (now + c.timer_e(), c.timer_e())),
                now + c.timer_f(),
            )
        };
        tracing::debug!(%key, %target, "client transaction started");
        // Only an unreliable transport retransmits the request (Timers A, E).
        let resend = (!reliable).then(|| bytes.clone());
        self.push_transmit(target, bytes);
        self.insert_tx(
            key.clone(),
            Tx {
                machine,
                target,
                resend,
                request: invite.then(|| Box::new(request)),
                retransmit,
                timeout: Some(timeout),
                end: None,
                trying: None,
                id: 0,
                scheduled: None,
            },
        );
        Ok(key)
    }

    /// Answers a server transaction (RFC 3261 §17.2). Provisional responses keep the
    /// transaction proceeding; a 2xx to INVITE moves it to Accepted (RFC 6026), where
    /// further 2xx (the TU's retransmissions) may still be sent through here until
    /// Timer L fires; any other final response completes it.
    pub fn send_response(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        response: Response,
    ) -> Result<(), TransactionError> {
        if !(100..=699).contains(&response.status) {
            return Err(TransactionError::InvalidResponse("status outside 100-699"));
        }
        let config = self.config;
        let Some(tx) = self.transactions.get_mut(key) else {
            return Err(TransactionError::UnknownTransaction(key.clone()));
        };
        let status = response.status;
        let reliable = tx.reliable();
        let wrong_state = |tx: &Tx| TransactionError::WrongState {
            key: key.clone(),
            state: tx.machine.state_name(),
        };
        match tx.machine {
            Machine::InviteServer(state) => match (state, status) {
                (InviteServerState::Proceeding, 100..=199) => {
                    tx.trying = None;
                }
                (InviteServerState::Proceeding, 200..=299) => {
                    tx.trying = None;
                    tx.machine = Machine::InviteServer(InviteServerState::Accepted);
                    tx.end = Some(now + config.timer_l());
                }
                (InviteServerState::Accepted, 200..=299) => {}
                (InviteServerState::Proceeding, _) => {
                    tx.trying = None;
                    tx.machine = Machine::InviteServer(InviteServerState::Completed);
                    tx.retransmit = (!reliable).then(|| (now + config.timer_g(), config.timer_g()));
                    tx.timeout = Some(now + config.timer_h());
                }
                _ => return Err(wrong_state(tx)),
            },
            Machine::NonInviteServer(state) => match (state, status) {
                (NonInviteServerState::Trying | NonInviteServerState::Proceeding, 100..=199) => {
                    tx.machine = Machine::NonInviteServer(NonInviteServerState::Proceeding);
                }
                (NonInviteServerState::Trying | NonInviteServerState::Proceeding, _) => {
                    tx.machine = Machine::NonInviteServer(NonInviteServerState::Completed);
                    tx.end = Some(now + config.timer_j(reliable));
                }
                _ => return Err(wrong_state(tx)),
            },
            _ => {
                return Err(TransactionError::InvalidResponse(
                    "not a server transaction",
                ));
            }
        }
        let bytes = wire::response_bytes(&response);
        // The TU answered: no `100 Trying` on its behalf any more.
        tx.request = None;
        // In Accepted the TU retransmits its 2xx itself (RFC 6026 §8.5).
        tx.resend = (tx.machine != Machine::InviteServer(InviteServerState::Accepted))
            .then(|| bytes.clone());
        let target = tx.target;
        tracing::debug!(%key, status, state = tx.machine.state_name(), "response sent");
        self.push_transmit(target, bytes);
        // A zero Timer J (reliable transport) ends the transaction at once.
        self.fire_due(now, key);
        Ok(())
    }

    /// Bytes received from the network (one datagram, or one framed message from a
    /// stream). Unparseable requests are answered `400` statelessly when enough of
    /// them could be read; everything else that is bad is logged and dropped.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        data: Bytes,
        source: SocketAddr,
        transport: Transport,
    ) {
        if data
            .iter()
            .all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t'))
        {
            // RFC 5626 §3.5.1 keep-alive (CRLF) or padding.
            return;
        }
        if !self.admit(source) {
            return;
        }
        match SipMessage::parse(data.clone()) {
            Ok(msg) => self.handle_message(now, msg, source, transport),
            Err(e) => {
                tracing::debug!(%source, error = %e, "unparseable SIP message");
                let target = Target::new(transport, source);
                if let Some(reply) = wire::salvage_bad_request(&data, &e) {
                    self.push_transmit(target, reply);
                }
            }
        }
    }

    /// A parsed message received from the network.
    pub fn handle_message(
        &mut self,
        now: Instant,
        msg: SipMessage,
        source: SocketAddr,
        transport: Transport,
    ) {
        if !self.admit(source) {
            return;
        }
        let source = Target::new(transport, source);
        match msg {
            SipMessage::Request(req) => self.on_request(now, req, source),
            SipMessage::Response(resp) => self.on_response(now, resp, source),
        }
    }

    /// A transport failure for messages sent to `target` (RFC 3261 §17.1.4, §17.2.4):
    /// every transaction sending there is terminated with a
    /// [`TransactionEvent::TransportError`].
    pub fn handle_transport_error(&mut self, _now: Instant, target: &Target, reason: &str) {
        let failed: Vec<TransactionKey> = self
            .transactions
            .iter()
            .filter(|(_, tx)| tx.target == *target)
            .map(|(k, _)| k.clone())
            .collect();
        for key in failed {
            tracing::debug!(%key, %target, reason, "transport error");
            self.push_event(TransactionEvent::TransportError {
                key: key.clone(),
                reason: reason.to_string(),
            });
            self.terminate(&key);
        }
    }

    /// Processes every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Firing a timer never schedules another one at or before `now` (intervals are
        // positive), so one pass over the due transactions suffices, except for zero
        // wait timers, which the loop picks up.
        for _ in 0..4 {
            let due: Vec<TransactionKey> = self
                .timers
                .range(..=(now, u64::MAX))
                .filter_map(|(_, id)| self.by_id.get(id).cloned())
                .collect();
            if due.is_empty() {
                return;
            }
            for key in due {
                self.fire_timers(now, &key);
            }
        }
    }

    /// Fires the timers of one transaction that are due (zero wait timers on reliable
    /// transports end a transaction at once).
    fn fire_due(&mut self, now: Instant, key: &TransactionKey) {
        self.reschedule(key);
        for _ in 0..4 {
            match self.transactions.get(key) {
                Some(tx) if tx.next_deadline().is_some_and(|d| d <= now) => {
                    self.fire_timers(now, key);
                }
                _ => return,
            }
        }
    }

    /// The next transmit for the driver.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let next = self.transmits.pop_front();
        if next.is_none() {
            Self::release_queue(&mut self.transmits, self.transactions.is_empty());
        }
        next
    }

    /// The next event for the TU.
    pub fn poll_event(&mut self) -> Option<TransactionEvent> {
        let next = self.events.pop_front();
        if next.is_none() {
            Self::release_queue(&mut self.events, self.transactions.is_empty());
        }
        next
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// Files a new transaction and its timers.
    fn insert_tx(&mut self, key: TransactionKey, mut tx: Tx) {
        self.next_id = self.next_id.wrapping_add(1);
        tx.id = self.next_id;
        tx.scheduled = None;
        self.by_id.insert(tx.id, key.clone());
        let _ = self.transactions.insert(key.clone(), Box::new(tx));
        self.reschedule(&key);
    }

    /// Re-files a transaction's earliest deadline after its timers changed.
    fn reschedule(&mut self, key: &TransactionKey) {
        let Some(tx) = self.transactions.get_mut(key) else {
            return;
        };
        let next = tx.next_deadline();
        if next != tx.scheduled {
            if let Some(old) = tx.scheduled {
                self.timers.remove(&(old, tx.id));
            }
            if let Some(at) = next {
                self.timers.insert((at, tx.id));
            }
            tx.scheduled = next;
        }
    }

    /// Sends a message outside any transaction: the ACK for a 2xx, 2xx
    /// retransmissions by the TU, stateless responses.
    pub fn send_stateless(&mut self, msg: SipMessage, target: Target) {
        let bytes = match &msg {
            SipMessage::Request(r) => wire::request_bytes(r),
            SipMessage::Response(r) => wire::response_bytes(r),
        };
        self.push_transmit(target, bytes);
    }

    /// Queues a transmit. Never drops: the queues are bounded by refusing received
    /// messages while congested (see [Backpressure](self#backpressure)).
    fn push_transmit(&mut self, target: Target, data: Bytes) {
        self.transmits.push_back(Transmit { target, data });
    }

    /// Queues an event for the TU. Never drops (see [`push_transmit`](Self::push_transmit)).
    fn push_event(&mut self, event: TransactionEvent) {
        self.events.push_back(event);
    }

    /// Whether a received message may be processed; counts and logs a refusal.
    fn admit(&mut self, source: SocketAddr) -> bool {
        if !self.is_congested() {
            self.refusing = false;
            return true;
        }
        self.refused = self.refused.saturating_add(1);
        if !self.refusing {
            self.refusing = true;
            let (transmits, events) = self.queued();
            tracing::warn!(
                %source,
                transmits,
                events,
                "transaction layer congested: refusing received messages until its output is polled"
            );
        } else {
            tracing::debug!(%source, "congested: message refused");
        }
        false
    }

    fn terminate(&mut self, key: &TransactionKey) {
        if let Some(tx) = self.transactions.remove(key) {
            if let Some(at) = tx.scheduled {
                self.timers.remove(&(at, tx.id));
            }
            self.by_id.remove(&tx.id);
            tracing::debug!(%key, "transaction terminated");
            self.push_event(TransactionEvent::Terminated { key: key.clone() });
            self.shrink_tables();
        }
    }

    /// Gives memory back after transactions ended: an empty timer set frees its root
    /// node, an empty map its table, a map three quarters empty half of it (amortized
    /// O(1): it must have doubled since it last grew).
    fn shrink_tables(&mut self) {
        if self.timers.is_empty() {
            self.timers = BTreeSet::new();
        }
        shrink_map(&mut self.transactions);
        shrink_map(&mut self.by_id);
    }

    /// After a queue was drained: free its buffer when no transaction is live (an idle
    /// layer holds no memory) or when a burst left it large.
    fn release_queue<T>(queue: &mut VecDeque<T>, idle: bool) {
        if queue.is_empty()
            && queue.capacity() > 0
            && (idle || queue.capacity() > KEEP_QUEUE_CAPACITY)
        {
            *queue = VecDeque::new();
        }
    }

    fn fire_timers(&mut self, now: Instant, key: &TransactionKey) {
        let config = self.config;
        let Some(tx) = self.transactions.get_mut(key) else {
            return;
        };
        let mut out: Option<Bytes> = None;
        let mut timed_out = false;
        let mut ended = false;
        // Timer B / F / H.
        if tx.timeout.is_some_and(|t| t <= now) {
            tx.timeout = None;
            timed_out = true;
        }
        // Timer D / I / J / K / L / M.
        if tx.end.is_some_and(|t| t <= now) {
            tx.end = None;
            ended = true;
        }
        // Timer A / E / G.
        if !timed_out && !ended {
            if let Some((at, interval)) = tx.retransmit
                && at <= now
            {
                match tx.machine {
                    Machine::InviteClient(InviteClientState::Calling) => {
                        let next = config.next_a(interval);
                        tx.retransmit = Some((now + next, next));
                        out = tx.resend.clone();
                    }
                    Machine::NonInviteClient(NonInviteClientState::Trying) => {
                        let next = config.next_e(interval);
                        tx.retransmit = Some((now + next, next));
                        out = tx.resend.clone();
                    }
                    Machine::NonInviteClient(NonInviteClientState::Proceeding) => {
                        tx.retransmit = Some((now + config.t2, config.t2));
                        out = tx.resend.clone();
                    }
                    Machine::InviteServer(InviteServerState::Completed) => {
                        let next = config.next_g(interval);
                        tx.retransmit = Some((now + next, next));
                        out = tx.resend.clone();
                    }
                    _ => tx.retransmit = None,
                }
            }
            // 100 Trying on the TU's behalf (§17.2.1).
            if tx.trying.is_some_and(|t| t <= now) {
                tx.trying = None;
                if tx.machine == Machine::InviteServer(InviteServerState::Proceeding)
                    && tx.resend.is_none()
                    && let Some(request) = tx.request.take()
                {
                    let trying = wire::build_response(&request, 100, "Trying");
                    let bytes = wire::response_bytes(&trying);
                    tx.resend = Some(bytes.clone());
                    out = Some(bytes);
                }
            }
        }
        let target = tx.target;
        if let Some(bytes) = out {
            tracing::trace!(%key, "retransmission");
            self.push_transmit(target, bytes);
        }
        if timed_out {
            tracing::debug!(%key, "transaction timed out");
            self.push_event(TransactionEvent::Timeout { key: key.clone() });
            self.terminate(key);
        } else if ended {
            self.terminate(key);
        } else {
            self.reschedule(key);
        }
    }

    fn on_response(&mut self, now: Instant, response: Response, source: Target) {
        let info = match wire::response_info(&response) {
            Ok(i) => i,
            Err(why) => {
                tracing::debug!(%source, why, "dropping malformed response");
                return;
            }
        };
        if info.via_count != 1 {
            // RFC 3261 §18.1.2: a response with more than one Via is misrouted.
            tracing::debug!(%source, "dropping response with {} Via headers", info.via_count);
            return;
        }
        let Some(branch) = info.branch.as_deref() else {
            tracing::debug!(%source, "dropping response without branch");
            return;
        };
        let key = TransactionKey::client(branch, &info.cseq_method);
        let config = self.config;
        let Some(tx) = self.transactions.get_mut(&key) else {
            if info.cseq_method == Method::Invite && (200..300).contains(&response.status) {
                self.push_event(TransactionEvent::StrayResponse { response, source });
            } else {
                tracing::trace!(%source, %key, status = response.status, "stray response dropped");
            }
            return;
        };
        let status = response.status;
        let reliable = tx.reliable();
        let mut deliver = false;
        let mut send_ack: Option<Bytes> = None;
        match tx.machine {
            Machine::InviteClient(state) => match (state, status) {
                (InviteClientState::Calling | InviteClientState::Proceeding, 100..=199) => {
                    tx.machine = Machine::InviteClient(InviteClientState::Proceeding);
                    tx.retransmit = None;
                    // Timer B only guards the Calling state (§17.1.1.2).
                    tx.timeout = None;
                    deliver = true;
                }
                (InviteClientState::Calling | InviteClientState::Proceeding, 200..=299) => {
                    tx.machine = Machine::InviteClient(InviteClientState::Accepted);
                    // The TU sends the ACK for a 2xx; nothing is sent again from here.
                    tx.request = None;
                    tx.resend = None;
                    tx.retransmit = None;
                    tx.timeout = None;
                    tx.end = Some(now + config.timer_m());
                    deliver = true;
                }
                (InviteClientState::Accepted, 200..=299) => deliver = true,
                (InviteClientState::Calling | InviteClientState::Proceeding, _) => {
                    tx.machine = Machine::InviteClient(InviteClientState::Completed);
                    tx.retransmit = None;
                    tx.timeout = None;
                    tx.end = Some(now + config.timer_d(reliable));
                    // The ACK replaces the request as what may be sent again.
                    send_ack = tx.request.take().map(|invite| {
                        wire::request_bytes(&wire::build_ack_for_non_2xx(&invite, &response))
                    });
                    tx.resend = send_ack.clone();
                    deliver = true;
                }
                (InviteClientState::Completed, 300..=699) => {
                    send_ack = tx.resend.clone();
                }
                _ => {
                    tracing::trace!(%key, status, "response absorbed");
                }
            },
            Machine::NonInviteClient(state) => match (state, status) {
                (NonInviteClientState::Trying | NonInviteClientState::Proceeding, 100..=199) => {
                    tx.machine = Machine::NonInviteClient(NonInviteClientState::Proceeding);
                    deliver = true;
                }
                (NonInviteClientState::Trying | NonInviteClientState::Proceeding, _) => {
                    tx.machine = Machine::NonInviteClient(NonInviteClientState::Completed);
                    tx.resend = None;
                    tx.retransmit = None;
                    tx.timeout = None;
                    tx.end = Some(now + config.timer_k(reliable));
                    deliver = true;
                }
                _ => tracing::trace!(%key, status, "response retransmission absorbed"),
            },
            _ => return,
        }
        let target = tx.target;
        if let Some(ack) = send_ack {
            self.push_transmit(target, ack);
        }
        if deliver {
            self.push_event(TransactionEvent::Response {
                key: key.clone(),
                response,
            });
        }
        self.fire_due(now, &key);
    }

    fn on_request(&mut self, now: Instant, mut request: Request, source: Target) {
        let info = match wire::request_info(&request) {
            Ok(i) => i,
            Err(why) => {
                tracing::debug!(%source, why, "bad request");
                if request.method != Method::Ack && wire::has_via(&request) {
                    let resp = wire::build_response(&request, 400, why);
                    let target = response_target(&request, source);
                    self.push_transmit(target, wire::response_bytes(&resp));
                }
                return;
            }
        };
        if info.cseq_method != request.method {
            tracing::debug!(%source, "CSeq method differs from request method");
            if request.method != Method::Ack {
                let resp = wire::build_response(&request, 400, "CSeq Method Mismatch");
                let target = response_target(&request, source);
                self.push_transmit(target, wire::response_bytes(&resp));
            }
            return;
        }
        wire::stamp_received(&mut request, source.addr);
        let key = server_key(&request, &info, source);
        let config = self.config;
        if let Some(tx) = self.transactions.get_mut(&key) {
            let mut resend = None;
            let mut ack_to_tu = false;
            match (tx.machine, request.method == Method::Ack) {
                (Machine::InviteServer(InviteServerState::Completed), true) => {
                    tx.machine = Machine::InviteServer(InviteServerState::Confirmed);
                    tx.retransmit = None;
                    tx.timeout = None;
                    tx.end = Some(now + config.timer_i(tx.reliable()));
                }
                (Machine::InviteServer(InviteServerState::Accepted), true) => {
                    ack_to_tu = true;
                }
                (Machine::InviteServer(InviteServerState::Confirmed), true) => {}
                (Machine::InviteServer(InviteServerState::Proceeding), false)
                | (Machine::InviteServer(InviteServerState::Completed), false)
                | (Machine::NonInviteServer(_), false) => {
                    resend = tx.resend.clone();
                }
                _ => {}
            }
            let target = tx.target;
            tracing::trace!(%key, "request retransmission absorbed");
            if let Some(bytes) = resend {
                self.push_transmit(target, bytes);
            }
            if ack_to_tu {
                self.push_event(TransactionEvent::Ack { request, source });
            }
            self.fire_due(now, &key);
            return;
        }
        if request.method == Method::Ack {
            self.push_event(TransactionEvent::Ack { request, source });
            return;
        }
        let response_to = response_target(&request, source);
        if self.transactions.len() >= MAX_TRANSACTIONS {
            tracing::warn!(%source, "too many transactions; answering 503");
            let resp = wire::build_response(&request, 503, "Service Unavailable");
            self.push_transmit(response_to, wire::response_bytes(&resp));
            return;
        }
        let invite = request.method == Method::Invite;
        let tx = Tx {
            machine: if invite {
                Machine::InviteServer(InviteServerState::Proceeding)
            } else {
                Machine::NonInviteServer(NonInviteServerState::Trying)
            },
            target: response_to,
            resend: None,
            // Only the INVITE server may need it, for `100 Trying`.
            request: invite.then(|| Box::new(request.clone())),
            retransmit: None,
            timeout: None,
            end: None,
            trying: invite.then(|| now + config.trying_delay),
            id: 0,
            scheduled: None,
        };
        tracing::debug!(%key, %source, "server transaction started");
        self.insert_tx(key.clone(), tx);
        self.push_event(TransactionEvent::Request {
            key,
            request,
            source,
        });
    }
}

/// Shrinks a map whose entries ended: frees an empty one's table, halves one at most a
/// quarter full (from [`SHRINK_MAP_FROM`] entries of capacity).
fn shrink_map<K: Eq + std::hash::Hash, V>(map: &mut HashMap<K, V>) {
    let cap = map.capacity();
    if map.is_empty() {
        if cap > 0 {
            map.shrink_to_fit();
        }
    } else if cap >= SHRINK_MAP_FROM && map.len() * 4 <= cap {
        map.shrink_to(map.len() * 2);
    }
}

fn server_key(request: &Request, info: &wire::RequestInfo, source: Target) -> TransactionKey {
    match info.branch.as_deref() {
        Some(branch) if branch.starts_with(MAGIC_COOKIE) => {
            TransactionKey(Arc::new(KeyInner::Server {
                branch: branch.into(),
                sent_by: info.sent_by(source.transport).into_boxed_str(),
                method: key::match_method(&request.method),
            }))
        }
        _ => TransactionKey(Arc::new(KeyInner::ServerLegacy(Box::new(LegacyKey {
            request_uri: request.uri().to_string(),
            from_tag: info.from_tag.clone().unwrap_or_default(),
            call_id: info.call_id.clone(),
            cseq: info.cseq,
            via: info.top_via_text.clone(),
            method: key::match_method(&request.method),
        })))),
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;
    use std::mem::size_of;

    /// What a live transaction costs inline. Boxed in the map, so an empty slot costs
    /// a pointer; these bounds keep the per-transaction cost from creeping back.
    #[test]
    fn transaction_structures_stay_small() {
        eprintln!(
            "size_of: Tx {} / KeyInner {} / LegacyKey {} / Target {} / Machine {} / Transmit {} / TransactionEvent {} / TransactionLayer {}",
            size_of::<Tx>(),
            size_of::<KeyInner>(),
            size_of::<LegacyKey>(),
            size_of::<Target>(),
            size_of::<Machine>(),
            size_of::<Transmit>(),
            size_of::<TransactionEvent>(),
            size_of::<TransactionLayer>(),
        );
        // Was 496 B (a whole parsed request, two message buffers), inline in the map.
        assert!(size_of::<Tx>() <= 192, "Tx is {} B", size_of::<Tx>());
        // Was 128 B (the RFC 2543 variant inline).
        assert!(
            size_of::<KeyInner>() <= 64,
            "KeyInner is {} B",
            size_of::<KeyInner>()
        );
        // The map holds a key and a box: two pointers.
        assert_eq!(
            size_of::<(TransactionKey, Box<Tx>)>(),
            2 * size_of::<usize>()
        );
    }
}
