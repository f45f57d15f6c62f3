//! Transaction identification (RFC 3261 §17.1.3, §17.2.3).

use std::fmt;
use std::sync::Arc;

use crate::msg::Method;

/// The RFC 3261 magic cookie that starts every compliant branch (§8.1.1.7).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// Identifies one transaction in a [`TransactionLayer`](super::TransactionLayer).
///
/// - client transactions (§17.1.3): top Via `branch` + CSeq method;
/// - server transactions (§17.2.3): `branch` + Via sent-by + method, where ACK maps to
///   INVITE (an ACK for a non-2xx final belongs to the INVITE transaction) and CANCEL
///   is a transaction of its own;
/// - server transactions for RFC 2543 requests (branch without the magic cookie): the
///   Request-URI, From tag, Call-ID, CSeq and top Via.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TransactionKey(pub(crate) Arc<KeyInner>);

/// Boxed strings, and the rare RFC 2543 variant boxed on its own, keep the shared
/// allocation small: every live transaction has one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum KeyInner {
    Client {
        branch: Box<str>,
        method: Method,
    },
    Server {
        branch: Box<str>,
        sent_by: Box<str>,
        method: Method,
    },
    ServerLegacy(Box<LegacyKey>),
}

/// RFC 3261 §17.2.3 matching for a request whose branch lacks the magic cookie.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct LegacyKey {
    pub request_uri: String,
    pub from_tag: String,
    pub call_id: String,
    pub cseq: u32,
    pub via: String,
    pub method: Method,
}

impl TransactionKey {
    /// A client transaction key.
    pub(crate) fn client(branch: &str, method: &Method) -> Self {
        Self(Arc::new(KeyInner::Client {
            branch: branch.into(),
            method: match_method(method),
        }))
    }

    /// Whether this is a client transaction key.
    pub fn is_client(&self) -> bool {
        matches!(*self.0, KeyInner::Client { .. })
    }

    /// Whether this is a server transaction key.
    pub fn is_server(&self) -> bool {
        !self.is_client()
    }

    /// The method this transaction is for (INVITE for an INVITE transaction, including
    /// its ACK for a non-2xx final response).
    pub fn method(&self) -> &Method {
        match &*self.0 {
            KeyInner::Client { method, .. } | KeyInner::Server { method, .. } => method,
            KeyInner::ServerLegacy(legacy) => &legacy.method,
        }
    }

    /// The branch parameter, when the key is built from one.
    pub fn branch(&self) -> Option<&str> {
        match &*self.0 {
            KeyInner::Client { branch, .. } | KeyInner::Server { branch, .. } => Some(branch),
            KeyInner::ServerLegacy(_) => None,
        }
    }

    /// For a CANCEL transaction, the key of the INVITE transaction it cancels (RFC 3261
    /// §9.2: same matching rules, method INVITE). `None` for any other method.
    pub fn cancelled_invite(&self) -> Option<TransactionKey> {
        if *self.method() != Method::Cancel {
            return None;
        }
        let mut inner = KeyInner::clone(&self.0);
        match &mut inner {
            KeyInner::Client { method, .. } | KeyInner::Server { method, .. } => {
                *method = Method::Invite
            }
            KeyInner::ServerLegacy(legacy) => legacy.method = Method::Invite,
        }
        Some(TransactionKey(Arc::new(inner)))
    }
}

impl fmt::Debug for TransactionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TransactionKey({self})")
    }
}

impl fmt::Display for TransactionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.0 {
            KeyInner::Client { branch, method } => write!(f, "client {method} {branch}"),
            KeyInner::Server {
                branch,
                sent_by,
                method,
            } => write!(f, "server {method} {branch} {sent_by}"),
            KeyInner::ServerLegacy(legacy) => write!(
                f,
                "server(2543) {} {} {}",
                legacy.method, legacy.call_id, legacy.cseq
            ),
        }
    }
}

/// ACK belongs to the INVITE transaction (RFC 3261 §17.1.3, §17.2.3).
pub(crate) fn match_method(method: &Method) -> Method {
    if *method == Method::Ack {
        Method::Invite
    } else {
        method.clone()
    }
}

/// Draws a fresh RFC 3261 branch: the magic cookie followed by 96 random bits in hex
/// (§8.1.1.7: unique across space and time).
pub fn new_branch(rng: &mut dyn rand::RngCore) -> String {
    let mut buf = [0u8; 12];
    rng.fill_bytes(&mut buf);
    let mut out = String::with_capacity(MAGIC_COOKIE.len() + 24);
    out.push_str(MAGIC_COOKIE);
    for b in buf {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}
