//! HTTP Digest access authentication for SIP (RFC 3261 §22.4, RFC 7616, RFC 8760).
//!
//! Pure functions: no clock, no randomness of their own. The client nonce (`cnonce`) is
//! an argument, or drawn from an injected [`rand::RngCore`] by [`DigestSession`].
//!
//! Supported algorithms (RFC 7616 §3.4.1, RFC 8760 §2): `MD5`, `MD5-sess`, `SHA-256`,
//! `SHA-256-sess`, `SHA-512-256`, `SHA-512-256-sess`. Quality of protection: `auth`,
//! `auth-int` and the RFC 2069 compatible form without `qop`. `userhash` is not
//! supported (a challenge asking for it is answered with the plain username, which
//! RFC 7616 §3.4.4 allows servers to refuse).
//!
//! ```text
//! A1       = username ":" realm ":" password                   (non -sess)
//! A1       = H(username ":" realm ":" password) ":" nonce ":" cnonce   (-sess)
//! A2       = method ":" uri                                      (auth, no qop)
//! A2       = method ":" uri ":" H(body)                          (auth-int)
//! response = KD(H(A1), nonce ":" nc ":" cnonce ":" qop ":" H(A2))  (qop present)
//! response = KD(H(A1), nonce ":" H(A2))                          (RFC 2069 form)
//! KD(s, d) = H(s ":" d)
//! ```

use std::collections::HashMap;
use std::fmt;

use md5::Md5;
use sha2::{Digest as _, Sha256, Sha512_256};

use crate::msg::{Challenge, Credentials};

