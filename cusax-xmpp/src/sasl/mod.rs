//! SASL (RFC 6120 §6): SCRAM-SHA-1/-256 (RFC 5802, RFC 7677) with channel binding, PLAIN, EXTERNAL.
//!
//! [`SaslClient`] is a sans-IO client state machine: [`SaslClient::initial`] gives the
//! mechanism and initial response, [`SaslClient::challenge`] answers each server challenge and
//! [`SaslClient::success`] verifies the server's final message (for SCRAM, the server
//! signature `v=`, RFC 5802 §3: this is what authenticates the *server*).
//!
//! Channel binding (RFC 5802 §6, RFC 5056): the `-PLUS` variants bind to the TLS channel with
//! `tls-exporter` (RFC 9266, TLS 1.3) or `tls-server-end-point` (RFC 5929 §4). When the client
//! could bind but the server offers no `-PLUS` mechanism, the GS2 flag `y` is sent so a server
//! that does support binding detects a downgrade (RFC 5802 §6).
//!
//! # SASLprep
//! [`saslprep`] implements the common subset of RFC 4013: ASCII passes through unchanged;
//! non-ASCII spaces map to U+0020 and "commonly mapped to nothing" characters (RFC 3454 B.1)
//! are removed; prohibited characters (RFC 3454 C.1.2–C.9: controls, private use,
//! non-characters, surrogates, change-display and tagging characters) are refused.
//! NFKC normalisation and the bidirectional check are **not** performed: non-ASCII
//! strings are used as given after mapping, which matches servers for already-normalised input.

mod endpoint;

pub use endpoint::{EndPointError, EndPointHash, end_point_hash, tls_server_end_point};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// A SASL mechanism this client implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mechanism {
    /// SCRAM-SHA-256 with channel binding (RFC 7677).
    ScramSha256Plus,
    /// SCRAM-SHA-1 with channel binding (RFC 5802).
    ScramSha1Plus,
    /// SCRAM-SHA-256 (RFC 7677).
    ScramSha256,
    /// SCRAM-SHA-1 (RFC 5802).
    ScramSha1,
    /// EXTERNAL (RFC 4422 Appendix A): authentication by the TLS client certificate.
    External,
    /// PLAIN (RFC 4616); only ever used over an encrypted stream.
    Plain,
}

impl Mechanism {
    /// Strongest first; the default preference order (EXTERNAL is opt-in: it needs a
    /// client certificate).
    pub const DEFAULT_ORDER: [Mechanism; 5] = [
        Mechanism::ScramSha256Plus,
        Mechanism::ScramSha1Plus,
        Mechanism::ScramSha256,
        Mechanism::ScramSha1,
        Mechanism::Plain,
    ];

    /// The IANA-registered name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::ScramSha256Plus => "SCRAM-SHA-256-PLUS",
            Mechanism::ScramSha1Plus => "SCRAM-SHA-1-PLUS",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::External => "EXTERNAL",
            Mechanism::Plain => "PLAIN",
        }
    }

    /// Parses a registered name.
    pub fn from_name(s: &str) -> Option<Self> {
        [
            Mechanism::ScramSha256Plus,
            Mechanism::ScramSha1Plus,
            Mechanism::ScramSha256,
            Mechanism::ScramSha1,
            Mechanism::External,
            Mechanism::Plain,
        ]
        .into_iter()
        .find(|m| m.name() == s)
    }

    /// Whether this is a `-PLUS` (channel-binding) variant.
    pub fn is_plus(self) -> bool {
        matches!(self, Mechanism::ScramSha256Plus | Mechanism::ScramSha1Plus)
    }

    fn hash(self) -> Option<Hash> {
        match self {
            Mechanism::ScramSha256Plus | Mechanism::ScramSha256 => Some(Hash::Sha256),
            Mechanism::ScramSha1Plus | Mechanism::ScramSha1 => Some(Hash::Sha1),
            _ => None,
        }
    }
}

impl std::fmt::Display for Mechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Channel-binding data from the TLS layer (RFC 5056).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ChannelBinding {
    /// No binding available (or not wanted).
    #[default]
    None,
    /// `tls-exporter` (RFC 9266): 32 bytes of `EXPORTER-Channel-Binding`, TLS 1.3.
    TlsExporter(Vec<u8>),
    /// `tls-server-end-point` (RFC 5929 §4.1): hash of the server certificate.
    TlsServerEndPoint(Vec<u8>),
}

