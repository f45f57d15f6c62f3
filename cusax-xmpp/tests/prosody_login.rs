//! Logins against a real Prosody (scripts/interop-up.sh). Skips when the environment
//! (CUSAX_XMPP_ADDR, CUSAX_XMPP_DOMAIN, CUSAX_XMPP_DOMAIN_SHA256, CUSAX_CA_CERT) is absent.
#![cfg(feature = "driver")]

use std::time::Duration;

use cusax_xmpp::driver::{Client, ClientConfig, ConnectError, EventStream};
use cusax_xmpp::sasl::Mechanism;
use cusax_xmpp::session::{DisconnectedBy, SessionConfig, TlsMode, XmppEvent};
use jid::BareJid;

struct Env {
    addr: String,
    direct_addr: Option<String>,
    domain: String,
    domain256: String,
    ca: String,
}

fn env() -> Option<Env> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (Some(addr), Some(domain), Some(domain256), Some(ca)) = (
        get("CUSAX_XMPP_ADDR"),
        get("CUSAX_XMPP_DOMAIN"),
        get("CUSAX_XMPP_DOMAIN_SHA256"),
        get("CUSAX_CA_CERT"),
    ) else {
        eprintln!(
            "skipping: CUSAX_XMPP_ADDR/CUSAX_XMPP_DOMAIN/CUSAX_XMPP_DOMAIN_SHA256/CUSAX_CA_CERT not set (source .interop/env)"
        );
        return None;
    };
    Some(Env {
        addr,
        direct_addr: get("CUSAX_XMPP_DIRECT_TLS_ADDR"),
        domain,
        domain256,
        ca,
    })
}

fn config(env: &Env, user: &str, domain: &str, password: &str) -> ClientConfig {
    let jid = BareJid::new(&format!("{user}@{domain}")).expect("jid");
    let mut s = SessionConfig::new(jid, password);
    // Unique per login: tests run in parallel and a second login with the same resource
    // would replace the first (stream error `conflict`, RFC 6120 §7.7.2.2).
    s.resource = Some(format!(
        "login-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let mut c = ClientConfig::new(s);
    c.server = Some(env.addr.clone());
    c.ca_cert = Some(env.ca.clone().into());
    c.connect_timeout = Duration::from_secs(20);
    c
}

async fn expect_online(events: &mut EventStream) -> cusax_xmpp::session::SecurityInfo {
    match tokio::time::timeout(Duration::from_secs(10), events.next_event()).await {
        Ok(Some(XmppEvent::Online { security, .. })) => security,
        other => panic!("expected Online, got {other:?}"),
    }
}

async fn close_cleanly(client: &Client, events: &mut EventStream) {
    client.close().await.expect("close");
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.next_event()).await {
            Ok(Some(XmppEvent::Disconnected { by, error })) => {
                assert_eq!(by, DisconnectedBy::Local);
                assert_eq!(error, None, "clean close");
                return;
            }
            Ok(Some(XmppEvent::Stanza(_))) => {}
            other => panic!("expected Disconnected, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn starttls_scram_sha1() {
    let Some(env) = env() else { return };
    let (client, mut events) = Client::connect(config(&env, "alice", &env.domain, "alice-secret"))
        .await
        .expect("login");
    let sec = expect_online(&mut events).await;
    eprintln!("cusax.test: {sec:?}, login {:?}", client.login_time());
    assert!(
        matches!(
            sec.sasl_mechanism,
            Some(Mechanism::ScramSha1 | Mechanism::ScramSha1Plus)
        ),
        "{sec:?}"
    );
    assert!(sec.tls_version.is_some() && sec.cert_verified, "{sec:?}");
    assert!(sec.cipher_suite.is_some());
    assert!(sec.sm_enabled, "Prosody has mod_smacks");
    close_cleanly(&client, &mut events).await;
}

#[tokio::test]
async fn starttls_scram_sha256() {
    let Some(env) = env() else { return };
    let (client, mut events) = Client::connect(config(&env, "bob", &env.domain256, "bob-secret"))
        .await
        .expect("login");
    let sec = expect_online(&mut events).await;
    eprintln!("sha256.cusax.test: {sec:?}");
    assert!(
        matches!(
            sec.sasl_mechanism,
            Some(Mechanism::ScramSha256 | Mechanism::ScramSha256Plus)
        ),
        "{sec:?}"
    );
    close_cleanly(&client, &mut events).await;
}

#[tokio::test]
async fn wrong_password_is_not_authorized() {
    let Some(env) = env() else { return };
    match Client::connect(config(&env, "alice", &env.domain, "wrong-password")).await {
        Err(ConnectError::AuthFailed { condition }) => assert_eq!(condition, "not-authorized"),
        Err(e) => panic!("expected AuthFailed, got {e}"),
        Ok(_) => panic!("login with a wrong password succeeded"),
    }
}

#[tokio::test]
async fn untrusted_certificate_is_refused() {
    let Some(env) = env() else { return };
    let mut c = config(&env, "alice", &env.domain, "alice-secret");
    c.ca_cert = None; // webpki roots do not contain the test CA
    match Client::connect(c).await {
        Err(e @ ConnectError::CertificateUntrusted { .. }) => eprintln!("refused as expected: {e}"),
        Err(e) => panic!("expected CertificateUntrusted, got {e}"),
        Ok(_) => panic!("connected to a server with an untrusted certificate"),
    }
}

#[tokio::test]
async fn direct_tls() {
    let Some(env) = env() else { return };
    let Some(direct) = env.direct_addr.clone() else {
        eprintln!("skipping: CUSAX_XMPP_DIRECT_TLS_ADDR not set");
        return;
    };
    let mut c = config(&env, "carol", &env.domain, "carol-secret");
    c.server = Some(direct);
    c.session.tls = TlsMode::DirectTls;
    let (client, mut events) = Client::connect(c).await.expect("direct TLS login");
    let sec = expect_online(&mut events).await;
    assert!(sec.tls_version.is_some(), "{sec:?}");
    close_cleanly(&client, &mut events).await;
}

/// Login time (TCP connect → Online) over 10 logins; printed, not asserted.
#[tokio::test]
async fn login_time_figures() {
    let Some(env) = env() else { return };
    let mut times = Vec::new();
    for _ in 0..10 {
        let (client, mut events) =
            Client::connect(config(&env, "carol", &env.domain, "carol-secret"))
                .await
                .expect("login");
        expect_online(&mut events).await;
        times.push(client.login_time());
        close_cleanly(&client, &mut events).await;
    }
    times.sort();
    eprintln!(
        "login time (TCP connect -> Online, STARTTLS + SCRAM-SHA-1 + bind + SM enable) over 10: min {:?}, median {:?}, max {:?}",
        times[0], times[5], times[9]
    );
}
