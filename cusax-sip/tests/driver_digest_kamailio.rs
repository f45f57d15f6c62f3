//! Digest authentication (ua::digest) through the transaction layer and the UDP driver
//! against Kamailio: a binding-query REGISTER (no Contact, so no side effect on other
//! tests, RFC 3261 §10.2.3) is challenged with 401 and accepted after the answer, with
//! MD5 on `CUSAX_KAMAILIO_UDP` and SHA-256 on `CUSAX_KAMAILIO_SHA256_UDP`.
#![cfg(feature = "driver")]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cusax_sip::driver::{TransportConfig, Transports, step};
use cusax_sip::msg::{Request, Response, SipMessage};
use cusax_sip::transaction::{
    Target, TimerConfig, TransactionEvent, TransactionLayer, Transport, new_branch,
};
use cusax_sip::ua::digest::{DigestCredentials, DigestSession};

const LIMIT: Duration = Duration::from_secs(10);

fn register(
    domain: &str,
    user: &str,
    local: SocketAddr,
    cseq: u32,
    auth: Option<String>,
) -> Request {
    let branch = new_branch(&mut rand::rng());
    let mut text = format!(
        "REGISTER sip:{domain} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@{domain}>;tag=q{cseq}\r\n\
         To: <sip:{user}@{domain}>\r\n\
         Call-ID: digest-query-{user}-{port}@127.0.0.1\r\n\
         CSeq: {cseq} REGISTER\r\n",
        port = local.port()
    );
    if let Some(a) = auth {
        text.push_str(&format!("Authorization: {a}\r\n"));
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    match SipMessage::parse(Bytes::from(text)).expect("parses") {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => unreachable!(),
    }
}

async fn final_response(
    transports: &mut Transports,
    layer: &mut TransactionLayer,
    req: Request,
    target: Target,
) -> Response {
    layer.send_request(Instant::now(), req, target).unwrap();
    let deadline = Instant::now() + LIMIT;
    loop {
        assert!(Instant::now() < deadline, "no final response");
        tokio::time::timeout(LIMIT, step(transports, layer))
            .await
            .expect("step");
        while let Some(ev) = layer.poll_event() {
            match ev {
                TransactionEvent::Response { response, .. } if response.status >= 200 => {
                    return response;
                }
                TransactionEvent::Timeout { .. } => panic!("no answer from {target}"),
                _ => {}
            }
        }
    }
}

async fn query_with_digest(
    domain: &str,
    server: SocketAddr,
    user: &str,
    password: &str,
) -> (String, u16) {
    let mut transports = Transports::bind(TransportConfig::udp("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let local = transports.local_addr(Transport::Udp).unwrap();
    let target = Target::new(Transport::Udp, server);
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let first = final_response(
        &mut transports,
        &mut layer,
        register(domain, user, local, 1, None),
        target,
    )
    .await;
    assert_eq!(first.status, 401, "{} {}", first.status, first.reason);
    let challenges = first.headers.www_authenticate().expect("challenge");
    let mut session = DigestSession::new(DigestCredentials::new(user, password));
    let creds = session
        .respond(
            &challenges,
            "REGISTER",
            &format!("sip:{domain}"),
            b"",
            &mut rand::rng(),
        )
        .expect("answerable challenge");
    let algorithm = creds.algorithm().unwrap_or("MD5").to_string();
    let second = final_response(
        &mut transports,
        &mut layer,
        register(domain, user, local, 2, Some(creds.to_string())),
        target,
    )
    .await;
    (algorithm, second.status)
}

fn env() -> Option<(String, SocketAddr, SocketAddr)> {
    Some((
        std::env::var("CUSAX_SIP_DOMAIN").ok()?,
        std::env::var("CUSAX_KAMAILIO_UDP").ok()?.parse().ok()?,
        std::env::var("CUSAX_KAMAILIO_SHA256_UDP")
            .ok()?
            .parse()
            .ok()?,
    ))
}

#[tokio::test]
async fn kamailio_accepts_md5_and_sha256_digest() {
    let Some((domain, md5, sha256)) = env() else {
        eprintln!(
            "skipping: CUSAX_SIP_DOMAIN/CUSAX_KAMAILIO_UDP/CUSAX_KAMAILIO_SHA256_UDP not set"
        );
        return;
    };
    let (alg, status) = query_with_digest(&domain, md5, "carol", "carol-secret").await;
    assert_eq!((alg.as_str(), status), ("MD5", 200));
    let (alg, status) = query_with_digest(&domain, sha256, "carol", "carol-secret").await;
    assert_eq!((alg.as_str(), status), ("SHA-256", 200));
}

#[tokio::test]
async fn kamailio_refuses_a_wrong_password() {
    let Some((domain, md5, _)) = env() else {
        eprintln!("skipping: CUSAX_SIP_DOMAIN/CUSAX_KAMAILIO_UDP not set");
        return;
    };
    let (_, status) = query_with_digest(&domain, md5, "carol", "not-the-password").await;
    assert!(status == 401 || status == 403, "{status}");
}
