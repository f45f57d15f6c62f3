//! Server location (RFC 6120 §3.2, XEP-0368) through the driver's real hickory resolver
//! pointed at an in-process DNS server on 127.0.0.1 ([`DnsConfig::NameServers`]).
//!
//! The scripted parts always run: TCP listeners record which one the client reached first
//! and whether it opened with a TLS ClientHello (direct TLS) or an XML stream header
//! (STARTTLS). The Prosody parts (log in through SRV records pointing at the real server)
//! run when `.interop/env` is sourced.
#![cfg(feature = "driver")]

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use cusax_xmpp::driver::{Client, ClientConfig, ConnectError, DnsConfig};
use cusax_xmpp::session::{SessionConfig, TlsMode, XmppEvent};
use hickory_resolver::Name;
use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, SRV};
use hickory_resolver::proto::rr::{RData, Record, RecordType};
use jid::BareJid;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;

type Zone = HashMap<(String, RecordType), Vec<RData>>;

fn name(s: &str) -> Name {
    Name::from_str(s).expect("name")
}

fn srv(prio: u16, weight: u16, port: u16, target: &str) -> RData {
    RData::SRV(SRV::new(prio, weight, port, name(target)))
}

fn a(ip: Ipv4Addr) -> RData {
    RData::A(A(ip))
}

async fn dns_server(socket: UdpSocket, zone: Arc<Zone>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            return;
        };
        let Ok(query) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        let mut reply = Message::new();
        reply
            .set_id(query.id())
            .set_message_type(MessageType::Response)
            .set_op_code(query.op_code())
            .set_recursion_desired(query.recursion_desired())
            .set_recursion_available(true)
            .set_authoritative(true);
        let mut found = false;
        for q in query.queries() {
            reply.add_query(q.clone());
            let key = (
                q.name()
                    .to_ascii()
                    .trim_end_matches('.')
                    .to_ascii_lowercase(),
                q.query_type(),
            );
            for rdata in zone.get(&key).cloned().unwrap_or_default() {
                found = true;
                reply.add_answer(Record::from_rdata(q.name().clone(), 60, rdata));
            }
        }
        if !found {
            reply.set_response_code(ResponseCode::NXDomain);
        }
        if let Ok(bytes) = reply.to_vec() {
            let _ = socket.send_to(&bytes, from).await;
        }
    }
}

/// Starts the DNS server for `zone`; returns its address.
async fn dns(
    zone: Vec<(&str, RecordType, Vec<RData>)>,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let zone: Zone = zone
        .into_iter()
        .map(|(n, t, r)| ((n.to_owned(), t), r))
        .collect();
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    (addr, tokio::spawn(dns_server(socket, Arc::new(zone))))
}

/// What a scripted listener saw on its first connection.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Opening {
    /// A TLS record (handshake, content type 22): direct TLS.
    TlsClientHello,
    /// An XML stream header: plain TCP, STARTTLS to come.
    StreamHeader,
}

/// A listener that reports `(id, opening)` for every connection, then drops it.
async fn scripted(
    ip: &str,
    port: u16,
    id: &'static str,
    tx: mpsc::UnboundedSender<(&'static str, Opening)>,
) -> (u16, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind((ip, port)).await.expect("bind");
    let port = l.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let mut b = [0u8; 1];
            if s.read_exact(&mut b).await.is_ok() {
                let o = if b[0] == 0x16 {
                    Opening::TlsClientHello
                } else {
                    Opening::StreamHeader
                };
                let _ = tx.send((id, o));
            }
        }
    });
    (port, task)
}

/// A port on 127.0.0.1 where nothing listens (connections are refused).
async fn refused_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

fn config(jid: &str, dns: SocketAddr, tls: TlsMode) -> ClientConfig {
    let mut s = SessionConfig::new(BareJid::new(jid).expect("jid"), "secret");
    s.tls = tls;
    let mut c = ClientConfig::new(s);
    c.dns = DnsConfig::NameServers(vec![dns]);
    c.connect_timeout = Duration::from_secs(5);
    c
}