impl ChannelBinding {
    /// The channel-binding type name (`tls-exporter`, `tls-server-end-point`).
    pub fn type_name(&self) -> Option<&'static str> {
        match self {
            ChannelBinding::None => None,
            ChannelBinding::TlsExporter(_) => Some("tls-exporter"),
            ChannelBinding::TlsServerEndPoint(_) => Some("tls-server-end-point"),
        }
    }

    fn data(&self) -> &[u8] {
        match self {
            ChannelBinding::None => &[],
            ChannelBinding::TlsExporter(d) | ChannelBinding::TlsServerEndPoint(d) => d,
        }
    }
}

/// SASL failed on the client side. Server-side refusals (`<failure/>`) are not errors
/// here; the session reports them as `AuthFailed`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SaslError {
    /// Configuration: PLAIN would send the password over an unencrypted stream (RFC 6120 §13.8).
    #[error("refusing PLAIN over an unencrypted stream")]
    PlainWithoutEncryption,
    /// Peer incompatible: no mechanism in common.
    #[error("no SASL mechanism in common (server offers {offered:?})")]
    NoCommonMechanism {
        /// What the server offered.
        offered: Vec<String>,
    },
    /// Configuration: a -PLUS mechanism without channel-binding data.
    #[error("{0} needs channel-binding data from the TLS layer")]
    NoChannelBinding(Mechanism),
    /// Configuration: the username or password contains a character SASLprep prohibits.
    #[error("credentials contain a character SASLprep (RFC 4013) prohibits: U+{0:04X}")]
    Prohibited(u32),
    /// Configuration: empty username or password after SASLprep.
    #[error("empty username or password")]
    Empty,
    /// Peer misbehaved: a malformed or out-of-order server message.
    #[error("server sent a malformed SASL message: {0}")]
    Malformed(&'static str),
    /// Peer misbehaved: the server nonce does not extend ours (RFC 5802 §5.1).
    #[error("server nonce does not start with the client nonce")]
    NonceMismatch,
    /// Peer misbehaved: iteration count out of the accepted range.
    #[error("server asked for {0} PBKDF2 iterations (accepted: 1..=1000000)")]
    IterationCount(u32),
    /// Peer misbehaved or impostor: the server signature is wrong (RFC 5802 §3).
    #[error("server signature does not verify: the server does not know the password")]
    ServerSignature,
    /// The server reported an error in its final message (`e=`, RFC 5802 §7).
    #[error("server reported a SCRAM error: {0}")]
    ServerError(String),
}

/// Credentials for authentication.
#[derive(Clone)]
pub struct Credentials {
    /// The authentication identity (the JID's localpart for XMPP).
    pub username: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Picks the first mechanism of `preference` the server `offered` that can be used:
/// PLAIN only when `encrypted`, -PLUS only with channel-binding data.
pub fn choose(
    offered: &[String],
    preference: &[Mechanism],
    encrypted: bool,
    cb: &ChannelBinding,
) -> Result<Mechanism, SaslError> {
    preference
        .iter()
        .copied()
        .find(|m| {
            offered.iter().any(|o| o == m.name())
                && (*m != Mechanism::Plain || encrypted)
                && (!m.is_plus() || *cb != ChannelBinding::None)
        })
        .ok_or_else(|| SaslError::NoCommonMechanism {
            offered: offered.to_vec(),
        })
}

#[derive(Clone, Copy, Debug)]
enum Hash {
    Sha1,
    Sha256,
}

impl Hash {
    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => hmac_with::<Hmac<Sha1>>(key, data),
            Hash::Sha256 => hmac_with::<Hmac<Sha256>>(key, data),
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => Sha1::digest(data).to_vec(),
            Hash::Sha256 => Sha256::digest(data).to_vec(),
        }
    }

    fn hi(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Hash::Sha1 => {
                let mut out = [0u8; 20];
                pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, iterations, &mut out);
                out.to_vec()
            }
            Hash::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }
}

#[derive(Debug)]
enum ScramState {
    Initial,
    SentFirst,
    SentFinal { server_signature: Vec<u8> },
    Done,
}

