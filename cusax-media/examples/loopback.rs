//! Offline loopback: negotiates SDES-SRTP/Opus between two sans-IO sessions, sends a WAV
//! (or a generated 440 Hz tone) from one to the other over a simulated network with loss
//! and jitter, and writes what the receiver plays out.
//!
//! `cargo run -p cusax-media --example loopback -- [in.wav] [out.wav] [loss%] [jitter_ms]`
//! (mono 16-bit input; defaults: tone, /tmp/cusax-loopback.wav, 5 %, 40 ms)

use std::time::{Duration, Instant};

use cusax_media::sdp::SessionDescription;
use cusax_media::sdp::offer_answer::{MediaConfig, OfferAnswer};
use cusax_media::session::{Input, MediaSession, Output, SessionConfig};
use cusax_media::wav::Wav;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let input = match args.first().filter(|a| !a.is_empty() && *a != "-") {
        Some(path) => Wav::parse(&std::fs::read(path)?)?,
        None => Wav {
            rate: 48000,
            channels: 1,
            samples: (0..96000)
                .map(|i| {
                    ((i as f64 * 440.0 * std::f64::consts::TAU / 48000.0).sin() * 8000.0) as i16
                })
                .collect(),
        },
    };
    if input.channels != 1 {
        return Err("mono input only".into());
    }
    let out_path = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "/tmp/cusax-loopback.wav".into());
    let loss: f64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5.0) / 100.0;
    let jitter: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(40);

    // Offer/answer through SDP text, as a SIP stack would carry it.
    let mut rng = StdRng::seed_from_u64(7);
    let (a_addr, b_addr) = ("192.0.2.1:40000".parse()?, "192.0.2.2:50000".parse()?);
    let mut alice = OfferAnswer::new(MediaConfig::new(a_addr), &mut rng);
    let mut bob = OfferAnswer::new(MediaConfig::new(b_addr), &mut rng);
    let offer = SessionDescription::parse(alice.create_offer(true)?.to_string().as_bytes())?;
    let (answer, nb) = bob.answer_offer(&offer, true)?;
    let na = alice.accept_answer(&answer, true)?;
    println!(
        "negotiated {} / {:?}",
        na.audio.send_codec.name, na.security
    );

    let mut ca = SessionConfig::new(na.audio, rng.random(), rng.random());
    ca.app_rate = input.rate;
    let mut cb = SessionConfig::new(nb.audio, rng.random(), rng.random());
    cb.app_rate = input.rate;
    let (mut a, mut b) = (MediaSession::new(ca)?, MediaSession::new(cb)?);

    let frame = input.rate as usize / 50;
    let mut in_flight: Vec<(Instant, Vec<u8>)> = Vec::new();
    let mut played = Vec::with_capacity(input.samples.len());
    let t0 = Instant::now();
    for (k, chunk) in input.samples.chunks(frame).enumerate() {
        let now = t0 + Duration::from_millis(20 * k as u64);
        a.push_pcm(now, chunk)?;
        while let Some(o) = a.poll_output() {
            match o {
                Output::Transmit { data, .. } if !rng.random_bool(loss) => {
                    in_flight.push((
                        now + Duration::from_millis(rng.random_range(0..=jitter)),
                        data,
                    ));
                }
                Output::Transmit { .. } => {}
                _ => break,
            }
        }
        in_flight.sort_by_key(|p| p.0);
        while in_flight.first().is_some_and(|p| p.0 <= now) {
            let (_, data) = in_flight.remove(0);
            b.handle_input(
                now,
                Input::Datagram {
                    data: &data,
                    source: a_addr,
                },
            );
        }
        let mut out = vec![0i16; chunk.len()];
        b.pull_pcm(now, &mut out);
        played.extend_from_slice(&out);
        while let Some(o) = b.poll_output() {
            if matches!(o, Output::Timeout(_)) {
                break;
            }
        }
    }
    std::fs::write(
        &out_path,
        Wav {
            rate: input.rate,
            channels: 1,
            samples: played,
        }
        .to_bytes(),
    )?;
    println!("wrote {out_path}; receiver stats: {:#?}", b.stats());
    Ok(())
}