/// Connects (the scripted peer drops the connection, so this fails) and returns the first
/// listener reached.
async fn first_reached(
    c: ClientConfig,
    rx: &mut mpsc::UnboundedReceiver<(&'static str, Opening)>,
) -> (&'static str, Opening) {
    let r = Client::connect(c).await;
    assert!(
        r.is_err(),
        "a scripted peer cannot bring the session online"
    );
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a listener was reached")
        .expect("listener report")
}

#[tokio::test]
async fn srv_priority_then_weight_and_fallback_to_next_target() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (p_heavy, h1) = scripted("127.0.0.1", 0, "prio10-weight50", tx.clone()).await;
    let (p_light, h2) = scripted("127.0.0.1", 0, "prio10-weight5", tx.clone()).await;
    let (p_low, h3) = scripted("127.0.0.1", 0, "prio20", tx.clone()).await;
    let dead = refused_port().await;
    let lo = Ipv4Addr::LOCALHOST;
    let (dns_addr, d) = dns(vec![
        // Listed worst first: the order must come from priority and weight.
        (
            "_xmpp-client._tcp.order.test",
            RecordType::SRV,
            vec![
                srv(20, 100, p_low, "low.order.test."),
                srv(10, 5, p_light, "light.order.test."),
                srv(10, 50, p_heavy, "heavy.order.test."),
            ],
        ),
        // The best record refuses the connection: the next one is used.
        (
            "_xmpp-client._tcp.fallback.test",
            RecordType::SRV,
            vec![
                srv(30, 0, p_low, "low.order.test."),
                srv(20, 0, p_light, "light.order.test."),
                srv(10, 0, dead, "dead.order.test."),
            ],
        ),
        ("heavy.order.test", RecordType::A, vec![a(lo)]),
        ("light.order.test", RecordType::A, vec![a(lo)]),
        ("low.order.test", RecordType::A, vec![a(lo)]),
        ("dead.order.test", RecordType::A, vec![a(lo)]),
    ])
    .await;

    // RFC 2782: the lower priority never comes first; of the two records of priority 10,
    // weight 50 comes first about 10 times as often as weight 5 (seeded, reproducible).
    let (mut heavy, mut light) = (0, 0);
    for seed in 0..60 {
        let mut c = config("u@order.test", dns_addr, TlsMode::StartTlsRequired);
        c.srv_seed = Some(seed);
        match first_reached(c, &mut rx).await {
            ("prio10-weight50", Opening::StreamHeader) => heavy += 1,
            ("prio10-weight5", Opening::StreamHeader) => light += 1,
            other => panic!("seed {seed}: {other:?} reached first"),
        }
    }
    assert!(
        heavy >= 45 && light >= 1,
        "heavy {heavy}, light {light} of 60"
    );

    let got = first_reached(
        config("u@fallback.test", dns_addr, TlsMode::StartTlsRequired),
        &mut rx,
    )
    .await;
    assert_eq!(got, ("prio10-weight5", Opening::StreamHeader));
    for h in [h1, h2, h3, d] {
        h.abort();
    }
}

