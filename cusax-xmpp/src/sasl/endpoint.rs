//! `tls-server-end-point` channel-binding data (RFC 5929 §4.1): the hash of the server's
//! certificate, with the hash function of the certificate's signature algorithm — SHA-256
//! when that is MD5 or SHA-1, otherwise that function itself (SHA-224/384/512 …). For
//! signature algorithms with no single hash function (Ed25519, Ed448) the binding is
//! undefined and an error is returned (so no `-PLUS` mechanism is used).
//!
//! Reads only what it needs of the X.509 DER (RFC 5280 §4.1): `Certificate ::= SEQUENCE
//! { tbsCertificate, signatureAlgorithm AlgorithmIdentifier, signatureValue }`, and for
//! RSASSA-PSS the `hashAlgorithm` of its parameters (RFC 4055 §3.1). A bounded, non-panicking
//! DER reader; definite lengths only (DER forbids the others).

use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

/// The certificate cannot give `tls-server-end-point` data.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndPointError {
    /// Peer misbehaved (or the TLS library handed over something else): not a DER
    /// certificate as far as this reader needs.
    #[error("server certificate is not valid DER: {0}")]
    Malformed(&'static str),
    /// The signature algorithm (dotted OID) uses no single hash function, or one this
    /// library does not know; RFC 5929 §4.1 leaves the binding undefined.
    #[error("no tls-server-end-point hash for signature algorithm {0}")]
    UnsupportedAlgorithm(String),
}

/// The hash functions RFC 5929 §4.1 can select.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndPointHash {
    /// SHA-224.
    Sha224,
    /// SHA-256 (also for MD5 and SHA-1 signatures).
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl EndPointHash {
    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            EndPointHash::Sha224 => Sha224::digest(data).to_vec(),
            EndPointHash::Sha256 => Sha256::digest(data).to_vec(),
            EndPointHash::Sha384 => Sha384::digest(data).to_vec(),
            EndPointHash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }
}

/// The `tls-server-end-point` channel-binding data of the DER certificate `cert`.
pub fn tls_server_end_point(cert: &[u8]) -> Result<Vec<u8>, EndPointError> {
    Ok(end_point_hash(cert)?.digest(cert))
}

/// The hash function RFC 5929 §4.1 selects for the DER certificate `cert`.
pub fn end_point_hash(cert: &[u8]) -> Result<EndPointHash, EndPointError> {
    let (oid, params) = signature_algorithm(cert)?;
    match oid {
        // md5WithRSAEncryption, sha1WithRSAEncryption (1.2.840.113549.1.1.4/5)
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04 | 0x05]
        // ecdsa-with-SHA1 (1.2.840.10045.4.1), dsa-with-sha1 (1.2.840.10040.4.3)
        | [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01]
        | [0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x03] => Ok(EndPointHash::Sha256),
        // sha256/384/512/224WithRSAEncryption (1.2.840.113549.1.1.11–14)
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b] => Ok(EndPointHash::Sha256),
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c] => Ok(EndPointHash::Sha384),
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d] => Ok(EndPointHash::Sha512),
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0e] => Ok(EndPointHash::Sha224),
        // ecdsa-with-SHA224/256/384/512 (1.2.840.10045.4.3.1–4)
        [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, n @ 0x01..=0x04]
        // dsa-with-sha224/256 (2.16.840.1.101.3.4.3.1–2)
        | [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, n @ 0x01..=0x02] => Ok(match n {
            0x01 => EndPointHash::Sha224,
            0x02 => EndPointHash::Sha256,
            0x03 => EndPointHash::Sha384,
            _ => EndPointHash::Sha512,
        }),
        // RSASSA-PSS (1.2.840.113549.1.1.10): the hash is in the parameters.
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a] => pss_hash(params),
        other => Err(EndPointError::UnsupportedAlgorithm(dotted(other))),
    }
}

/// RSASSA-PSS-params (RFC 4055 §3.1): `[0] EXPLICIT hashAlgorithm DEFAULT sha1`.
fn pss_hash(params: Option<(u8, &[u8])>) -> Result<EndPointHash, EndPointError> {
    let Some((0x30, body)) = params else {
        return Err(EndPointError::Malformed("RSASSA-PSS without parameters"));
    };
    let mut r = Der(body);
    if r.0.first() != Some(&0xa0) {
        // hashAlgorithm absent: SHA-1, hence SHA-256.
        return Ok(EndPointHash::Sha256);
    }
    let (_, explicit) = r.next()?;
    let (tag, alg) = Der(explicit).next()?;
    if tag != 0x30 {
        return Err(EndPointError::Malformed(
            "PSS hashAlgorithm is not a SEQUENCE",
        ));
    }
    let (tag, oid) = Der(alg).next()?;
    if tag != 0x06 {
        return Err(EndPointError::Malformed("PSS hashAlgorithm without an OID"));
    }
    match oid {
        // sha1 (1.3.14.3.2.26)
        [0x2b, 0x0e, 0x03, 0x02, 0x1a] => Ok(EndPointHash::Sha256),
        // sha256/384/512/224 (2.16.840.1.101.3.4.2.1–4)
        [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, n] => match n {
            0x01 => Ok(EndPointHash::Sha256),
            0x02 => Ok(EndPointHash::Sha384),
            0x03 => Ok(EndPointHash::Sha512),
            0x04 => Ok(EndPointHash::Sha224),
            _ => Err(EndPointError::UnsupportedAlgorithm(dotted(oid))),
        },
        other => Err(EndPointError::UnsupportedAlgorithm(dotted(other))),
    }
}

