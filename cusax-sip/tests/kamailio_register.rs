//! Registration against a real Kamailio (digest MD5 and SHA-256), refresh, un-REGISTER
//! and a wrong password. Needs `CUSAX_KAMAILIO_UDP`, `CUSAX_KAMAILIO_SHA256_UDP`,
//! `CUSAX_SIP_DOMAIN` (see scripts/interop-up.sh); skips when they are absent.
#![cfg(feature = "driver")]

use std::net::SocketAddr;
use std::time::Duration;

use cusax_sip::endpoint::{Account, EndpointConfig, SipEvent};
use cusax_sip::msg::Uri;
use cusax_sip::transaction::{Target, Transport};
use cusax_sip::ua::client::Client;

const WAIT: Duration = Duration::from_secs(10);

fn env_addr(name: &str) -> Option<SocketAddr> {
    std::env::var(name).ok()?.parse().ok()
}

fn config(
    user: &str,
    password: &str,
    server: SocketAddr,
    domain: &str,
    expires: u32,
) -> EndpointConfig {
    // Plain UDP, chosen explicitly (TLS is the default).
    let mut c = EndpointConfig::insecure(SocketAddr::from(([127, 0, 0, 1], 0)), Transport::Udp);
    c.account = Some(Account {
        aor: Uri::parse(&format!("sip:{user}@{domain}")).expect("aor"),
        display_name: None,
        username: user.to_owned(),
        password: password.to_owned(),
        registrar: Target::new(Transport::Udp, server),
        outbound_proxy: Some(Target::new(Transport::Udp, server)),
        expires,
    });
    c
}

async fn registered(client: &mut Client) -> Result<u32, String> {
    client
        .wait_for(WAIT, |e| match e {
            SipEvent::Registered { expires, .. } => Some(Ok(*expires)),
            SipEvent::RegistrationFailed { status, reason } => {
                Some(Err(format!("{status} {reason}")))
            }
            SipEvent::AuthenticationFailed { reason, .. } => Some(Err(reason.clone())),
            _ => None,
        })
        .await
        .unwrap_or_else(|| Err("no answer from the registrar".into()))
}

async fn register_refresh_unregister(server: SocketAddr, domain: &str) {
    let mut alice = Client::start(config("alice", "alice-secret", server, domain, 60))
        .await
        .expect("bind");
    alice.register().expect("register");
    let expires = registered(&mut alice).await.expect("registered");
    assert!(expires > 0 && expires <= 60, "granted {expires}");
    assert!(alice.with(|ep, _| ep.is_registered()));
    // Refresh: the same path the refresh timer takes (same Call-ID, CSeq + 1).
    alice.register().expect("refresh");
    let again = registered(&mut alice).await.expect("refreshed");
    assert!(again > 0);
    alice.unregister().expect("unregister");
    let un = alice
        .wait_for(WAIT, |e| match e {
            SipEvent::Unregistered => Some(true),
            SipEvent::RegistrationFailed { .. } => Some(false),
            _ => None,
        })
        .await;
    assert_eq!(un, Some(true));
    assert!(!alice.with(|ep, _| ep.is_registered()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_register_md5() {
    let (Some(server), Ok(domain)) = (
        env_addr("CUSAX_KAMAILIO_UDP"),
        std::env::var("CUSAX_SIP_DOMAIN"),
    ) else {
        eprintln!(
            "skipping: CUSAX_KAMAILIO_UDP / CUSAX_SIP_DOMAIN not set (run scripts/interop-up.sh)"
        );
        return;
    };
    register_refresh_unregister(server, &domain).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_register_sha256() {
    let (Some(server), Ok(domain)) = (
        env_addr("CUSAX_KAMAILIO_SHA256_UDP"),
        std::env::var("CUSAX_SIP_DOMAIN"),
    ) else {
        eprintln!(
            "skipping: CUSAX_KAMAILIO_SHA256_UDP / CUSAX_SIP_DOMAIN not set (run scripts/interop-up.sh)"
        );
        return;
    };
    register_refresh_unregister(server, &domain).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_wrong_password_is_authentication_failed() {
    let (Some(server), Ok(domain)) = (
        env_addr("CUSAX_KAMAILIO_UDP"),
        std::env::var("CUSAX_SIP_DOMAIN"),
    ) else {
        eprintln!(
            "skipping: CUSAX_KAMAILIO_UDP / CUSAX_SIP_DOMAIN not set (run scripts/interop-up.sh)"
        );
        return;
    };
    let mut alice = Client::start(config("alice", "not-the-password", server, &domain, 60))
        .await
        .expect("bind");
    alice.register().expect("register");
    let mut auth_failed = false;
    let mut reg_failed = None;
    while let Some(e) = alice.next_event_timeout(WAIT).await {
        match e {
            SipEvent::AuthenticationFailed { .. } => auth_failed = true,
            SipEvent::RegistrationFailed { status, .. } => {
                reg_failed = Some(status);
                break;
            }
            SipEvent::Registered { .. } => panic!("registered with a wrong password"),
            _ => {}
        }
    }
    assert!(auth_failed, "AuthenticationFailed reported");
    assert_eq!(reg_failed, Some(401));
    assert!(!alice.with(|ep, _| ep.is_registered()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_register_over_tcp() {
    let (Some(server), Ok(domain)) = (
        env_addr("CUSAX_KAMAILIO_TCP"),
        std::env::var("CUSAX_SIP_DOMAIN"),
    ) else {
        eprintln!(
            "skipping: CUSAX_KAMAILIO_TCP / CUSAX_SIP_DOMAIN not set (run scripts/interop-up.sh)"
        );
        return;
    };
    let mut cfg = config("alice", "alice-secret", server, &domain, 60);
    cfg.transport = Transport::Tcp;
    if let Some(acc) = cfg.account.as_mut() {
        acc.registrar = Target::new(Transport::Tcp, server);
        acc.outbound_proxy = Some(Target::new(Transport::Tcp, server));
    }
    let tc = cusax_sip::driver::TransportConfig {
        tcp_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..Default::default()
    };
    let mut alice = Client::start_with(cfg, Some(tc)).await.expect("bind");
    alice.register().expect("register");
    let expires = registered(&mut alice).await.expect("registered over TCP");
    assert!(expires > 0);
    let contact = alice.with(|ep, _| ep.contact_uri().to_string());
    assert!(contact.ends_with(";transport=tcp"), "{contact}");
    alice.unregister().expect("unregister");
    let un = alice
        .wait_for(WAIT, |e| match e {
            SipEvent::Unregistered => Some(true),
            SipEvent::RegistrationFailed { .. } => Some(false),
            _ => None,
        })
        .await;
    assert_eq!(un, Some(true));
}