/// A digest algorithm (RFC 7616 §3.4.1, RFC 8760 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// `MD5` (also the default when a challenge carries no `algorithm`).
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256`.
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
    /// `SHA-512-256` (SHA-512/256, FIPS 180-4).
    Sha512_256,
    /// `SHA-512-256-sess`.
    Sha512_256Sess,
}

impl Algorithm {
    /// Parses an `algorithm` token, case-insensitively (RFC 7616 §3.3: tokens are
    /// case-insensitive). Returns `None` for unknown algorithms.
    pub fn parse(token: &str) -> Option<Self> {
        const TABLE: [(&str, Algorithm); 6] = [
            ("MD5", Algorithm::Md5),
            ("MD5-sess", Algorithm::Md5Sess),
            ("SHA-256", Algorithm::Sha256),
            ("SHA-256-sess", Algorithm::Sha256Sess),
            ("SHA-512-256", Algorithm::Sha512_256),
            ("SHA-512-256-sess", Algorithm::Sha512_256Sess),
        ];
        let token = token.trim();
        TABLE
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(token))
            .map(|(_, alg)| *alg)
    }

    /// The token as printed in an `Authorization` header.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    /// Whether this is a `-sess` variant (session keys bound to the nonce and cnonce).
    pub fn is_sess(self) -> bool {
        matches!(
            self,
            Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess
        )
    }

    /// Preference rank used to choose among several challenges (RFC 7616 §3.7: the
    /// client should use the strongest algorithm it supports): SHA-512-256 > SHA-256 >
    /// MD5. A `-sess` variant ranks with its base hash.
    pub fn strength(self) -> u8 {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => 1,
            Algorithm::Sha256 | Algorithm::Sha256Sess => 2,
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => 3,
        }
    }

    /// `H(data)` as lower-case hex (RFC 7616 §3.4.1).
    pub fn hash_hex(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex(&Md5::digest(data)),
            Algorithm::Sha256 | Algorithm::Sha256Sess => hex(&Sha256::digest(data)),
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => hex(&Sha512_256::digest(data)),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Quality of protection chosen for a response (RFC 7616 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Qop {
    /// `auth`: authentication of the method and the request URI.
    Auth,
    /// `auth-int`: also covers the message body.
    AuthInt,
}

impl Qop {
    /// The token as printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }
}

/// What the user knows: a username and a password.
#[derive(Clone, PartialEq, Eq)]
pub struct DigestCredentials {
    /// The authentication username (often the user part of the AOR).
    pub username: String,
    /// The password (never printed by `Debug`).
    pub password: String,
}

impl DigestCredentials {
    /// Builds credentials from a username and a password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for DigestCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Why a challenge could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    /// The challenge uses another scheme than `Digest` (peer incompatible).
    #[error("authentication scheme {0:?} is not supported (only Digest)")]
    UnsupportedScheme(String),
    /// The challenge names an algorithm we do not implement (peer incompatible).
    #[error("digest algorithm {0:?} is not supported")]
    UnsupportedAlgorithm(String),
    /// The challenge offers only `qop` values we do not implement (peer incompatible).
    #[error("digest qop {0:?} is not supported")]
    UnsupportedQop(String),
    /// A mandatory challenge parameter is absent (peer sent a malformed challenge).
    #[error("digest challenge lacks the {0} parameter")]
    MissingParameter(&'static str),
    /// No challenge was given, or none of them was usable (peer incompatible).
    #[error("no usable digest challenge (last problem: {0})")]
    NoUsableChallenge(Box<DigestError>),
    /// The empty list: nothing to answer (API misuse).
    #[error("no challenge given")]
    NoChallenge,
    /// The server challenged again with the nonce we already answered and without
    /// `stale=true`: the username or password is wrong (RFC 7616 §3.3).
    #[error("credentials for realm {realm:?} were rejected")]
    CredentialsRejected {
        /// The realm whose credentials failed.
        realm: String,
    },
}

/// The parameters of one digest challenge, extracted and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestChallenge {
    /// `realm` (mandatory).
    pub realm: String,
    /// `nonce` (mandatory).
    pub nonce: String,
    /// `opaque`, echoed back unchanged.
    pub opaque: Option<String>,
    /// `algorithm` (MD5 when absent, RFC 7616 §3.3).
    pub algorithm: Algorithm,
    /// The `qop` we will use (`None` = RFC 2069 form, when the challenge has no `qop`).
    pub qop: Option<Qop>,
    /// `stale=true`: the nonce expired but the credentials were right.
    pub stale: bool,
}

impl DigestChallenge {
    /// Validates a parsed `WWW-Authenticate` / `Proxy-Authenticate` challenge.
    ///
    /// `have_body` tells whether the request body is available, which makes `auth-int`
    /// usable when it is the only `qop` offered. `auth` is preferred when both are.
    pub fn from_challenge(challenge: &Challenge, have_body: bool) -> Result<Self, DigestError> {
        if !challenge.is_digest() {
            return Err(DigestError::UnsupportedScheme(challenge.scheme.to_string()));
        }
        let algorithm = match challenge.algorithm() {
            None => Algorithm::Md5,
            Some(a) => {
                Algorithm::parse(a).ok_or_else(|| DigestError::UnsupportedAlgorithm(a.into()))?
            }
        };
        let realm = challenge
            .realm()
            .ok_or(DigestError::MissingParameter("realm"))?
            .to_string();
        let nonce = challenge
            .nonce()
            .ok_or(DigestError::MissingParameter("nonce"))?
            .to_string();
        let offer = challenge.qop();
        let qop = if offer.is_empty() {
            None
        } else {
            Some(choose_qop(&offer, have_body)?)
        };
        Ok(Self {
            realm,
            nonce,
            opaque: challenge.opaque().map(str::to_string),
            algorithm,
            qop,
            stale: challenge.stale(),
        })
    }
}

/// Chooses `auth` from a `qop` offer such as `["auth", "auth-int"]`; `auth-int` only
/// when it is the only option offered and the body is known (RFC 7616 §3.3).
pub fn choose_qop<S: AsRef<str>>(offer: &[S], have_body: bool) -> Result<Qop, DigestError> {
    let mut int = false;
    for token in offer.iter().map(|t| t.as_ref().trim()) {
        if token.eq_ignore_ascii_case("auth") {
            return Ok(Qop::Auth);
        }
        if token.eq_ignore_ascii_case("auth-int") {
            int = true;
        }
    }
    if int && have_body {
        Ok(Qop::AuthInt)
    } else {
        let joined: Vec<&str> = offer.iter().map(AsRef::as_ref).collect();
        Err(DigestError::UnsupportedQop(joined.join(",")))
    }
}

/// All inputs of one response computation (RFC 7616 §3.4.1 – §3.4.3).
#[derive(Debug, Clone, Copy)]
pub struct ResponseInput<'a> {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// `username`.
    pub username: &'a str,
    /// `realm`.
    pub realm: &'a str,
    /// The password.
    pub password: &'a str,
    /// The server nonce.
    pub nonce: &'a str,
    /// The client nonce (ignored without `qop` unless the algorithm is `-sess`).
    pub cnonce: &'a str,
    /// The nonce count.
    pub nc: u32,
    /// The quality of protection (`None` = RFC 2069 form).
    pub qop: Option<Qop>,
    /// The request method, e.g. `REGISTER`.
    pub method: &'a str,
    /// The `uri` parameter (the Request-URI as sent).
    pub uri: &'a str,
    /// The message body (used by `auth-int` only).
    pub body: &'a [u8],
}

/// Computes the `response` value (lower-case hex) per RFC 7616 §3.4.1.
pub fn compute_response(input: &ResponseInput<'_>) -> String {
    let alg = input.algorithm;
    let h = |s: &str| alg.hash_hex(s.as_bytes());
    let mut ha1 = h(&format!(
        "{}:{}:{}",
        input.username, input.realm, input.password
    ));
    if alg.is_sess() {
        ha1 = h(&format!("{ha1}:{}:{}", input.nonce, input.cnonce));
    }
    let ha2 = match input.qop {
        Some(Qop::AuthInt) => h(&format!(
            "{}:{}:{}",
            input.method,
            input.uri,
            alg.hash_hex(input.body)
        )),
        _ => h(&format!("{}:{}", input.method, input.uri)),
    };
    match input.qop {
        Some(qop) => h(&format!(
            "{ha1}:{}:{:08x}:{}:{}:{ha2}",
            input.nonce,
            input.nc,
            input.cnonce,
            qop.as_str()
        )),
        None => h(&format!("{ha1}:{}:{ha2}", input.nonce)),
    }
}

/// Answers one digest challenge: builds the `Authorization` / `Proxy-Authorization`
/// value (RFC 3261 §22.4, RFC 7616 §3.4).
///
/// `uri` is the Request-URI as it will be sent, `body` the request body (used by
/// `auth-int`), `cnonce` a fresh client nonce and `nc` the nonce count (1 for the first
/// use of a server nonce). The result echoes `algorithm` and `opaque` from the
/// challenge; `qop`, `nc` and `cnonce` are included only when the challenge had a `qop`
/// (or when a `-sess` algorithm needs the cnonce).
pub fn answer(
    challenge: &Challenge,
    creds: &DigestCredentials,
    method: &str,
    uri: &str,
    body: &[u8],
    cnonce: &str,
    nc: u32,
) -> Result<Credentials, DigestError> {
    let ch = DigestChallenge::from_challenge(challenge, true)?;
    Ok(answer_parsed(&ch, creds, method, uri, body, cnonce, nc))
}

/// [`answer`] for an already validated challenge.
pub fn answer_parsed(
    ch: &DigestChallenge,
    creds: &DigestCredentials,
    method: &str,
    uri: &str,
    body: &[u8],
    cnonce: &str,
    nc: u32,
) -> Credentials {
    let response = compute_response(&ResponseInput {
        algorithm: ch.algorithm,
        username: &creds.username,
        realm: &ch.realm,
        password: &creds.password,
        nonce: &ch.nonce,
        cnonce,
        nc,
        qop: ch.qop,
        method,
        uri,
        body,
    });
    let mut params: Vec<(String, String)> = vec![
        ("username".into(), creds.username.clone()),
        ("realm".into(), ch.realm.clone()),
        ("nonce".into(), ch.nonce.clone()),
        ("uri".into(), uri.to_string()),
        ("response".into(), response),
        ("algorithm".into(), ch.algorithm.as_str().to_string()),
    ];
    if let Some(opaque) = &ch.opaque {
        params.push(("opaque".into(), opaque.clone()));
    }
    if let Some(qop) = ch.qop {
        params.push(("qop".into(), qop.as_str().to_string()));
        params.push(("nc".into(), format!("{nc:08x}")));
        params.push(("cnonce".into(), cnonce.to_string()));
    } else if ch.algorithm.is_sess() {
        params.push(("cnonce".into(), cnonce.to_string()));
    }
    // Quoting (RFC 7616 §3.4) is applied by `Credentials`'s `Display`.
    Credentials {
        scheme: "Digest".to_string(),
        params,
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Chooses the strongest usable challenge (RFC 7616 §3.7, RFC 8760 §2.4): SHA-512-256 >
/// SHA-256 > MD5, skipping challenges we cannot answer. Ties keep the first offered.
pub fn select_challenge(
    challenges: &[Challenge],
    have_body: bool,
) -> Result<DigestChallenge, DigestError> {
    let mut best: Option<DigestChallenge> = None;
    let mut last_err = None;
    for c in challenges {
        match DigestChallenge::from_challenge(c, have_body) {
            Ok(d) => {
                if best
                    .as_ref()
                    .is_none_or(|b| d.algorithm.strength() > b.algorithm.strength())
                {
                    best = Some(d);
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "skipping unusable authentication challenge");
                last_err = Some(e);
            }
        }
    }
    match (best, last_err) {
        (Some(b), _) => Ok(b),
        (None, Some(e)) => Err(DigestError::NoUsableChallenge(Box::new(e))),
        (None, None) => Err(DigestError::NoChallenge),
    }
}

/// Client-side digest state for one account: remembers the last challenge of each realm
/// and its nonce count, so that later requests can be authorised again without a new
/// round trip (RFC 7616 §3.4: `nc` increases with each use of a nonce), and detects
/// rejected credentials.
///
/// Randomness (the `cnonce`) is injected by the caller.
#[derive(Debug, Clone)]
pub struct DigestSession {
    creds: DigestCredentials,
    /// realm → (last challenge, last nc used with its nonce).
    realms: HashMap<String, (DigestChallenge, u32)>,
}

/// Upper bound on the number of realms remembered (a hostile server cannot grow us).
const MAX_REALMS: usize = 16;

impl DigestSession {
    /// A session for these credentials.
    pub fn new(creds: DigestCredentials) -> Self {
        Self {
            creds,
            realms: HashMap::new(),
        }
    }

    /// The credentials in use.
    pub fn credentials(&self) -> &DigestCredentials {
        &self.creds
    }

    /// Answers a 401/407 response: chooses the strongest usable challenge among
    /// `challenges` (all `WWW-Authenticate` or all `Proxy-Authenticate` values) and
    /// returns the credentials to put in the retried request.
    ///
    /// Fails with [`DigestError::CredentialsRejected`] if the server challenges again
    /// with the nonce we already answered and without `stale=true`.
    pub fn respond(
        &mut self,
        challenges: &[Challenge],
        method: &str,
        uri: &str,
        body: &[u8],
        rng: &mut dyn rand::RngCore,
    ) -> Result<Credentials, DigestError> {
        let ch = select_challenge(challenges, true)?;
        self.respond_to(ch, method, uri, body, rng)
    }

    /// Like [`respond`](Self::respond), but answers one challenge per realm (RFC 3261
    /// §22.3: a forking proxy may aggregate challenges from several realms), choosing
    /// the strongest challenge within each realm.
    pub fn respond_per_realm(
        &mut self,
        challenges: &[Challenge],
        method: &str,
        uri: &str,
        body: &[u8],
        rng: &mut dyn rand::RngCore,
    ) -> Result<Vec<Credentials>, DigestError> {
        let mut per_realm: Vec<DigestChallenge> = Vec::new();
        let mut last_err = None;
        for c in challenges {
            match DigestChallenge::from_challenge(c, true) {
                Ok(d) => match per_realm.iter_mut().find(|p| p.realm == d.realm) {
                    Some(p) if d.algorithm.strength() > p.algorithm.strength() => *p = d,
                    Some(_) => {}
                    None => per_realm.push(d),
                },
                Err(e) => last_err = Some(e),
            }
        }
        if per_realm.is_empty() {
            return Err(match last_err {
                Some(e) => DigestError::NoUsableChallenge(Box::new(e)),
                None => DigestError::NoChallenge,
            });
        }
        per_realm
            .into_iter()
            .map(|ch| self.respond_to(ch, method, uri, body, rng))
            .collect()
    }

    fn respond_to(
        &mut self,
        ch: DigestChallenge,
        method: &str,
        uri: &str,
        body: &[u8],
        rng: &mut dyn rand::RngCore,
    ) -> Result<Credentials, DigestError> {
        if let Some((prev, _)) = self.realms.get(&ch.realm)
            && prev.nonce == ch.nonce
            && !ch.stale
        {
            self.realms.remove(&ch.realm);
            return Err(DigestError::CredentialsRejected { realm: ch.realm });
        }
        if self.realms.len() >= MAX_REALMS && !self.realms.contains_key(&ch.realm) {
            self.realms.clear();
        }
        let cnonce = new_cnonce(rng);
        let creds = answer_parsed(&ch, &self.creds, method, uri, body, &cnonce, 1);
        self.realms.insert(ch.realm.clone(), (ch, 1));
        Ok(creds)
    }

    /// Authorises a new request pre-emptively with the remembered challenge of `realm`
    /// (or of the only realm known when `realm` is `None`), incrementing `nc`. Returns
    /// `None` when no challenge is remembered.
    pub fn authorize(
        &mut self,
        realm: Option<&str>,
        method: &str,
        uri: &str,
        body: &[u8],
        rng: &mut dyn rand::RngCore,
    ) -> Option<Credentials> {
        let key = match realm {
            Some(r) => r.to_string(),
            None if self.realms.len() == 1 => self.realms.keys().next()?.clone(),
            None => return None,
        };
        let (ch, nc) = self.realms.get_mut(&key)?;
        *nc = nc.checked_add(1)?;
        let cnonce = new_cnonce(rng);
        Some(answer_parsed(
            ch,
            &self.creds,
            method,
            uri,
            body,
            &cnonce,
            *nc,
        ))
    }

    /// Forgets every remembered challenge (e.g. after a successful un-REGISTER).
    pub fn reset(&mut self) {
        self.realms.clear();
    }
}

/// A fresh 16-byte client nonce, hex encoded (RFC 7616 §3.4: at least 64 bits of
/// entropy recommended).
pub fn new_cnonce(rng: &mut dyn rand::RngCore) -> String {
    let mut buf = [0u8; 16];
    rng.fill_bytes(&mut buf);
    hex(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(params: &[(&str, &str)]) -> Challenge {
        Challenge {
            scheme: "Digest".into(),
            params: params
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn mufasa() -> DigestCredentials {
        DigestCredentials::new("Mufasa", "Circle of Life")
    }

    const RFC7616_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    const RFC7616_OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";

    fn rfc7616(algorithm: &str) -> Challenge {
        challenge(&[
            ("realm", "http-auth@example.org"),
            ("qop", "auth, auth-int"),
            ("algorithm", algorithm),
            ("nonce", RFC7616_NONCE),
            ("opaque", RFC7616_OPAQUE),
        ])
    }

    /// RFC 7616 §3.9.1, SHA-256 response.
    #[test]
    fn rfc7616_sha256_example() {
        let c = answer(
            &rfc7616("SHA-256"),
            &mufasa(),
            "GET",
            "/dir/index.html",
            b"",
            RFC7616_CNONCE,
            1,
        )
        .unwrap();
        assert_eq!(
            c.response(),
            Some("753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1")
        );
        assert_eq!(c.param("qop"), Some("auth"));
        assert_eq!(c.param("nc"), Some("00000001"));
        assert_eq!(c.param("algorithm"), Some("SHA-256"));
        assert_eq!(c.opaque(), Some(RFC7616_OPAQUE));
        let printed = c.to_string();
        assert!(
            printed.starts_with("Digest username=\"Mufasa\""),
            "{printed}"
        );
        assert!(
            printed.contains("qop=auth,") && printed.contains("nc=00000001"),
            "{printed}"
        );
        assert!(
            printed.contains(&format!("cnonce=\"{RFC7616_CNONCE}\"")),
            "{printed}"
        );
    }

    /// RFC 7616 §3.9.1, MD5 response.
    #[test]
    fn rfc7616_md5_example() {
        let c = answer(
            &rfc7616("MD5"),
            &mufasa(),
            "GET",
            "/dir/index.html",
            b"",
            RFC7616_CNONCE,
            1,
        )
        .unwrap();
        assert_eq!(c.response(), Some("8ca523f5e9506fed4657c9700eebdbec"));
    }

    /// RFC 2617 §3.5 (no algorithm parameter = MD5).
    #[test]
    fn rfc2617_example() {
        let ch = challenge(&[
            ("realm", "testrealm@host.com"),
            ("qop", "auth,auth-int"),
            ("nonce", "dcd98b7102dd2f0e8b11d0f600bfb0c093"),
            ("opaque", "5ccc069c403ebaf9f0171e9517f40e41"),
        ]);
        let creds = DigestCredentials::new("Mufasa", "Circle Of Life");
        let c = answer(&ch, &creds, "GET", "/dir/index.html", b"", "0a4f113b", 1).unwrap();
        assert_eq!(c.response(), Some("6629fae49393a05397450978507c4ef1"));
    }

    fn md5_hex(s: &str) -> String {
        hex(&Md5::digest(s.as_bytes()))
    }

    fn sha256_hex(s: &str) -> String {
        hex(&Sha256::digest(s.as_bytes()))
    }

    fn sha512_256_hex(s: &str) -> String {
        hex(&Sha512_256::digest(s.as_bytes()))
    }

    /// The -sess variants, computed independently from the RFC 7616 §3.4.2 formula.
    #[test]
    fn sess_variants_follow_the_formula() {
        type H = fn(&str) -> String;
        let cases: [(&str, H); 3] = [
            ("MD5-sess", md5_hex),
            ("SHA-256-sess", sha256_hex),
            ("SHA-512-256-sess", sha512_256_hex),
        ];
        for (alg, h) in cases {
            let ch = challenge(&[
                ("realm", "cusax.test"),
                ("nonce", "n0nce"),
                ("qop", "auth"),
                ("algorithm", alg),
            ]);
            let c = answer(
                &ch,
                &DigestCredentials::new("alice", "alice-secret"),
                "REGISTER",
                "sip:cusax.test",
                b"",
                "cn",
                2,
            )
            .unwrap();
            let ha1 = h(&format!("{}:n0nce:cn", h("alice:cusax.test:alice-secret")));
            let ha2 = h("REGISTER:sip:cusax.test");
            let expected = h(&format!("{ha1}:n0nce:00000002:cn:auth:{ha2}"));
            assert_eq!(c.response(), Some(expected.as_str()), "{alg}");
            assert_eq!(c.param("algorithm"), Some(alg));
        }
    }

    #[test]
    fn sha512_256_and_auth_int_and_no_qop() {
        let creds = DigestCredentials::new("bob", "bob-secret");
        // auth-int only when it is the only qop offered; H(body) enters A2.
        let ch = challenge(&[
            ("realm", "r"),
            ("nonce", "n"),
            ("qop", "auth-int"),
            ("algorithm", "SHA-512-256"),
        ]);
        let body = b"v=0\r\n";
        let c = answer(&ch, &creds, "INVITE", "sip:x@r", body, "c", 1).unwrap();
        let ha1 = sha512_256_hex("bob:r:bob-secret");
        let ha2 = sha512_256_hex(&format!("INVITE:sip:x@r:{}", sha512_256_hex("v=0\r\n")));
        let expected = sha512_256_hex(&format!("{ha1}:n:00000001:c:auth-int:{ha2}"));
        assert_eq!(c.response(), Some(expected.as_str()));
        assert_eq!(c.param("qop"), Some("auth-int"));

        // RFC 2069 form: no qop, nc or cnonce.
        let ch = challenge(&[("realm", "r"), ("nonce", "n")]);
        let c = answer(&ch, &creds, "REGISTER", "sip:r", b"", "c", 1).unwrap();
        let expected = md5_hex(&format!(
            "{}:n:{}",
            md5_hex("bob:r:bob-secret"),
            md5_hex("REGISTER:sip:r")
        ));
        assert_eq!(c.response(), Some(expected.as_str()));
        assert_eq!(c.param("qop"), None);
        assert_eq!(c.param("nc"), None);
        assert_eq!(c.param("cnonce"), None);
    }

    #[test]
    fn errors_are_typed() {
        let creds = mufasa();
        let bad_alg = challenge(&[("realm", "r"), ("nonce", "n"), ("algorithm", "SHA-1")]);
        assert_eq!(
            answer(&bad_alg, &creds, "GET", "/", b"", "c", 1),
            Err(DigestError::UnsupportedAlgorithm("SHA-1".into()))
        );
        let no_nonce = challenge(&[("realm", "r")]);
        assert_eq!(
            answer(&no_nonce, &creds, "GET", "/", b"", "c", 1),
            Err(DigestError::MissingParameter("nonce"))
        );
        let bad_qop = challenge(&[("realm", "r"), ("nonce", "n"), ("qop", "auth-conf")]);
        assert!(matches!(
            answer(&bad_qop, &creds, "GET", "/", b"", "c", 1),
            Err(DigestError::UnsupportedQop(_))
        ));
        let basic = Challenge {
            scheme: "Basic".into(),
            params: vec![("realm".into(), "r".into())],
        };
        assert!(matches!(
            answer(&basic, &creds, "GET", "/", b"", "c", 1),
            Err(DigestError::UnsupportedScheme(_))
        ));
        assert_eq!(select_challenge(&[], false), Err(DigestError::NoChallenge));
        assert!(matches!(
            select_challenge(&[bad_alg], false),
            Err(DigestError::NoUsableChallenge(_))
        ));
    }

    /// A fixed-output RNG for deterministic cnonces.
    struct Counter(u8);

    impl rand::RngCore for Counter {
        fn next_u32(&mut self) -> u32 {
            self.0 = self.0.wrapping_add(1);
            u32::from(self.0)
        }
        fn next_u64(&mut self) -> u64 {
            u64::from(self.next_u32())
        }
        fn fill_bytes(&mut self, dst: &mut [u8]) {
            self.0 = self.0.wrapping_add(1);
            dst.fill(self.0);
        }
    }

    #[test]
    fn session_picks_strongest_and_counts_nonces() {
        let mut s = DigestSession::new(DigestCredentials::new("alice", "alice-secret"));
        let mut rng = Counter(0);
        let offers = [
            challenge(&[("realm", "cusax.test"), ("nonce", "a"), ("qop", "auth")]),
            challenge(&[
                ("realm", "cusax.test"),
                ("nonce", "b"),
                ("qop", "auth"),
                ("algorithm", "SHA-512-256"),
            ]),
            challenge(&[
                ("realm", "cusax.test"),
                ("nonce", "c"),
                ("qop", "auth"),
                ("algorithm", "SHA-256"),
            ]),
            challenge(&[
                ("realm", "cusax.test"),
                ("nonce", "d"),
                ("algorithm", "FOO"),
            ]),
        ];
        let c = s
            .respond(&offers, "REGISTER", "sip:cusax.test", b"", &mut rng)
            .unwrap();
        assert_eq!(c.param("algorithm"), Some("SHA-512-256"));
        assert_eq!(c.nonce(), Some("b"));
        assert_eq!(c.param("nc"), Some("00000001"));
        let cn1 = c.param("cnonce").unwrap().to_string();
        // Pre-emptive reuse of the nonce increments nc and uses a new cnonce.
        let c2 = s
            .authorize(None, "REGISTER", "sip:cusax.test", b"", &mut rng)
            .unwrap();
        assert_eq!(c2.param("nc"), Some("00000002"));
        assert_ne!(c2.param("cnonce").unwrap(), cn1);
        let again = [offers[1].clone()];
        // Same nonce challenged again without stale: wrong password.
        assert_eq!(
            s.respond(&again, "REGISTER", "sip:cusax.test", b"", &mut rng),
            Err(DigestError::CredentialsRejected {
                realm: "cusax.test".into()
            })
        );
        // stale=true with a new nonce is a plain retry, nc restarts at 1.
        let stale = [challenge(&[
            ("realm", "cusax.test"),
            ("nonce", "e"),
            ("qop", "auth"),
            ("stale", "true"),
        ])];
        let c3 = s
            .respond(&stale, "REGISTER", "sip:cusax.test", b"", &mut rng)
            .unwrap();
        assert_eq!(c3.param("nc"), Some("00000001"));
        assert_eq!(c3.param("algorithm"), Some("MD5"));
    }

    #[test]
    fn session_answers_each_realm() {
        let mut s = DigestSession::new(mufasa());
        let mut rng = Counter(7);
        let offers = [
            challenge(&[("realm", "a.test"), ("nonce", "1")]),
            challenge(&[
                ("realm", "b.test"),
                ("nonce", "2"),
                ("algorithm", "SHA-256"),
            ]),
            challenge(&[
                ("realm", "a.test"),
                ("nonce", "3"),
                ("algorithm", "SHA-256"),
            ]),
        ];
        let all = s
            .respond_per_realm(&offers, "INVITE", "sip:x@a.test", b"", &mut rng)
            .unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].realm(), Some("a.test"));
        assert_eq!(all[0].nonce(), Some("3"));
        assert_eq!(all[1].realm(), Some("b.test"));
        assert!(s.authorize(None, "BYE", "sip:x", b"", &mut rng).is_none());
        assert!(
            s.authorize(Some("b.test"), "BYE", "sip:x", b"", &mut rng)
                .is_some()
        );
    }

    #[test]
    fn algorithm_tokens_are_case_insensitive() {
        assert_eq!(Algorithm::parse("sha-256"), Some(Algorithm::Sha256));
        assert_eq!(Algorithm::parse("md5-SESS"), Some(Algorithm::Md5Sess));
        assert_eq!(
            Algorithm::parse("SHA-512-256-Sess"),
            Some(Algorithm::Sha512_256Sess)
        );
        assert_eq!(Algorithm::parse("SHA-1"), None);
        assert!(Algorithm::Sha512_256.strength() > Algorithm::Sha256.strength());
        assert!(Algorithm::Sha256Sess.strength() > Algorithm::Md5.strength());
    }

    #[test]
    fn debug_hides_the_password() {
        let s = format!("{:?}", mufasa());
        assert!(!s.contains("Circle"), "{s}");
    }
}