/// The certificate's outer `signatureAlgorithm`: the OID's content bytes and the
/// parameters (tag and content), if any.
#[allow(clippy::type_complexity)]
fn signature_algorithm(cert: &[u8]) -> Result<(&[u8], Option<(u8, &[u8])>), EndPointError> {
    let mut outer = Der(cert);
    let (tag, body) = outer.next()?;
    if tag != 0x30 {
        return Err(EndPointError::Malformed("certificate is not a SEQUENCE"));
    }
    let mut seq = Der(body);
    let (tag, _tbs) = seq.next()?;
    if tag != 0x30 {
        return Err(EndPointError::Malformed("tbsCertificate is not a SEQUENCE"));
    }
    let (tag, alg) = seq.next()?;
    if tag != 0x30 {
        return Err(EndPointError::Malformed(
            "signatureAlgorithm is not a SEQUENCE",
        ));
    }
    let mut alg = Der(alg);
    let (tag, oid) = alg.next()?;
    if tag != 0x06 || oid.is_empty() {
        return Err(EndPointError::Malformed(
            "signatureAlgorithm without an OID",
        ));
    }
    let params = if alg.0.is_empty() {
        None
    } else {
        Some(alg.next()?)
    };
    Ok((oid, params))
}

/// A cursor over DER TLVs.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    /// The next TLV: tag (single-byte tags only) and content.
    fn next(&mut self) -> Result<(u8, &'a [u8]), EndPointError> {
        let [tag, first, rest @ ..] = self.0 else {
            return Err(EndPointError::Malformed("truncated TLV"));
        };
        if tag & 0x1f == 0x1f {
            return Err(EndPointError::Malformed("multi-byte tag"));
        }
        let (len, rest) = match *first {
            n @ 0..=0x7f => (usize::from(n), rest),
            n @ 0x81..=0x84 => {
                let k = usize::from(n & 0x7f);
                let bytes = rest
                    .get(..k)
                    .ok_or(EndPointError::Malformed("truncated length"))?;
                let len = bytes.iter().fold(0usize, |a, b| (a << 8) | usize::from(*b));
                (len, rest.get(k..).unwrap_or_default())
            }
            _ => return Err(EndPointError::Malformed("unsupported length form")),
        };
        let content = rest
            .get(..len)
            .ok_or(EndPointError::Malformed("length beyond the data"))?;
        self.0 = rest.get(len..).unwrap_or_default();
        Ok((*tag, content))
    }
}

/// Dotted form of an OID's content bytes (for error messages).
fn dotted(oid: &[u8]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut v: u64 = 0;
    for (i, b) in oid.iter().enumerate() {
        v = (v << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if parts.is_empty() {
                let first = (v / 40).min(2);
                parts.push(first.to_string());
                parts.push((v - first * 40).to_string());
            } else {
                parts.push(v.to_string());
            }
            v = 0;
        }
        if i > 64 {
            parts.push("…".into());
            break;
        }
    }
    parts.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            &[0x30],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[0x30, 0x05, 0x30, 0x00],
            &[0x30, 0x02, 0x30, 0x00],
            &[0x30, 0x04, 0x30, 0x00, 0x30, 0x00],
            &[0x30, 0x06, 0x30, 0x00, 0x30, 0x02, 0x05, 0x00],
            &[0x1f, 0x00],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
        ] {
            assert!(
                matches!(tls_server_end_point(bad), Err(EndPointError::Malformed(_))),
                "{bad:?}"
            );
        }
        // Every truncation of a real certificate fails cleanly.
        let cert = include_bytes!("../../tests/data/certs/rsapss-sha384.der");
        for n in 0..cert.len() {
            let _ = tls_server_end_point(&cert[..n]);
        }
    }

    #[test]
    fn dotted_oids() {
        assert_eq!(dotted(&[0x2b, 0x65, 0x70]), "1.3.101.112");
        assert_eq!(
            dotted(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b]),
            "1.2.840.113549.1.1.11"
        );
    }
}