#[derive(Debug)]
enum State {
    Scram {
        hash: Hash,
        gs2_header: String,
        client_first_bare: String,
        nonce: String,
        state: ScramState,
    },
    Simple {
        initial: Vec<u8>,
        sent: bool,
    },
}

/// A SASL client exchange for one mechanism. See the [module docs](self).
#[derive(Debug)]
pub struct SaslClient {
    mechanism: Mechanism,
    password: String,
    cb: ChannelBinding,
    state: State,
}

/// Highest PBKDF2 iteration count accepted from a server (bounds CPU spent per login).
pub const MAX_ITERATIONS: u32 = 1_000_000;

impl SaslClient {
    /// Prepares an exchange. `server_offers_plus` says whether the server advertised any
    /// `-PLUS` mechanism (for the GS2 `y` flag); pass [`ChannelBinding::None`] when the
    /// client does not want binding at all. The client nonce is 24 random bytes from `rng`.
    pub fn new(
        mechanism: Mechanism,
        creds: &Credentials,
        cb: ChannelBinding,
        server_offers_plus: bool,
        encrypted: bool,
        rng: &mut dyn RngCore,
    ) -> Result<Self, SaslError> {
        let mut raw = [0u8; 24];
        rng.fill_bytes(&mut raw);
        Self::with_nonce(
            mechanism,
            creds,
            cb,
            server_offers_plus,
            encrypted,
            &B64.encode(raw),
        )
    }

    /// Like [`new`](Self::new) with a fixed client nonce (for test vectors).
    pub fn with_nonce(
        mechanism: Mechanism,
        creds: &Credentials,
        cb: ChannelBinding,
        server_offers_plus: bool,
        encrypted: bool,
        nonce: &str,
    ) -> Result<Self, SaslError> {
        let (state, password) = match mechanism {
            Mechanism::Plain => {
                if !encrypted {
                    return Err(SaslError::PlainWithoutEncryption);
                }
                let user = saslprep(&creds.username)?;
                let pass = saslprep(&creds.password)?;
                let mut initial = Vec::with_capacity(user.len() + pass.len() + 2);
                initial.push(0);
                initial.extend_from_slice(user.as_bytes());
                initial.push(0);
                initial.extend_from_slice(pass.as_bytes());
                (
                    State::Simple {
                        initial,
                        sent: false,
                    },
                    String::new(),
                )
            }
            Mechanism::External => (
                State::Simple {
                    initial: Vec::new(),
                    sent: false,
                },
                String::new(),
            ),
            m => {
                let hash = m.hash().ok_or(SaslError::Malformed("not SCRAM"))?;
                let gs2_header = if m.is_plus() {
                    let name = cb.type_name().ok_or(SaslError::NoChannelBinding(m))?;
                    format!("p={name},,")
                } else if cb != ChannelBinding::None && !server_offers_plus {
                    "y,,".to_owned()
                } else {
                    "n,,".to_owned()
                };
                let user = saslprep(&creds.username)?
                    .replace('=', "=3D")
                    .replace(',', "=2C");
                let pass = saslprep(&creds.password)?;
                let client_first_bare = format!("n={user},r={nonce}");
                (
                    State::Scram {
                        hash,
                        gs2_header,
                        client_first_bare,
                        nonce: nonce.to_owned(),
                        state: ScramState::Initial,
                    },
                    pass,
                )
            }
        };
        Ok(SaslClient {
            mechanism,
            password,
            cb,
            state,
        })
    }

