//! Media benchmarks, ours beside a baseline in the same run (harness = false):
//!
//! 1. SRTP protect + unprotect of 160-byte payloads: our RTP path (`RtpHeader::write` →
//!    `SrtpSession::protect_rtp` → `unprotect_rtp` → `RtpPacket::parse`) vs bare
//!    `webrtc_srtp::context::Context` on a prebuilt packet (both with replay protection),
//!    and libsrtp2 through the C harness `benches/libsrtp_bench.c`, compiled at run time
//!    with the system `cc` and `-lsrtp2` when both are present (no build script, no FFI:
//!    cusax crates forbid unsafe code).
//! 2. Opus 20 ms mono 48 kHz encode + decode through `codec::AudioEncoder/AudioDecoder`
//!    vs the raw `opus` crate with the same settings.
//! 3. The whole per-frame pipeline (push_pcm → SRTP → handle_input → jitter → pull_pcm)
//!    for Opus and PCMU, as time per 20 ms frame and share of the real-time budget.
//!
//! Run: `cargo bench -p cusax-media --bench media`; one workload only (for callgrind):
//! `<bench binary> --only opus-encode-ours 200` or `--only srtp-gcm-ours 200` (see [`only`]).

use std::collections::HashMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cusax_media::codec::{AudioDecoder, AudioEncoder};
use cusax_media::keying::sdes::{MasterKey, SrtpSuite};
use cusax_media::rtp::{RtpHeader, RtpPacket};
use cusax_media::sdp::SessionDescription;
use cusax_media::sdp::offer_answer::{AudioCodec, CodecSpec, MediaConfig, OfferAnswer};
use cusax_media::session::{Input, MediaSession, Output, SessionConfig};
use cusax_media::srtp::{SrtpSession, profile};
use rand::SeedableRng;
use webrtc_srtp::context::Context;
use webrtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};

const RUNS: usize = 7;

fn time(iters: u32, base: u32, f: &mut impl FnMut(u32)) -> Duration {
    let t = Instant::now();
    for i in 0..iters {
        f(base.wrapping_add(i));
    }
    t.elapsed() / iters
}

/// Median over RUNS of the time per iteration of `f` run `iters` times.
fn measure(iters: u32, mut f: impl FnMut(u32)) -> Duration {
    let mut v: Vec<Duration> = (0..RUNS as u32)
        .map(|r| time(iters, r * iters, &mut f))
        .collect();
    v.sort();
    v[RUNS / 2]
}

/// Like [`measure`] for two functions, alternating their runs so that load changes on a
/// shared machine hit both alike. Returns (median of a, median of b).
fn measure_pair(
    iters: u32,
    mut a: impl FnMut(u32),
    mut b: impl FnMut(u32),
) -> (Duration, Duration) {
    let (mut va, mut vb) = (Vec::new(), Vec::new());
    for r in 0..RUNS as u32 {
        va.push(time(iters, r * iters, &mut a));
        vb.push(time(iters, r * iters, &mut b));
    }
    va.sort();
    vb.sort();
    (va[RUNS / 2], vb[RUNS / 2])
}

fn key(suite: SrtpSuite, s: u8) -> MasterKey {
    MasterKey {
        key: (0..suite.key_len() as u8)
            .map(|i| i.wrapping_mul(7) ^ s)
            .collect(),
        salt: (0..suite.salt_len() as u8)
            .map(|i| i.wrapping_mul(13) ^ s)
            .collect(),
    }
}

/// libsrtp2 figures per profile name: `Some(ns per protect+unprotect pair)`, or `None`
/// with the harness's reason when libsrtp2 rejects that profile.
type LibsrtpFigures = HashMap<String, Result<u64, String>>;

