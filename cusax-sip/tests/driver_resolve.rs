//! RFC 3263 server location through a real hickory resolver talking to an in-process
//! DNS server on 127.0.0.1 that serves NAPTR, SRV and A records for test zones.
#![cfg(feature = "driver")]

use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;

use cusax_sip::driver::resolve::{Locator, ServerLocation};
use cusax_sip::transaction::{Target, Transport};
use hickory_resolver::Name;
use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, NAPTR, SRV};
use hickory_resolver::proto::rr::{RData, Record, RecordType};
use tokio::net::UdpSocket;

fn name(s: &str) -> Name {
    Name::from_str(s).expect("name")
}

/// The zone: `naptr.test` has NAPTR → SRV (TLS preferred over TCP) → A;
/// `srv.test` has only SRV records (UDP two targets with priorities);
/// `plain.test` has only an A record; `weights.test` has SRV records of one priority with
/// weights 50 and 5 and a backup of lower priority.
fn answers(qname: &str, qtype: RecordType) -> Vec<RData> {
    let q = qname.trim_end_matches('.').to_ascii_lowercase();
    let naptr = |order, pref, service: &str, repl: &str| {
        RData::NAPTR(NAPTR::new(
            order,
            pref,
            b"s".to_vec().into_boxed_slice(),
            service.as_bytes().to_vec().into_boxed_slice(),
            Vec::new().into_boxed_slice(),
            name(repl),
        ))
    };
    let srv =
        |prio, weight, port, target: &str| RData::SRV(SRV::new(prio, weight, port, name(target)));
    let a = |ip: [u8; 4]| RData::A(A(Ipv4Addr::from(ip)));
    match (q.as_str(), qtype) {
        ("naptr.test", RecordType::NAPTR) => vec![
            naptr(20, 10, "SIP+D2T", "_sip._tcp.naptr.test."),
            naptr(10, 10, "SIPS+D2T", "_sips._tcp.naptr.test."),
            naptr(30, 10, "E2U+sip", "ignored.naptr.test."),
        ],
        ("_sips._tcp.naptr.test", RecordType::SRV) => vec![srv(0, 0, 5061, "tls.naptr.test.")],
        ("_sip._tcp.naptr.test", RecordType::SRV) => vec![srv(0, 0, 5062, "tcp.naptr.test.")],
        ("tls.naptr.test", RecordType::A) => vec![a([127, 0, 0, 11])],
        ("tcp.naptr.test", RecordType::A) => vec![a([127, 0, 0, 12])],
        ("_sip._udp.srv.test", RecordType::SRV) => vec![
            srv(20, 0, 5070, "b.srv.test."),
            srv(10, 0, 5060, "a.srv.test."),
        ],
        ("a.srv.test", RecordType::A) => vec![a([127, 0, 0, 21])],
        ("b.srv.test", RecordType::A) => vec![a([127, 0, 0, 22])],
        ("plain.test", RecordType::A) => vec![a([127, 0, 0, 31])],
        // one priority, weights 50 and 5, plus a lower-priority backup
        ("_sip._udp.weights.test", RecordType::SRV) => vec![
            srv(10, 5, 5062, "light.weights.test."),
            srv(20, 90, 5063, "backup.weights.test."),
            srv(10, 50, 5061, "heavy.weights.test."),
        ],
        ("heavy.weights.test", RecordType::A) => vec![a([127, 0, 0, 41])],
        ("light.weights.test", RecordType::A) => vec![a([127, 0, 0, 42])],
        ("backup.weights.test", RecordType::A) => vec![a([127, 0, 0, 43])],
        _ => Vec::new(),
    }
}

async fn dns_server(socket: UdpSocket) {
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
            for rdata in answers(&q.name().to_ascii(), q.query_type()) {
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

async fn locator() -> (Locator, tokio::task::JoinHandle<()>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let task = tokio::spawn(dns_server(socket));
    (Locator::with_name_servers(&[addr]), task)
}

fn t(transport: Transport, addr: &str) -> Target {
    Target::new(transport, addr.parse::<SocketAddr>().unwrap())
}

#[tokio::test]
async fn naptr_orders_transports_and_follows_srv_to_a() {
    let (l, task) = locator().await;
    let got = l.locate(&ServerLocation::new("naptr.test")).await.unwrap();
    assert_eq!(
        got,
        vec![
            t(Transport::Tls, "127.0.0.11:5061"),
            t(Transport::Tcp, "127.0.0.12:5062"),
        ]
    );
    // sips: only the TLS service qualifies.
    let mut secure = ServerLocation::new("naptr.test");
    secure.secure = true;
    assert_eq!(
        l.locate(&secure).await.unwrap(),
        vec![t(Transport::Tls, "127.0.0.11:5061")]
    );
    task.abort();
}

#[tokio::test]
async fn srv_without_naptr_sorted_by_priority() {
    let (l, task) = locator().await;
    let got = l.locate(&ServerLocation::new("srv.test")).await.unwrap();
    assert_eq!(
        got,
        vec![
            t(Transport::Udp, "127.0.0.21:5060"),
            t(Transport::Udp, "127.0.0.22:5070"),
        ]
    );
    task.abort();
}

/// RFC 2782 through a real DNS exchange: the backup (lower priority) is always last; of
/// the two equal-priority records the heavier (50 vs 5) comes first about 10 times as
/// often; a seeded locator gives the same order every time.
#[tokio::test]
async fn srv_weights_choose_the_first_target() {
    let (l, task) = locator().await;
    let heavy = t(Transport::Udp, "127.0.0.41:5061");
    let light = t(Transport::Udp, "127.0.0.42:5062");
    let backup = t(Transport::Udp, "127.0.0.43:5063");
    let mut heavy_first = 0;
    for seed in 0..300 {
        let got = l
            .clone()
            .with_srv_seed(seed)
            .locate(&ServerLocation::new("weights.test"))
            .await
            .unwrap();
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[2], backup, "{got:?}");
        assert!(
            got[..2].contains(&heavy) && got[..2].contains(&light),
            "{got:?}"
        );
        heavy_first += usize::from(got[0] == heavy);
    }
    // expected 300 * 50/55 ≈ 273
    assert!(
        (250..=295).contains(&heavy_first),
        "heavy first {heavy_first} of 300"
    );
    let seeded = l.clone().with_srv_seed(42);
    let first = seeded
        .locate(&ServerLocation::new("weights.test"))
        .await
        .unwrap();
    for _ in 0..5 {
        assert_eq!(
            seeded
                .locate(&ServerLocation::new("weights.test"))
                .await
                .unwrap(),
            first
        );
    }
    task.abort();
}

#[tokio::test]
async fn a_record_fallback_and_explicit_port_or_transport() {
    let (l, task) = locator().await;
    assert_eq!(
        l.locate(&ServerLocation::new("plain.test")).await.unwrap(),
        vec![t(Transport::Udp, "127.0.0.31:5060")]
    );
    let mut with_port = ServerLocation::new("plain.test");
    with_port.port = Some(5080);
    with_port.transport = Some(Transport::Tcp);
    assert_eq!(
        l.locate(&with_port).await.unwrap(),
        vec![t(Transport::Tcp, "127.0.0.31:5080")]
    );
    let mut tls = ServerLocation::new("plain.test");
    tls.transport = Some(Transport::Tls);
    assert_eq!(
        l.locate(&tls).await.unwrap(),
        vec![t(Transport::Tls, "127.0.0.31:5061")]
    );
    assert!(
        l.locate(&ServerLocation::new("missing.test"))
            .await
            .is_err()
    );
    task.abort();
}
