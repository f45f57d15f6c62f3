//! Backpressure at the `Client` level: a peer floods a `ua::client::Client` with MESSAGE
//! requests over one TCP connection while the application reads no events. The client
//! task must stop reading the network (the peer sees its answers stop well before all
//! requests are answered, and TCP flow control holds the rest), and once the
//! application drains its events every MESSAGE arrives, once and in order, and every
//! one is answered: nothing is lost, not even when the answers outrun the connection's
//! small send queue.
#![cfg(feature = "driver")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cusax_sip::driver::TransportConfig;
use cusax_sip::endpoint::{EndpointConfig, SipEvent};
use cusax_sip::transaction::Transport;
use cusax_sip::ua::client::Client;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// More MESSAGEs than the client buffers for an application that is not reading.
const N: usize = 4000;

fn message(n: usize, peer: SocketAddr, to: SocketAddr) -> String {
    let body = format!("m{n}");
    format!(
        "MESSAGE sip:alice@{to};transport=tcp SIP/2.0\r\n\
         Via: SIP/2.0/TCP {peer};branch=z9hG4bKbp{n}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:bob@cusax.test>;tag=bp{n}\r\n\
         To: <sip:alice@cusax.test>\r\n\
         Call-ID: bp{n}@cusax.test\r\n\
         CSeq: 1 MESSAGE\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Counts `SIP/2.0 200 ` start lines in what the client sends back.
async fn count_ok(mut read: tokio::net::tcp::OwnedReadHalf, oks: Arc<AtomicUsize>) {
    const NEEDLE: &[u8] = b"SIP/2.0 200 ";
    let mut carry: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match read.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        carry.extend_from_slice(buf.get(..n).unwrap_or_default());
        let found = carry.windows(NEEDLE.len()).filter(|w| *w == NEEDLE).count();
        oks.fetch_add(found, Ordering::SeqCst);
        // Keep a tail shorter than the needle: a start line split across reads is
        // counted once, with the next read.
        let keep = carry.len().min(NEEDLE.len() - 1);
        carry.drain(..carry.len() - keep);
    }
}

/// Waits until `oks` has not moved for `still`, at most `limit`; returns its value.
async fn settle(oks: &AtomicUsize, still: Duration, limit: Duration) -> usize {
    let end = tokio::time::Instant::now() + limit;
    let mut last = oks.load(Ordering::SeqCst);
    let mut since = tokio::time::Instant::now();
    while tokio::time::Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = oks.load(Ordering::SeqCst);
        if now != last {
            last = now;
            since = tokio::time::Instant::now();
        } else if last > 0 && since.elapsed() >= still {
            break;
        }
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_stops_reading_while_the_application_is_behind_and_loses_nothing() {
    let local = SocketAddr::from(([127, 0, 0, 1], 0));
    let config = EndpointConfig::insecure(local, Transport::Tcp);
    // A tiny per-connection send queue: when the application catches up, the client
    // answers faster than one connection writes, and the answers must wait for room
    // rather than fail.
    let transports = TransportConfig {
        tcp_listen: Some(local),
        tls: None,
        connection_queue: 4,
        ..TransportConfig::default()
    };
    let mut client = Client::start_with(config, Some(transports))
        .await
        .expect("start");
    let to = client.local_addr();
    let stream = TcpStream::connect(to).await.expect("connect");
    let peer = stream.local_addr().expect("peer addr");
    let (read, mut write) = stream.into_split();
    let oks = Arc::new(AtomicUsize::new(0));
    let reader = tokio::spawn(count_ok(read, oks.clone()));
    let writer = tokio::spawn(async move {
        for n in 0..N {
            write
                .write_all(message(n, peer, to).as_bytes())
                .await
                .expect("write");
        }
        // Keep the connection open (dropping the write half would half-close it).
        write
    });

    // The application reads nothing: the answers stop well short of N.
    let stalled = settle(&oks, Duration::from_secs(2), Duration::from_secs(60)).await;
    assert!(stalled > 0, "the client answered nothing");
    assert!(
        stalled < N,
        "the client kept reading while its application read no events ({stalled} of {N} answered)"
    );
    eprintln!("answered {stalled} of {N} before the client stopped reading");

    // The application catches up: every MESSAGE, once, in order.
    for n in 0..N {
        let ev = client
            .next_event_timeout(Duration::from_secs(20))
            .await
            .unwrap_or_else(|| panic!("MESSAGE {n} of {N} missing"));
        match ev {
            SipEvent::MessageReceived { body, .. } => {
                assert_eq!(body.as_ref(), format!("m{n}").as_bytes(), "out of order");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let end = tokio::time::Instant::now() + Duration::from_secs(30);
    while oks.load(Ordering::SeqCst) < N && tokio::time::Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A moment more: a duplicate answer would show up now.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(oks.load(Ordering::SeqCst), N, "every MESSAGE answered once");
    assert!(
        client
            .next_event_timeout(Duration::from_millis(200))
            .await
            .is_none(),
        "no duplicate events"
    );
    let _write = writer.await.expect("writer");
    reader.abort();
}