#[tokio::test]
async fn xmpps_client_records_are_mixed_and_use_direct_tls() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (p_starttls, h1) = scripted("127.0.0.1", 0, "starttls", tx.clone()).await;
    let (p_direct, h2) = scripted("127.0.0.1", 0, "direct", tx.clone()).await;
    let lo = Ipv4Addr::LOCALHOST;
    let (dns_addr, d) = dns(vec![
        // Same priority and weight: either may come first (RFC 2782, XEP-0368 §3).
        (
            "_xmpp-client._tcp.tie.test",
            RecordType::SRV,
            vec![srv(10, 10, p_starttls, "s.tie.test.")],
        ),
        (
            "_xmpps-client._tcp.tie.test",
            RecordType::SRV,
            vec![srv(10, 10, p_direct, "d.tie.test.")],
        ),
        // The operator prefers STARTTLS by priority: priority decides before any weight.
        (
            "_xmpp-client._tcp.plainfirst.test",
            RecordType::SRV,
            vec![srv(5, 0, p_starttls, "s.tie.test.")],
        ),
        (
            "_xmpps-client._tcp.plainfirst.test",
            RecordType::SRV,
            vec![srv(10, 0, p_direct, "d.tie.test.")],
        ),
        ("s.tie.test", RecordType::A, vec![a(lo)]),
        ("d.tie.test", RecordType::A, vec![a(lo)]),
    ])
    .await;

    // Both kinds come first for some seeds, each opened the way its record says.
    let (mut direct, mut starttls) = (0, 0);
    for seed in 0..20 {
        let mut c = config("u@tie.test", dns_addr, TlsMode::StartTlsRequired);
        c.srv_seed = Some(seed);
        match first_reached(c, &mut rx).await {
            ("direct", Opening::TlsClientHello) => direct += 1,
            ("starttls", Opening::StreamHeader) => starttls += 1,
            other => panic!("seed {seed}: {other:?}"),
        }
    }
    assert!(
        direct > 0 && starttls > 0,
        "direct {direct}, starttls {starttls}"
    );

    let got = first_reached(
        config("u@plainfirst.test", dns_addr, TlsMode::StartTlsRequired),
        &mut rx,
    )
    .await;
    assert_eq!(got, ("starttls", Opening::StreamHeader));

    // Direct TLS configured: only `_xmpps-client` records count, whatever their priority.
    let got = first_reached(
        config("u@plainfirst.test", dns_addr, TlsMode::DirectTls),
        &mut rx,
    )
    .await;
    assert_eq!(got, ("direct", Opening::TlsClientHello));
    for h in [h1, h2, d] {
        h.abort();
    }
}

#[tokio::test]
async fn no_srv_falls_back_to_the_domain_on_port_5222() {
    // 127.0.0.2 (loopback): port 5222 there is free even when Prosody listens on
    // 127.0.0.1:5222.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (_, h) = match TcpListener::bind("127.0.0.2:5222").await {
        Ok(l) => {
            drop(l);
            scripted("127.0.0.2", 5222, "domain-a-5222", tx.clone()).await
        }
        Err(e) => {
            eprintln!("skipping: cannot bind 127.0.0.2:5222 ({e})");
            return;
        }
    };
    let (dns_addr, d) = dns(vec![(
        "nosrv.test",
        RecordType::A,
        vec![a(Ipv4Addr::new(127, 0, 0, 2))],
    )])
    .await;
    let got = first_reached(
        config("u@nosrv.test", dns_addr, TlsMode::StartTlsRequired),
        &mut rx,
    )
    .await;
    assert_eq!(got, ("domain-a-5222", Opening::StreamHeader));

    // Neither SRV nor A: a resolution error naming the domain, no connection.
    match Client::connect(config(
        "u@nothing.test",
        dns_addr,
        TlsMode::StartTlsRequired,
    ))
    .await
    {
        Err(ConnectError::Resolve { domain, .. }) => assert_eq!(domain, "nothing.test"),
        Err(e) => panic!("expected a resolution error, got {e}"),
        Ok(_) => panic!("expected a resolution error, got a session"),
    }
    h.abort();
    d.abort();
}

// --- real Prosody -----------------------------------------------------------------------

struct Env {
    starttls: SocketAddr,
    direct: SocketAddr,
    domain: String,
    ca: String,
}

fn env() -> Option<Env> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (Some(s), Some(d), Some(domain), Some(ca)) = (
        get("CUSAX_XMPP_ADDR"),
        get("CUSAX_XMPP_DIRECT_TLS_ADDR"),
        get("CUSAX_XMPP_DOMAIN"),
        get("CUSAX_CA_CERT"),
    ) else {
        eprintln!(
            "skipping: CUSAX_XMPP_ADDR/CUSAX_XMPP_DIRECT_TLS_ADDR/CUSAX_XMPP_DOMAIN/CUSAX_CA_CERT not set (source .interop/env)"
        );
        return None;
    };
    Some(Env {
        starttls: s.parse().ok()?,
        direct: d.parse().ok()?,
        domain,
        ca,
    })
}