    /// The mechanism of this exchange.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The channel-binding type used, if the mechanism is a -PLUS one.
    pub fn channel_binding(&self) -> Option<&'static str> {
        if self.mechanism.is_plus() {
            self.cb.type_name()
        } else {
            None
        }
    }

    /// The mechanism and the initial response (RFC 6120 §6.4.2).
    pub fn initial(&mut self) -> Result<(Mechanism, Vec<u8>), SaslError> {
        match &mut self.state {
            State::Simple { initial, sent } => {
                *sent = true;
                Ok((self.mechanism, initial.clone()))
            }
            State::Scram {
                gs2_header,
                client_first_bare,
                state,
                ..
            } => {
                if !matches!(state, ScramState::Initial) {
                    return Err(SaslError::Malformed("initial response requested twice"));
                }
                *state = ScramState::SentFirst;
                Ok((
                    self.mechanism,
                    format!("{gs2_header}{client_first_bare}").into_bytes(),
                ))
            }
        }
    }

    /// Answers a server challenge (RFC 6120 §6.4.3).
    pub fn challenge(&mut self, data: &[u8]) -> Result<Vec<u8>, SaslError> {
        let State::Scram {
            hash,
            gs2_header,
            client_first_bare,
            nonce,
            state,
        } = &mut self.state
        else {
            // PLAIN and EXTERNAL have no challenges; an empty one gets an empty answer.
            return if data.is_empty() {
                Ok(Vec::new())
            } else {
                Err(SaslError::Malformed("unexpected challenge"))
            };
        };
        if !matches!(state, ScramState::SentFirst) {
            return Err(SaslError::Malformed("unexpected challenge"));
        }
        let server_first =
            std::str::from_utf8(data).map_err(|_| SaslError::Malformed("not UTF-8"))?;
        let mut r = None;
        let mut s = None;
        let mut i = None;
        for (n, part) in server_first.split(',').enumerate() {
            match part.split_at_checked(2) {
                Some(("m=", _)) if n == 0 => {
                    return Err(SaslError::Malformed("mandatory extension"));
                }
                Some(("r=", v)) => r = Some(v),
                Some(("s=", v)) => s = Some(v),
                Some(("i=", v)) => i = Some(v),
                _ => {}
            }
        }
        let (Some(r), Some(s), Some(i)) = (r, s, i) else {
            return Err(SaslError::Malformed("server-first-message lacks r, s or i"));
        };
        if !r.starts_with(nonce.as_str()) || r.len() == nonce.len() {
            return Err(SaslError::NonceMismatch);
        }
        if !r.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',') {
            return Err(SaslError::Malformed("bad nonce characters"));
        }
        let salt = B64
            .decode(s)
            .map_err(|_| SaslError::Malformed("salt is not base64"))?;
        let iterations: u32 = i
            .parse()
            .map_err(|_| SaslError::Malformed("iteration count is not a number"))?;
        if iterations == 0 || iterations > MAX_ITERATIONS {
            return Err(SaslError::IterationCount(iterations));
        }
        let mut cbind_input = gs2_header.as_bytes().to_vec();
        if self.mechanism.is_plus() {
            cbind_input.extend_from_slice(self.cb.data());
        }
        let without_proof = format!("c={},r={r}", B64.encode(&cbind_input));
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let salted = hash.hi(self.password.as_bytes(), &salt, iterations);
        let client_key = hash.hmac(&salted, b"Client Key");
        let stored_key = hash.digest(&client_key);
        let client_signature = hash.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = hash.hmac(&salted, b"Server Key");
        let server_signature = hash.hmac(&server_key, auth_message.as_bytes());
        *state = ScramState::SentFinal { server_signature };
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server's `<success/>` data (RFC 6120 §6.4.6). For SCRAM the server
    /// signature must verify; otherwise the server is not the one that knows our password.
    pub fn success(&mut self, data: &[u8]) -> Result<(), SaslError> {
        match &mut self.state {
            State::Simple { sent, .. } => {
                if *sent {
                    Ok(())
                } else {
                    Err(SaslError::Malformed("success before the initial response"))
                }
            }
            State::Scram { state, .. } => {
                let ScramState::SentFinal { server_signature } = state else {
                    return Err(SaslError::Malformed(
                        "success before the SCRAM exchange ended",
                    ));
                };
                let msg =
                    std::str::from_utf8(data).map_err(|_| SaslError::Malformed("not UTF-8"))?;
                let mut verifier = None;
                for part in msg.split(',') {
                    if let Some(v) = part.strip_prefix("v=") {
                        verifier = Some(v);
                    } else if let Some(e) = part.strip_prefix("e=") {
                        return Err(SaslError::ServerError(e.to_owned()));
                    }
                }
                let v = verifier.ok_or(SaslError::Malformed("server-final lacks v="))?;
                let got = B64
                    .decode(v)
                    .map_err(|_| SaslError::Malformed("verifier is not base64"))?;
                if !constant_time_eq(&got, server_signature) {
                    return Err(SaslError::ServerSignature);
                }
                *state = ScramState::Done;
                Ok(())
            }
        }
    }
}

/// HMAC accepts keys of any length, so `new_from_slice` cannot fail; should it ever, the
/// empty result makes every comparison fail (never a false success).
fn hmac_with<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
    match <M as hmac::digest::KeyInit>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// SASLprep (RFC 4013), common subset: see the [module docs](self).
