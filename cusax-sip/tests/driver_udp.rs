//! Two transaction layers talk through the real tokio driver over 127.0.0.1 UDP:
//! OPTIONS → 200, and an INVITE whose first response is lost on the way (a tiny UDP
//! relay drops it) and recovers by retransmission.
#![cfg(feature = "driver")]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cusax_sip::driver::{TransportConfig, Transports, step};
use cusax_sip::msg::{Method, Request, Response, SipMessage};
use cusax_sip::transaction::{
    Target, TimerConfig, TransactionEvent, TransactionLayer, Transport, new_branch,
};
use tokio::net::UdpSocket;

const LIMIT: Duration = Duration::from_secs(10);

fn timers() -> TimerConfig {
    TimerConfig {
        t1: Duration::from_millis(100),
        ..TimerConfig::default()
    }
}

fn request(method: &str, local: SocketAddr, remote: SocketAddr) -> Request {
    let branch = new_branch(&mut rand::rng());
    let text = format!(
        "{method} sip:bob@{remote} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@cusax.test>;tag=a-{branch}\r\n\
         To: <sip:bob@cusax.test>\r\n\
         Call-ID: {branch}@127.0.0.1\r\n\
         CSeq: 1 {method}\r\n\
         Contact: <sip:alice@{local}>\r\n\
         Content-Length: 0\r\n\r\n"
    );
    match SipMessage::parse(Bytes::from(text)).expect("parses") {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => unreachable!(),
    }
}

fn answer(req: &Request, status: u16, reason: &str) -> Response {
    let mut r = Response::new(status, reason);
    for via in req.headers.get_all("Via") {
        r.headers.push("Via", via);
    }
    for name in ["From", "Call-ID", "CSeq"] {
        r.headers.push(name, req.headers.get(name).expect("header"));
    }
    r.headers.push(
        "To",
        format!("{};tag=srv", req.headers.get("To").expect("To")),
    );
    r.headers.push("Content-Length", "0");
    r
}

/// A UAS that answers every request with `status`, forever.
async fn uas(mut transports: Transports, status: u16, acks: Arc<Mutex<usize>>) {
    let mut layer = TransactionLayer::new(timers());
    loop {
        step(&mut transports, &mut layer).await;
        while let Some(ev) = layer.poll_event() {
            if let TransactionEvent::Request { key, request, .. } = ev {
                let reason = if status == 200 { "OK" } else { "Busy Here" };
                layer
                    .send_response(Instant::now(), &key, answer(&request, status, reason))
                    .expect("answer");
            } else if let TransactionEvent::Ack { .. } = ev {
                *acks.lock().unwrap() += 1;
            }
        }
    }
}

/// Runs the client layer until it reports a final response for `key`.
async fn client_until_final(
    transports: &mut Transports,
    layer: &mut TransactionLayer,
) -> Vec<TransactionEvent> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + LIMIT;
    loop {
        assert!(Instant::now() < deadline, "no final response: {seen:?}");
        tokio::time::timeout(LIMIT, step(transports, layer))
            .await
            .expect("step");
        while let Some(ev) = layer.poll_event() {
            let done = matches!(&ev, TransactionEvent::Response { response, .. } if response.status >= 200)
                || matches!(&ev, TransactionEvent::Timeout { .. });
            seen.push(ev);
            if done {
                return seen;
            }
        }
    }
}

async fn bind() -> Transports {
    Transports::bind(TransportConfig::udp("127.0.0.1:0".parse().unwrap()))
        .await
        .expect("bind UDP on 127.0.0.1")
}

#[tokio::test]
async fn options_and_200_over_udp() {
    let server = bind().await;
    let server_addr = server.local_addr(Transport::Udp).unwrap();
    let acks = Arc::new(Mutex::new(0));
    let task = tokio::spawn(uas(server, 200, acks));

    let mut client = bind().await;
    let local = client.local_addr(Transport::Udp).unwrap();
    let mut layer = TransactionLayer::new(timers());
    let key = layer
        .send_request(
            Instant::now(),
            request("OPTIONS", local, server_addr),
            Target::new(Transport::Udp, server_addr),
        )
        .unwrap();
    let events = client_until_final(&mut client, &mut layer).await;
    match events.last() {
        Some(TransactionEvent::Response { key: k, response }) => {
            assert_eq!(*k, key);
            assert_eq!(response.status, 200);
            assert_eq!(response.headers.cseq().unwrap().method, Method::Options);
            // The server stamped received/rport on the Via it echoed (RFC 3581).
            let via = response.headers.top_via().unwrap();
            assert_eq!(via.rport(), Some(Some(local.port())));
        }
        other => panic!("unexpected {other:?}"),
    }
    task.abort();
}