fn ip4(a: SocketAddr) -> Ipv4Addr {
    match a.ip() {
        std::net::IpAddr::V4(v4) => v4,
        std::net::IpAddr::V6(_) => Ipv4Addr::LOCALHOST,
    }
}

async fn login(
    env: &Env,
    dns_addr: SocketAddr,
    user: &str,
    tls: TlsMode,
) -> cusax_xmpp::session::SecurityInfo {
    let jid = BareJid::new(&format!("{user}@{}", env.domain)).expect("jid");
    let mut s = SessionConfig::new(jid, format!("{user}-secret"));
    s.tls = tls;
    s.resource = Some(format!("srv-{:016x}", rand::random::<u64>()));
    let mut c = ClientConfig::new(s);
    c.dns = DnsConfig::NameServers(vec![dns_addr]);
    c.ca_cert = Some(env.ca.clone().into());
    c.connect_timeout = Duration::from_secs(20);
    let (client, mut events) = Client::connect(c).await.expect("online through SRV");
    let sec = loop {
        match tokio::time::timeout(Duration::from_secs(10), events.next_event()).await {
            Ok(Some(XmppEvent::Online { security, .. })) => break security,
            Ok(Some(_)) => continue,
            other => panic!("no Online event: {other:?}"),
        }
    };
    let _ = client.close().await;
    sec
}

#[tokio::test]
async fn prosody_reached_through_srv_and_a_fallback() {
    let Some(env) = env() else { return };
    let dead = refused_port().await;
    let d = env.domain.to_ascii_lowercase();
    let (dns_addr, task) = dns(vec![
        // STARTTLS mode: the refusing direct-TLS record and the STARTTLS record share
        // priority 10 in random order (RFC 2782); a refusal moves on to the next record,
        // so the login succeeds either way. Direct TLS mode always goes through the
        // refusal to the priority-20 record.
        (
            &format!("_xmpps-client._tcp.{d}"),
            RecordType::SRV,
            vec![
                srv(10, 0, dead, "dead.srv.test."),
                srv(20, 0, env.direct.port(), "xmpps.srv.test."),
            ],
        ),
        (
            &format!("_xmpp-client._tcp.{d}"),
            RecordType::SRV,
            vec![srv(10, 0, env.starttls.port(), "xmpp.srv.test.")],
        ),
        ("dead.srv.test", RecordType::A, vec![a(Ipv4Addr::LOCALHOST)]),
        ("xmpp.srv.test", RecordType::A, vec![a(ip4(env.starttls))]),
        ("xmpps.srv.test", RecordType::A, vec![a(ip4(env.direct))]),
    ])
    .await;
    let sec = login(&env, dns_addr, "alice", TlsMode::StartTlsRequired).await;
    assert!(sec.cert_verified && sec.tls_version.is_some());
    // Direct TLS configured: the refused record, then the `_xmpps-client` one (5223).
    let sec = login(&env, dns_addr, "bob", TlsMode::DirectTls).await;
    assert!(sec.cert_verified && sec.tls_version.is_some());
    task.abort();

    // No SRV at all: the domain's A record on port 5222 (RFC 6120 §3.2.2).
    if env.starttls.port() == 5222 {
        let (dns_addr, task) = dns(vec![(&d, RecordType::A, vec![a(ip4(env.starttls))])]).await;
        let sec = login(&env, dns_addr, "carol", TlsMode::StartTlsRequired).await;
        assert!(sec.cert_verified);
        task.abort();
    } else {
        eprintln!("skipping: A-record fallback needs Prosody on port 5222");
    }
}