pub fn saslprep(s: &str) -> Result<String, SaslError> {
    if s.is_empty() {
        return Err(SaslError::Empty);
    }
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Ok(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let u = c as u32;
        // RFC 3454 B.1: commonly mapped to nothing.
        if matches!(
            u,
            0x00AD | 0x034F | 0x1806 | 0x180B..=0x180D | 0x200B..=0x200D | 0x2060 | 0xFE00..=0xFE0F | 0xFEFF
        ) {
            continue;
        }
        // RFC 3454 C.1.2: non-ASCII space characters map to SPACE.
        if matches!(
            u,
            0x00A0 | 0x1680 | 0x2000..=0x200A | 0x202F | 0x205F | 0x3000
        ) {
            out.push(' ');
            continue;
        }
        let prohibited = matches!(u,
            // C.2.1 / C.2.2 control characters
            0x0000..=0x001F | 0x007F | 0x0080..=0x009F | 0x06DD | 0x070F | 0x180E
            | 0x2028 | 0x2029 | 0x2061..=0x2063 | 0xFFF9..=0xFFFC | 0x1D173..=0x1D17A
            // C.3 private use
            | 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD
            // C.4 non-characters
            | 0xFDD0..=0xFDEF
            // C.6 inappropriate for plain text, C.7 ideographic description
            | 0xFFFD | 0x2FF0..=0x2FFB
            // C.8 change display properties / deprecated
            | 0x0340 | 0x0341 | 0x200E | 0x200F | 0x202A..=0x202E | 0x206A..=0x206F
            // C.9 tagging
            | 0xE0001 | 0xE0020..=0xE007F
        ) || (u & 0xFFFE) == 0xFFFE;
        if prohibited {
            return Err(SaslError::Prohibited(u));
        }
        out.push(c);
    }
    if out.is_empty() {
        return Err(SaslError::Empty);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials {
            username: "user".into(),
            password: "pencil".into(),
        }
    }

    /// RFC 5802 §5 example exchange.
    #[test]
    fn rfc5802_scram_sha1_vector() {
        let mut c = SaslClient::with_nonce(
            Mechanism::ScramSha1,
            &creds(),
            ChannelBinding::None,
            false,
            true,
            "fyko+d2lbbFgONRv9qkxdawL",
        )
        .unwrap();
        let (m, first) = c.initial().unwrap();
        assert_eq!(m, Mechanism::ScramSha1);
        assert_eq!(first, b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
        let fin = c
            .challenge(b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
            .unwrap();
        assert_eq!(
            String::from_utf8(fin).unwrap(),
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
        );
        c.success(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=").unwrap();
    }

    /// RFC 7677 §3 example exchange.
    #[test]
    fn rfc7677_scram_sha256_vector() {
        let mut c = SaslClient::with_nonce(
            Mechanism::ScramSha256,
            &creds(),
            ChannelBinding::None,
            false,
            true,
            "rOprNGfwEbeRWgbNEkqO",
        )
        .unwrap();
        let (_, first) = c.initial().unwrap();
        assert_eq!(first, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let fin = c
            .challenge(
                b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            )
            .unwrap();
        assert_eq!(
            String::from_utf8(fin).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        c.success(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
    }

    #[test]
    fn wrong_server_signature_and_nonce() {
        let mk = || {
            let mut c = SaslClient::with_nonce(
                Mechanism::ScramSha1,
                &creds(),
                ChannelBinding::None,
                false,
                true,
                "fyko+d2lbbFgONRv9qkxdawL",
            )
            .unwrap();
            c.initial().unwrap();
            c
        };
        let mut c = mk();
        c.challenge(b"r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=4096")
            .unwrap();
        assert_eq!(
            c.success(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=").unwrap_err(),
            SaslError::ServerSignature
        );
        let mut c = mk();
        assert_eq!(
            c.challenge(b"r=other,s=QSXCR+Q6sek8bf92,i=4096")
                .unwrap_err(),
            SaslError::NonceMismatch
        );
        let mut c = mk();
        assert_eq!(
            c.challenge(b"r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92,i=99999999")
                .unwrap_err(),
            SaslError::IterationCount(99_999_999)
        );
        let mut c = mk();
        assert!(matches!(
            c.challenge(b"garbage").unwrap_err(),
            SaslError::Malformed(_)
        ));
        let mut c = mk();
        assert!(c.success(b"v=x").is_err(), "success before challenge");
    }

    #[test]
    fn channel_binding_headers() {
        let cb = ChannelBinding::TlsExporter(vec![1, 2, 3]);
        let mut c = SaslClient::with_nonce(
            Mechanism::ScramSha256Plus,
            &creds(),
            cb.clone(),
            true,
            true,
            "abc",
        )
        .unwrap();
        assert_eq!(c.initial().unwrap().1, b"p=tls-exporter,,n=user,r=abc");
        let fin = c.challenge(b"r=abcdef,s=QSXCR+Q6sek8bf92,i=1").unwrap();
        let fin = String::from_utf8(fin).unwrap();
        let expected_c = B64.encode(b"p=tls-exporter,,\x01\x02\x03");
        assert!(fin.starts_with(&format!("c={expected_c},")), "{fin}");
        assert_eq!(c.channel_binding(), Some("tls-exporter"));
        // Binding possible but the server offers no -PLUS: flag y (RFC 5802 §6).
        let mut c =
            SaslClient::with_nonce(Mechanism::ScramSha1, &creds(), cb, false, true, "abc").unwrap();
        assert_eq!(c.initial().unwrap().1, b"y,,n=user,r=abc");
        assert_eq!(
            SaslClient::with_nonce(
                Mechanism::ScramSha1Plus,
                &creds(),
                ChannelBinding::None,
                true,
                true,
                "abc"
            )
            .unwrap_err(),
            SaslError::NoChannelBinding(Mechanism::ScramSha1Plus)
        );
    }

    #[test]
    fn plain_needs_encryption_and_choice() {
        let err = SaslClient::with_nonce(
            Mechanism::Plain,
            &creds(),
            ChannelBinding::None,
            false,
            false,
            "x",
        )
        .unwrap_err();
        assert_eq!(err, SaslError::PlainWithoutEncryption);
        let mut c = SaslClient::with_nonce(
            Mechanism::Plain,
            &creds(),
            ChannelBinding::None,
            false,
            true,
            "x",
        )
        .unwrap();
        assert_eq!(c.initial().unwrap().1, b"\0user\0pencil");
        let offered: Vec<String> = ["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-1-PLUS"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let order = Mechanism::DEFAULT_ORDER;
        assert_eq!(
            choose(&offered, &order, true, &ChannelBinding::None).unwrap(),
            Mechanism::ScramSha1
        );
        assert_eq!(
            choose(
                &offered,
                &order,
                true,
                &ChannelBinding::TlsServerEndPoint(vec![0])
            )
            .unwrap(),
            Mechanism::ScramSha1Plus
        );
        let only_plain = vec!["PLAIN".to_string()];
        assert!(matches!(
            choose(&only_plain, &order, false, &ChannelBinding::None),
            Err(SaslError::NoCommonMechanism { .. })
        ));
        assert_eq!(
            choose(&only_plain, &order, true, &ChannelBinding::None).unwrap(),
            Mechanism::Plain
        );
    }

    #[test]
    fn saslprep_subset() {
        assert_eq!(saslprep("user").unwrap(), "user");
        assert_eq!(saslprep("I\u{00AD}X").unwrap(), "IX");
        assert_eq!(saslprep("a\u{00A0}b").unwrap(), "a b");
        assert_eq!(saslprep("\u{0007}").unwrap_err(), SaslError::Prohibited(7));
        assert_eq!(
            saslprep("a\u{E000}").unwrap_err(),
            SaslError::Prohibited(0xE000)
        );
        assert_eq!(saslprep("").unwrap_err(), SaslError::Empty);
        assert_eq!(saslprep("\u{00AD}").unwrap_err(), SaslError::Empty);
        assert_eq!(saslprep("ünï").unwrap(), "ünï");
        // Username escaping in SCRAM (RFC 5802 §5.1).
        let mut c = SaslClient::with_nonce(
            Mechanism::ScramSha1,
            &Credentials {
                username: "a,b=c".into(),
                password: "p".into(),
            },
            ChannelBinding::None,
            false,
            true,
            "n",
        )
        .unwrap();
        assert_eq!(c.initial().unwrap().1, b"n,,n=a=2Cb=3Dc,r=n");
    }
}
