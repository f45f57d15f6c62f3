//! SDES: SRTP keys in SDP `a=crypto` lines (RFC 4568), with the AEAD suite of RFC 7714 §12.
//!
//! Format (RFC 4568 §9.1): `a=crypto:<tag> <crypto-suite> inline:<base64 key||salt>[|lifetime][|MKI:length] [session-params]`.
//! We produce exactly one key parameter, no lifetime and no MKI. We accept a lifetime, and
//! skip (do not select) lines carrying an MKI or any session parameter, as RFC 4568 §6.3
//! requires for parameters we do not support.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::{CryptoRng, RngCore};

/// SRTP protection suites supported for SDES.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SrtpSuite {
    /// `AES_CM_128_HMAC_SHA1_80` (RFC 4568 §6.2.1).
    AesCm128HmacSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32` (RFC 4568 §6.2.2).
    AesCm128HmacSha1_32,
    /// `AEAD_AES_128_GCM` (RFC 7714 §12, 16-byte tag).
    AeadAes128Gcm,
}

impl SrtpSuite {
    /// All suites, strongest first: our default offer order.
    pub const ALL: [SrtpSuite; 3] = [
        SrtpSuite::AeadAes128Gcm,
        SrtpSuite::AesCm128HmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32,
    ];

    /// The SDP name.
    pub fn name(self) -> &'static str {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SrtpSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            SrtpSuite::AeadAes128Gcm => "AEAD_AES_128_GCM",
        }
    }

    /// Parses an SDP suite name.
    pub fn from_name(s: &str) -> Option<Self> {
        SrtpSuite::ALL.into_iter().find(|x| x.name() == s)
    }

    /// Master key length in bytes.
    pub fn key_len(self) -> usize {
        16
    }

    /// Master salt length in bytes (14 for AES-CM, 12 for AEAD-GCM per RFC 7714 §8.1).
    pub fn salt_len(self) -> usize {
        match self {
            SrtpSuite::AeadAes128Gcm => 12,
            _ => 14,
        }
    }
}

/// A master key and salt for one direction.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    /// Master key.
    pub key: Vec<u8>,
    /// Master salt.
    pub salt: Vec<u8>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// Fresh random key material for `suite` from the injected RNG, which must be a
    /// cryptographically secure generator (RFC 4568 §6.1: keys MUST be random; RFC 4086).
    pub fn generate<R: CryptoRng + RngCore + ?Sized>(suite: SrtpSuite, rng: &mut R) -> Self {
        let mut key = vec![0u8; suite.key_len()];
        let mut salt = vec![0u8; suite.salt_len()];
        rng.fill_bytes(&mut key);
        rng.fill_bytes(&mut salt);
        MasterKey { key, salt }
    }
}

/// A parsed or generated `a=crypto` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoAttribute {
    /// Tag (1..=999999999, RFC 4568 §9.1).
    pub tag: u32,
    /// Suite.
    pub suite: SrtpSuite,
    /// Key and salt.
    pub key: MasterKey,
    /// Lifetime in packets, when given.
    pub lifetime: Option<u64>,
}

/// Why an `a=crypto` value was not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// Syntax error in the attribute (peer's fault).
    #[error("malformed a=crypto attribute")]
    Malformed,
    /// The suite is not one we implement (peer incompatible).
    #[error("unsupported crypto suite {0}")]
    UnsupportedSuite(String),
    /// MKI, several keys, or session parameters we do not implement (peer incompatible).
    #[error("unsupported crypto parameter")]
    UnsupportedParameter,
    /// Key material of the wrong size (peer's fault).
    #[error("bad key length")]
    BadKeyLength,
}

impl CryptoAttribute {
    /// Parses the value of an `a=crypto` attribute (after `crypto:`).
    pub fn parse(value: &str) -> Result<Self, CryptoError> {
        let mut it = value.split(' ').filter(|s| !s.is_empty());
        let tag: u32 = it
            .next()
            .and_then(|t| t.parse().ok())
            .filter(|t| (1..=999_999_999).contains(t))
            .ok_or(CryptoError::Malformed)?;
        let suite_s = it.next().ok_or(CryptoError::Malformed)?;
        let suite = SrtpSuite::from_name(suite_s)
            .ok_or_else(|| CryptoError::UnsupportedSuite(suite_s.chars().take(64).collect()))?;
        let keys = it.next().ok_or(CryptoError::Malformed)?;
        if it.next().is_some() {
            return Err(CryptoError::UnsupportedParameter);
        }
        if keys.contains(';') {
            return Err(CryptoError::UnsupportedParameter); // several key params
        }
        let kp = keys.strip_prefix("inline:").ok_or(CryptoError::Malformed)?;
        let mut parts = kp.split('|');
        let b64 = parts.next().ok_or(CryptoError::Malformed)?;
        let mut lifetime = None;
        for p in parts {
            if p.contains(':') {
                return Err(CryptoError::UnsupportedParameter); // MKI
            }
            if lifetime.is_some() {
                return Err(CryptoError::Malformed);
            }
            lifetime = Some(parse_lifetime(p)?);
        }
        let raw = STANDARD.decode(b64).map_err(|_| CryptoError::Malformed)?;
        if raw.len() != suite.key_len() + suite.salt_len() {
            return Err(CryptoError::BadKeyLength);
        }
        let (k, s) = raw.split_at(suite.key_len());
        Ok(CryptoAttribute {
            tag,
            suite,
            key: MasterKey {
                key: k.to_vec(),
                salt: s.to_vec(),
            },
            lifetime,
        })
    }

    /// Serializes the value (without `crypto:`).
    pub fn to_value(&self) -> String {
        let mut raw = self.key.key.clone();
        raw.extend_from_slice(&self.key.salt);
        let mut s = format!(
            "{} {} inline:{}",
            self.tag,
            self.suite.name(),
            STANDARD.encode(raw)
        );
        if let Some(l) = self.lifetime {
            s.push_str(&format!("|{l}"));
        }
        s
    }
}

fn parse_lifetime(p: &str) -> Result<u64, CryptoError> {
    let v = if let Some(exp) = p.strip_prefix("2^") {
        let e: u32 = exp.parse().map_err(|_| CryptoError::Malformed)?;
        if e > 63 {
            return Err(CryptoError::Malformed);
        }
        1u64 << e
    } else {
        p.parse().map_err(|_| CryptoError::Malformed)?
    };
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4568_example() {
        // RFC 4568 §4 example (lifetime 2^20, MKI 1:4): MKI is not supported.
        let v =
            "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4";
        assert_eq!(
            CryptoAttribute::parse(v),
            Err(CryptoError::UnsupportedParameter)
        );
        let v = "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20";
        let c = CryptoAttribute::parse(v).unwrap();
        assert_eq!(c.tag, 1);
        assert_eq!(c.suite, SrtpSuite::AesCm128HmacSha1_80);
        assert_eq!(c.lifetime, Some(1 << 20));
        assert_eq!(c.key.key.len(), 16);
        assert_eq!(c.key.salt.len(), 14);
        assert_eq!(CryptoAttribute::parse(&c.to_value()), Ok(c));
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            CryptoAttribute::parse(
                "1 F8_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
            ),
            Err(CryptoError::UnsupportedSuite("F8_128_HMAC_SHA1_80".into()))
        );
        assert_eq!(
            CryptoAttribute::parse(
                "1 AEAD_AES_128_GCM inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
            ),
            Err(CryptoError::BadKeyLength)
        );
        assert_eq!(
            CryptoAttribute::parse("0 AES_CM_128_HMAC_SHA1_80 inline:AAAA"),
            Err(CryptoError::Malformed)
        );
        assert_eq!(
            CryptoAttribute::parse(
                "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR UNENCRYPTED_SRTP"
            ),
            Err(CryptoError::UnsupportedParameter)
        );
    }

    #[test]
    fn generated_keys_have_suite_lengths() {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1);
        let k = MasterKey::generate(SrtpSuite::AeadAes128Gcm, &mut rng);
        assert_eq!((k.key.len(), k.salt.len()), (16, 12));
    }
}