/// Relays datagrams between one client and `server`, dropping the first datagram that
/// comes back from the server. Records the first line of everything forwarded.
async fn lossy_relay(socket: UdpSocket, server: SocketAddr, log: Arc<Mutex<Vec<String>>>) {
    let mut client: Option<SocketAddr> = None;
    let mut dropped = false;
    let mut buf = vec![0u8; 65_535];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            return;
        };
        let data = &buf[..n];
        let line = String::from_utf8_lossy(data)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        if from == server {
            if !dropped {
                dropped = true;
                log.lock().unwrap().push(format!("DROPPED {line}"));
                continue;
            }
            if let Some(c) = client {
                log.lock().unwrap().push(format!("S->C {line}"));
                let _ = socket.send_to(data, c).await;
            }
        } else {
            client = Some(from);
            log.lock().unwrap().push(format!("C->S {line}"));
            let _ = socket.send_to(data, server).await;
        }
    }
}

#[tokio::test]
async fn invite_recovers_from_a_lost_response_by_retransmission() {
    let server = bind().await;
    let server_addr = server.local_addr(Transport::Udp).unwrap();
    let acks = Arc::new(Mutex::new(0));
    let uas_task = tokio::spawn(uas(server, 486, acks.clone()));

    let relay = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let relay_addr = relay.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let relay_task = tokio::spawn(lossy_relay(relay, server_addr, log.clone()));

    let mut client = bind().await;
    let local = client.local_addr(Transport::Udp).unwrap();
    let mut layer = TransactionLayer::new(timers());
    let key = layer
        .send_request(
            Instant::now(),
            request("INVITE", local, relay_addr),
            Target::new(Transport::Udp, relay_addr),
        )
        .unwrap();
    let events = client_until_final(&mut client, &mut layer).await;
    match events.last() {
        Some(TransactionEvent::Response { key: k, response }) => {
            assert_eq!(*k, key);
            assert_eq!(response.status, 486);
        }
        other => panic!("unexpected {other:?}"),
    }
    // Flush the ACK the client transaction generated for the 486.
    while let Some(t) = layer.poll_transmit() {
        client.send(t).await;
    }
    // Wait until the relay has forwarded the ACK.
    let deadline = Instant::now() + LIMIT;
    loop {
        if log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with("C->S ACK "))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no ACK: {:?}",
            log.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let log = log.lock().unwrap().clone();
    assert!(log[0].starts_with("C->S INVITE "), "{log:?}");
    assert!(
        log.iter().any(|l| l.starts_with("DROPPED SIP/2.0 486")),
        "{log:?}"
    );
    assert!(
        log.iter().any(|l| l.starts_with("S->C SIP/2.0 486")),
        "{log:?}"
    );
    // The ACK for a non-2xx is absorbed by the server transaction, never given to the TU.
    assert_eq!(*acks.lock().unwrap(), 0);
    // Exactly one final response reached the client's TU.
    let finals = events
        .iter()
        .filter(
            |e| matches!(e, TransactionEvent::Response { response, .. } if response.status >= 200),
        )
        .count();
    assert_eq!(finals, 1);
    uas_task.abort();
    relay_task.abort();
}

/// `run` drives a core until told to stop: a bare transaction layer as UAS still
/// sends `100 Trying` for an INVITE its TU never answers (RFC 3261 §17.2.1).
#[tokio::test]
async fn run_drives_a_core_until_stopped() {
    let mut server = bind().await;
    let server_addr = server.local_addr(Transport::Udp).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut layer = TransactionLayer::new(timers());
        cusax_sip::driver::run(&mut server, &mut layer, async {
            let _ = stop_rx.await;
        })
        .await;
        layer.len()
    });
    let mut client = bind().await;
    let local = client.local_addr(Transport::Udp).unwrap();
    let mut layer = TransactionLayer::new(timers());
    let key = layer
        .send_request(
            Instant::now(),
            request("INVITE", local, server_addr),
            Target::new(Transport::Udp, server_addr),
        )
        .unwrap();
    let deadline = Instant::now() + LIMIT;
    'outer: loop {
        assert!(Instant::now() < deadline, "no 100 Trying");
        tokio::time::timeout(LIMIT, step(&mut client, &mut layer))
            .await
            .expect("step");
        while let Some(ev) = layer.poll_event() {
            if let TransactionEvent::Response { key: k, response } = ev {
                assert_eq!(k, key);
                assert_eq!(response.status, 100);
                break 'outer;
            }
        }
    }
    stop_tx.send(()).unwrap();
    let live = tokio::time::timeout(LIMIT, task)
        .await
        .expect("run stopped")
        .unwrap();
    assert_eq!(
        live, 1,
        "the unanswered INVITE server transaction is still there"
    );
}
