//! Two tokio UDP drivers on 127.0.0.1 run a real-time SRTP/Opus call for one second.
#![cfg(feature = "driver")]

mod common;

use std::time::{Duration, Instant};

use common::*;
use cusax_media::codec::goertzel_power;
use cusax_media::driver::UdpDriver;
use cusax_media::sdp::offer_answer::MediaConfig;
use cusax_media::session::{MediaEvent, SessionConfig};

#[tokio::test]
async fn loopback_call_over_udp() {
    // Reserve two free ports, then negotiate with them.
    let pa = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let pb = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let (aa, ab) = (pa.local_addr().unwrap(), pb.local_addr().unwrap());
    drop((pa, pb));
    let (_, _, na, nb) = negotiate(MediaConfig::new(aa), MediaConfig::new(ab), 42);
    let mut a = UdpDriver::bind(SessionConfig::new(na.audio, 0xa, 1), aa, None)
        .await
        .unwrap();
    let mut b = UdpDriver::bind(SessionConfig::new(nb.audio, 0xb, 2), ab, None)
        .await
        .unwrap();
    let mut heard = Vec::new();
    let start = Instant::now();
    for k in 0..60usize {
        let tick = start + Duration::from_millis(20 * (k as u64 + 1));
        a.push_pcm(&sine(48000, 440.0, k * 960, 960)).await.unwrap();
        b.push_pcm(&sine(48000, 700.0, k * 960, 960)).await.unwrap();
        let mut out = vec![0i16; 960];
        b.pull_pcm(&mut out);
        heard.extend_from_slice(&out);
        let (ra, rb) = tokio::join!(a.drive_until(tick), b.drive_until(tick));
        ra.unwrap();
        rb.unwrap();
        a.pull_pcm(&mut out);
    }
    a.send_dtmf('7', Duration::from_millis(60)).unwrap();
    for k in 60..70usize {
        a.push_pcm(&sine(48000, 440.0, k * 960, 960)).await.unwrap();
        let tick = Instant::now() + Duration::from_millis(20);
        b.drive_until(tick).await.unwrap();
    }
    let tail = &heard[heard.len() - 24000..];
    let p440 = goertzel_power(tail, 48000, 440.0);
    eprintln!(
        "p440 {p440:e} p700 {:e} p1000 {:e} stats {:?}",
        goertzel_power(tail, 48000, 700.0),
        goertzel_power(tail, 48000, 1000.0),
        b.session_mut().stats()
    );
    assert!(p440 > 20.0 * goertzel_power(tail, 48000, 700.0));
    assert!(p440 > 20.0 * goertzel_power(tail, 48000, 1000.0));
    let sb = b.session_mut().stats();
    assert!(sb.packets_received >= 50, "{sb:?}");
    let ev = b.take_events();
    assert!(
        ev.iter()
            .any(|e| matches!(e, MediaEvent::Dtmf(d) if d.digit == Some('7'))),
        "{ev:?}"
    );
    a.close().await.unwrap();
    b.drive_until(Instant::now() + Duration::from_millis(50))
        .await
        .unwrap();
    assert!(b.take_events().contains(&MediaEvent::Bye { reason: None }));
}
