//! `tls-server-end-point` (RFC 5929 §4.1) on real certificates (tests/data/certs, made once
//! with `openssl req -x509`): the hash follows the certificate's signature algorithm.
//! Expected values are `openssl dgst -sha256/-sha384/-sha512` of each file.

use cusax_xmpp::sasl::{EndPointError, EndPointHash, end_point_hash, tls_server_end_point};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn hash_follows_the_signature_algorithm() {
    for (cert, hash, want) in [
        (
            &include_bytes!("data/certs/ecdsa-sha256.der")[..],
            EndPointHash::Sha256,
            "740bd1eeaa8547cffee82a999714fa099a7296093b6bdda68751964eb36275bf",
        ),
        (
            &include_bytes!("data/certs/ecdsa-sha384.der")[..],
            EndPointHash::Sha384,
            "4d37edd30f2f6137c94c3e0026e162ca28535c35b65dc9d42d37fba8d5c9f2e4b5cdbd93c1ebc882181fbc0d7b60bfdf",
        ),
        (
            &include_bytes!("data/certs/ecdsa-sha512.der")[..],
            EndPointHash::Sha512,
            "87f85cbbb1e67b4f3bfda3546c4074309e3b528f0900b947f1c26bf5b2a4cf3fba70efcf9f5056086965dec924b3eb524c2f1f8cb19fa59a739bf02252e4562b",
        ),
        // SHA-1 signatures are bound with SHA-256.
        (
            &include_bytes!("data/certs/ecdsa-sha1.der")[..],
            EndPointHash::Sha256,
            "bffec761204bd2e70222d553a1832ecb98717927cf21fdafbdcc5ba32cd10717",
        ),
        // RSASSA-PSS: the hash named in the parameters.
        (
            &include_bytes!("data/certs/rsapss-sha384.der")[..],
            EndPointHash::Sha384,
            "e2b37c9d41a9cf0836030aaf3082fd0050c7313c6a7ef6efc5d2d14ba471b07996dfc1e098c4781dede850980c966c2c",
        ),
    ] {
        assert_eq!(end_point_hash(cert), Ok(hash));
        assert_eq!(hex(&tls_server_end_point(cert).expect("binding")), want);
    }
}

#[test]
fn ed25519_has_no_binding() {
    assert_eq!(
        tls_server_end_point(include_bytes!("data/certs/ed25519.der")),
        Err(EndPointError::UnsupportedAlgorithm("1.3.101.112".into()))
    );
}

/// The interop servers' leaf certificate, when the environment provides its CA
/// directory: whatever it is signed with, the hash is the one `openssl` reports for it.
#[test]
fn interop_leaf_certificate() {
    let Some(ca) = std::env::var("CUSAX_CA_CERT")
        .ok()
        .filter(|v| !v.is_empty())
    else {
        eprintln!("skipping: CUSAX_CA_CERT not set (source .interop/env)");
        return;
    };
    let dir = std::path::Path::new(&ca).parent().map(|d| d.to_path_buf());
    let Some(pem) = dir
        .iter()
        .flat_map(|d| ["server.pem", "leaf.pem", "cert.pem"].map(|n| d.join(n)))
        .find_map(|p| std::fs::read_to_string(p).ok())
    else {
        eprintln!("skipping: no leaf certificate next to {ca}");
        return;
    };
    let b64: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    use base64::Engine as _;
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("PEM body");
    let h = tls_server_end_point(&der).expect("binding for the interop certificate");
    assert!(matches!(h.len(), 32 | 48 | 64), "{}", h.len());
}