/// Compiles `benches/libsrtp_bench.c` with the system C compiler against libsrtp2 into a
/// temporary directory and runs it with `iters` pairs per run and [`RUNS`] runs.
/// `Err(reason)` when `cc`, the library or its headers are missing or the harness fails.
fn libsrtp_figures(iters: u32) -> Result<LibsrtpFigures, String> {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/libsrtp_bench.c");
    let dir = std::env::temp_dir().join(format!("cusax-libsrtp-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let exe = dir.join("libsrtp_bench");
    let result = compile_and_run(&src, &exe, iters);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn compile_and_run(src: &Path, exe: &Path, iters: u32) -> Result<LibsrtpFigures, String> {
    let cc = Command::new("cc")
        .arg("-O2")
        .arg("-o")
        .arg(exe)
        .arg(src)
        .arg("-lsrtp2")
        .output()
        .map_err(|e| format!("cannot run cc: {e}"))?;
    if !cc.status.success() {
        let err = String::from_utf8_lossy(&cc.stderr);
        let first = err.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        return Err(format!(
            "cc failed ({}), is libsrtp2-dev installed? {first}",
            cc.status
        ));
    }
    let run = Command::new(exe)
        .arg(iters.to_string())
        .arg(RUNS.to_string())
        .output()
        .map_err(|e| format!("cannot run the harness: {e}"))?;
    if !run.status.success() {
        return Err(format!(
            "harness failed ({}): {}",
            run.status,
            String::from_utf8_lossy(&run.stderr).trim()
        ));
    }
    let mut figures = HashMap::new();
    for line in String::from_utf8_lossy(&run.stdout).lines() {
        let mut parts = line.splitn(3, ' ');
        let (Some(name), Some(value)) = (parts.next(), parts.next()) else {
            continue;
        };
        let figure = match value.parse::<u64>() {
            Ok(ns) => Ok(ns),
            Err(_) => Err(parts.next().unwrap_or(value).to_string()),
        };
        figures.insert(name.to_string(), figure);
    }
    Ok(figures)
}

/// One SRTP protect+unprotect pair through our RTP path: `RtpHeader::write` →
/// `SrtpSession::protect_rtp` → `unprotect_rtp` → `RtpPacket::parse` (what
/// `MediaSession` does per packet), on sessions with replay protection inbound.
struct SrtpOurs {
    payload: [u8; 160],
    buf: Vec<u8>,
    tx: SrtpSession,
    rx: SrtpSession,
}

impl SrtpOurs {
    fn new(suite: SrtpSuite) -> Self {
        let (k1, k2) = (key(suite, 1), key(suite, 2));
        SrtpOurs {
            payload: [0x5a; 160],
            buf: Vec::with_capacity(200),
            tx: SrtpSession::new(suite, &k1, &k2).unwrap(),
            rx: SrtpSession::new(suite, &k2, &k1).unwrap(),
        }
    }
    fn step(&mut self, i: u32) {
        self.buf.clear();
        RtpHeader {
            payload_type: 0,
            sequence: i as u16,
            timestamp: i.wrapping_mul(160),
            ssrc: 7,
            ..Default::default()
        }
        .write(black_box(&self.payload), 0, &mut self.buf);
        let p = self.tx.protect_rtp(&self.buf).unwrap();
        let plain = self.rx.unprotect_rtp(&p).unwrap();
        black_box(RtpPacket::parse(&plain).unwrap().payload.len());
    }
}

/// One SRTP protect+unprotect pair on bare `webrtc_srtp::context::Context`s (replay
/// protection inbound, as ours): a prebuilt packet where only the sequence number changes.
struct SrtpBare {
    pkt: Vec<u8>,
    tx: Context,
    rx: Context,
}

impl SrtpBare {
    fn new(suite: SrtpSuite) -> Self {
        let k1 = key(suite, 1);
        let prof = profile(suite);
        let mut pkt = Vec::new();
        RtpHeader {
            payload_type: 0,
            ssrc: 7,
            ..Default::default()
        }
        .write(&[0x5a; 160], 0, &mut pkt);
        SrtpBare {
            pkt,
            tx: Context::new(&k1.key, &k1.salt, prof, None, None).unwrap(),
            rx: Context::new(
                &k1.key,
                &k1.salt,
                prof,
                Some(srtp_replay_protection(128)),
                Some(srtcp_replay_protection(128)),
            )
            .unwrap(),
        }
    }
    fn step(&mut self, i: u32) {
        self.pkt[2..4].copy_from_slice(&(i as u16).to_be_bytes());
        let p = self.tx.encrypt_rtp(black_box(&self.pkt)).unwrap();
        black_box(self.rx.decrypt_rtp(&p).unwrap().len());
    }
}

/// The short names of the suites in `--only` workload names.
fn suite_short(suite: SrtpSuite) -> &'static str {
    match suite {
        SrtpSuite::AesCm128HmacSha1_80 => "cm80",
        SrtpSuite::AesCm128HmacSha1_32 => "cm32",
        SrtpSuite::AeadAes128Gcm => "gcm",
        _ => "other",
    }
}

fn srtp_bench() {
    println!("## 1. SRTP protect+unprotect, 160-byte payload (median of {RUNS} runs)");
    let iters = 40_000;
    // libsrtp2 runs first, in its own process (it cannot alternate with our runs).
    let libsrtp = libsrtp_figures(iters);
    println!(
        "{:<26} {:>12} {:>14} {:>8} {:>16} {:>10}",
        "suite", "ours ns/pkt", "webrtc ns/pkt", "ratio", "libsrtp2 ns/pkt", "ratio"
    );
    for suite in SrtpSuite::ALL {
        let mut ours_w = SrtpOurs::new(suite);
        let mut bare_w = SrtpBare::new(suite);
        let ours_f = |i: u32| ours_w.step(i);
        let base_f = |i: u32| bare_w.step(i);
        let (ours, base) = measure_pair(iters, ours_f, base_f);
        let (lib, lib_ratio) = match libsrtp.as_ref().map(|f| f.get(suite.name())) {
            Ok(Some(Ok(ns))) => (
                ns.to_string(),
                format!("{:.2}x", *ns as f64 / ours.as_nanos().max(1) as f64),
            ),
            _ => ("n/a".to_string(), "-".to_string()),
        };
        println!(
            "{:<26} {:>12} {:>14} {:>7.2}x {:>16} {:>10}",
            suite.name(),
            ours.as_nanos(),
            base.as_nanos(),
            base.as_secs_f64() / ours.as_secs_f64(),
            lib,
            lib_ratio
        );
    }
    println!("(ratio = baseline time / our time: ≥ 1.0 means ours is as fast; target ≥ 0.9)");
    match &libsrtp {
        Ok(figures) => {
            println!("(libsrtp2: system library via benches/libsrtp_bench.c, cc -O2 -lsrtp2)");
            let mut missing: Vec<_> = figures
                .iter()
                .filter_map(|(name, f)| f.as_ref().err().map(|why| format!("{name}: {why}")))
                .collect();
            missing.extend(
                SrtpSuite::ALL
                    .iter()
                    .filter(|s| !figures.contains_key(s.name()))
                    .map(|s| format!("{}: not reported by the harness", s.name())),
            );
            missing.sort();
            for m in missing {
                println!("libsrtp2 n/a for {m}");
            }
        }
        Err(why) => println!("libsrtp2: unavailable ({why})"),
    }
    println!();
}

/// Opus encode/decode, ours (`codec::AudioEncoder/AudioDecoder`) and raw (`opus` crate,
/// same settings), each as one step on prepared state.
struct OpusWork {
    pcm: Vec<i16>,
    packet: Vec<u8>,
    enc: AudioEncoder,
    out: Vec<u8>,
    raw: opus::Encoder,
    rbuf: Vec<u8>,
    dec: AudioDecoder,
    dout: Vec<i16>,
    rdec: opus::Decoder,
    rout: Vec<i16>,
}

impl OpusWork {
    fn new() -> Self {
        let spec = CodecSpec {
            pt: 111,
            name: "opus".into(),
            clock_rate: 48000,
            channels: 2,
            fmtp: Some("useinbandfec=1".into()),
        };
        let pcm: Vec<i16> = (0..960)
            .map(|i| ((i as f64 * 0.0576).sin() * 8000.0) as i16)
            .collect();
        let mut enc = AudioEncoder::new(&spec, 48000).unwrap();
        let packet = {
            let mut p = Vec::new();
            enc.encode(&pcm, &mut p).unwrap();
            p
        };
        let mut raw =
            opus::Encoder::new(48000, opus::Channels::Mono, opus::Application::Voip).unwrap();
        raw.set_inband_fec(true).unwrap();
        raw.set_packet_loss_perc(10).unwrap();
        OpusWork {
            pcm,
            packet,
            enc,
            out: Vec::with_capacity(1500),
            raw,
            rbuf: vec![0u8; 1500],
            dec: AudioDecoder::new(&spec, 48000).unwrap(),
            dout: Vec::with_capacity(5760),
            rdec: opus::Decoder::new(48000, opus::Channels::Mono).unwrap(),
            rout: vec![0i16; 5760],
        }
    }
    fn encode_ours(&mut self) {
        self.out.clear();
        self.enc
            .encode(black_box(&self.pcm), &mut self.out)
            .unwrap();
        black_box(self.out.len());
    }
    fn encode_raw(&mut self) {
        black_box(
            self.raw
                .encode(black_box(&self.pcm), &mut self.rbuf)
                .unwrap(),
        );
    }
    fn decode_ours(&mut self) {
        self.dout.clear();
        black_box(
            self.dec
                .decode(black_box(&self.packet), &mut self.dout)
                .unwrap(),
        );
    }
    fn decode_raw(&mut self) {
        black_box(
            self.rdec
                .decode(black_box(&self.packet), &mut self.rout, false)
                .unwrap(),
        );
    }
}

fn opus_bench() {
    println!("## 2. Opus 20 ms mono 48 kHz, VoIP, FEC on (median of {RUNS} runs)");
    let iters = 1500;
    let w = std::cell::RefCell::new(OpusWork::new());
    let (ours_enc, raw_enc) = measure_pair(
        iters,
        |_| w.borrow_mut().encode_ours(),
        |_| w.borrow_mut().encode_raw(),
    );
    let (ours_dec, raw_dec) = measure_pair(
        iters * 4,
        |_| w.borrow_mut().decode_ours(),
        |_| w.borrow_mut().decode_raw(),
    );
    println!(
        "{:<10} {:>12} {:>12} {:>10}",
        "op", "ours µs", "raw µs", "overhead"
    );
    for (name, o, r) in [("encode", ours_enc, raw_enc), ("decode", ours_dec, raw_dec)] {
        println!(
            "{:<10} {:>12.2} {:>12.2} {:>9.1}%",
            name,
            o.as_secs_f64() * 1e6,
            r.as_secs_f64() * 1e6,
            (o.as_secs_f64() / r.as_secs_f64() - 1.0) * 100.0
        );
    }
    println!("(target overhead ≤ 5%; wall clock on a shared machine is noisy: see `--only`)\n");
}

/// `--only <workload> <n>`: runs one workload `n` times and exits, for load-independent
/// instruction counts, e.g. `valgrind --tool=callgrind <bench binary> --only
/// opus-encode-ours 200`; the cost of one operation is the difference between two runs
/// with different `n`, divided by the difference of `n` (setup cancels out).
///
/// Workloads: `opus-encode-ours`, `opus-encode-raw`, `opus-decode-ours`,
/// `opus-decode-raw` (one 20 ms frame), and `srtp-<suite>-ours` / `srtp-<suite>-bare`
/// with `<suite>` one of `gcm`, `cm80`, `cm32` (one SRTP protect+unprotect pair of a
/// 160-byte payload, exactly the step section 1 times), and `pipeline-opus` /
/// `pipeline-pcmu` (one 20 ms frame through the section 3 pipeline).
fn only(which: &str, n: u64) -> Result<(), String> {
    let pipeline = match which {
        "pipeline-opus" => Some(Pipeline::opus as fn() -> Pipeline),
        "pipeline-pcmu" => Some(Pipeline::pcmu as fn() -> Pipeline),
        _ => None,
    };
    if let Some(make) = pipeline {
        let mut p = make();
        (0..n).for_each(|_| p.step());
        return Ok(());
    }
    if let Some(rest) = which.strip_prefix("srtp-") {
        let (short, side) = rest
            .rsplit_once('-')
            .ok_or_else(|| format!("unknown workload {which:?}"))?;
        let suite = SrtpSuite::ALL
            .into_iter()
            .find(|s| suite_short(*s) == short)
            .ok_or_else(|| format!("unknown SRTP suite {short:?} (gcm, cm80, cm32)"))?;
        match side {
            "ours" => {
                let mut w = SrtpOurs::new(suite);
                (0..n).for_each(|i| w.step(i as u32));
            }
            "bare" => {
                let mut w = SrtpBare::new(suite);
                (0..n).for_each(|i| w.step(i as u32));
            }
            other => return Err(format!("unknown side {other:?} (ours, bare)")),
        }
        return Ok(());
    }
    let mut w = OpusWork::new();
    let step: fn(&mut OpusWork) = match which {
        "opus-encode-ours" => OpusWork::encode_ours,
        "opus-encode-raw" => OpusWork::encode_raw,
        "opus-decode-ours" => OpusWork::decode_ours,
        "opus-decode-raw" => OpusWork::decode_raw,
        other => return Err(format!("unknown workload {other:?}")),
    };
    for _ in 0..n {
        step(&mut w);
    }
    Ok(())
}

fn pair(codecs: Vec<AudioCodec>) -> (MediaSession, MediaSession) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut ca = MediaConfig::new("192.0.2.1:4000".parse().unwrap());
    ca.codecs = codecs;
    let mut a = OfferAnswer::new(ca, &mut rng);
    let mut b = OfferAnswer::new(
        MediaConfig::new("192.0.2.2:5000".parse().unwrap()),
        &mut rng,
    );
    let offer =
        SessionDescription::parse(a.create_offer(true).unwrap().to_string().as_bytes()).unwrap();
    let (ans, nb) = b.answer_offer(&offer, true).unwrap();
    let na = a.accept_answer(&ans, true).unwrap();
    (
        MediaSession::new(SessionConfig::new(na.audio, 1, 1)).unwrap(),
        MediaSession::new(SessionConfig::new(nb.audio, 2, 2)).unwrap(),
    )
}

/// One 20 ms frame through two `MediaSession`s negotiated with SDES-SRTP (AEAD-GCM):
/// `push_pcm` on the sender, its datagrams into the receiver's `handle_input`, then
/// `pull_pcm` (jitter buffer, decode) on the receiver.
struct Pipeline {
    a: MediaSession,
    b: MediaSession,
    pcm: Vec<i16>,
    out: Vec<i16>,
    t0: Instant,
    src: std::net::SocketAddr,
    k: u64,
}

impl Pipeline {
    fn new(codecs: Vec<AudioCodec>) -> Self {
        let (a, b) = pair(codecs);
        Pipeline {
            a,
            b,
            pcm: (0..960)
                .map(|i| ((i as f64 * 0.0576).sin() * 8000.0) as i16)
                .collect(),
            out: vec![0i16; 960],
            t0: Instant::now(),
            src: "192.0.2.1:4000".parse().unwrap(),
            k: 0,
        }
    }
    fn opus() -> Self {
        Self::new(vec![AudioCodec::Opus {
            fec: true,
            max_average_bitrate: None,
        }])
    }
    fn pcmu() -> Self {
        Self::new(vec![AudioCodec::Pcmu])
    }
    fn step(&mut self) {
        self.k += 1;
        let now = self.t0 + Duration::from_millis(20 * self.k);
        self.a.push_pcm(now, &self.pcm).unwrap();
        while let Some(o) = self.a.poll_output() {
            match o {
                Output::Transmit { data, .. } => self.b.handle_input(
                    now,
                    Input::Datagram {
                        data: &data,
                        source: self.src,
                    },
                ),
                _ => break,
            }
        }
        black_box(self.b.pull_pcm(now, &mut self.out));
        while let Some(o) = self.b.poll_output() {
            if matches!(o, Output::Timeout(_)) {
                break;
            }
        }
    }
}

fn pipeline_bench() {
    println!(
        "## 3. Per-frame pipeline: push_pcm → SRTP (AEAD-GCM) → handle_input → jitter → pull_pcm"
    );
    println!(
        "{:<8} {:>14} {:>18}",
        "codec", "µs per frame", "share of 20 ms"
    );
    for (name, make) in [
        ("Opus", Pipeline::opus as fn() -> Pipeline),
        ("PCMU", Pipeline::pcmu),
    ] {
        let mut p = make();
        let d = measure(1000, |_| p.step());
        println!(
            "{:<8} {:>14.1} {:>17.2}%",
            name,
            d.as_secs_f64() * 1e6,
            d.as_secs_f64() / 0.020 * 100.0
        );
    }
    println!();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return; // `cargo test --benches` / `cargo bench -- --list` probe
    }
    if let Some(i) = args.iter().position(|a| a == "--only") {
        let which = args.get(i + 1).map(String::as_str).unwrap_or("");
        let n = args.get(i + 2).and_then(|n| n.parse().ok()).unwrap_or(200);
        if let Err(e) = only(which, n) {
            eprintln!("{e}");
            std::process::exit(2);
        }
        return;
    }
    srtp_bench();
    opus_bench();
    pipeline_bench();
}
