//! Audio codecs: G.711 (own code), Opus (libopus via the `opus` crate), resampling.
//!
//! [`AudioEncoder`] / [`AudioDecoder`] pick the implementation from a negotiated
//! [`CodecSpec`]. PCM is mono i16 at [`AudioEncoder::pcm_rate`]; the RTP clock rate may
//! differ (Opus: always 48 kHz on the wire).

pub mod g711;
pub mod opus;
pub mod resample;

use crate::sdp::offer_answer::CodecSpec;

/// Codec failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The codec is not one we implement (negotiation should have prevented this).
    #[error("unsupported codec {0}")]
    Unsupported(String),
    /// libopus reported an error.
    #[error("opus: {0}")]
    Opus(String),
    /// Empty or undecodable payload (peer's fault).
    #[error("malformed payload")]
    Malformed,
}

/// Which codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodecKind {
    /// G.711 µ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
    /// Opus.
    Opus,
}

impl CodecKind {
    /// From an encoding name.
    pub fn from_spec(spec: &CodecSpec) -> Result<Self, CodecError> {
        match spec.name.to_ascii_lowercase().as_str() {
            "pcmu" => Ok(CodecKind::Pcmu),
            "pcma" => Ok(CodecKind::Pcma),
            "opus" => Ok(CodecKind::Opus),
            _ => Err(CodecError::Unsupported(spec.name.clone())),
        }
    }
}

/// The PCM rate a codec runs at given the app's rate: G.711 8 kHz; Opus the app rate when
/// libopus supports it, else 48 kHz.
pub fn pcm_rate_for(kind: CodecKind, app_rate: u32) -> u32 {
    match kind {
        CodecKind::Pcmu | CodecKind::Pcma => 8000,
        CodecKind::Opus if opus::OPUS_RATES.contains(&app_rate) => app_rate,
        CodecKind::Opus => 48000,
    }
}

/// An encoder for the negotiated send codec.
#[derive(Debug)]
pub enum AudioEncoder {
    /// µ-law.
    Pcmu,
    /// A-law.
    Pcma,
    /// Opus.
    Opus(opus::OpusEncoder),
}

impl AudioEncoder {
    /// Builds the encoder; Opus FEC and bitrate follow the peer's fmtp (`useinbandfec`,
    /// `maxaveragebitrate`, RFC 7587 §6.1).
    pub fn new(spec: &CodecSpec, app_rate: u32) -> Result<Self, CodecError> {
        let kind = CodecKind::from_spec(spec)?;
        Ok(match kind {
            CodecKind::Pcmu => AudioEncoder::Pcmu,
            CodecKind::Pcma => AudioEncoder::Pcma,
            CodecKind::Opus => {
                let fec = spec.fmtp_param("useinbandfec") == Some("1");
                let br = spec
                    .fmtp_param("maxaveragebitrate")
                    .and_then(|b| b.parse().ok());
                AudioEncoder::Opus(opus::OpusEncoder::new(
                    pcm_rate_for(kind, app_rate),
                    fec,
                    br,
                )?)
            }
        })
    }

    /// The rate PCM must have when passed to [`Self::encode`].
    pub fn pcm_rate(&self) -> u32 {
        match self {
            AudioEncoder::Pcmu | AudioEncoder::Pcma => 8000,
            AudioEncoder::Opus(e) => e.rate(),
        }
    }

    /// Encodes one packet's worth of PCM, appending the payload to `out`.
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        match self {
            AudioEncoder::Pcmu => out.extend(pcm.iter().map(|&s| g711::linear_to_ulaw(s))),
            AudioEncoder::Pcma => out.extend(pcm.iter().map(|&s| g711::linear_to_alaw(s))),
            AudioEncoder::Opus(e) => e.encode(pcm, out)?,
        }
        Ok(())
    }
}

/// A decoder with loss concealment.
#[derive(Debug)]
pub enum AudioDecoder {
    /// G.711 with repeat-and-fade concealment.
    G711 {
        /// A-law (else µ-law).
        alaw: bool,
        /// Last good frame.
        last: Vec<i16>,
        /// Gain applied to the next concealed frame.
        gain: f32,
    },
    /// Opus.
    Opus(opus::OpusDecoder),
}

impl AudioDecoder {
    /// Builds a decoder for `spec` producing PCM at `pcm_rate_for(kind, app_rate)`.
    pub fn new(spec: &CodecSpec, app_rate: u32) -> Result<Self, CodecError> {
        let kind = CodecKind::from_spec(spec)?;
        Ok(match kind {
            CodecKind::Pcmu => AudioDecoder::G711 {
                alaw: false,
                last: Vec::new(),
                gain: 1.0,
            },
            CodecKind::Pcma => AudioDecoder::G711 {
                alaw: true,
                last: Vec::new(),
                gain: 1.0,
            },
            CodecKind::Opus => {
                AudioDecoder::Opus(opus::OpusDecoder::new(pcm_rate_for(kind, app_rate))?)
            }
        })
    }

    /// PCM output rate.
    pub fn pcm_rate(&self) -> u32 {
        match self {
            AudioDecoder::G711 { .. } => 8000,
            AudioDecoder::Opus(d) => d.rate(),
        }
    }

    /// Decodes a payload, appending PCM to `out`; returns the sample count.
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError> {
        match self {
            AudioDecoder::G711 { alaw, last, gain } => {
                let start = out.len();
                if *alaw {
                    out.extend(payload.iter().map(|&b| g711::alaw_to_linear(b)));
                } else {
                    out.extend(payload.iter().map(|&b| g711::ulaw_to_linear(b)));
                }
                last.clear();
                last.extend_from_slice(&out[start..]);
                *gain = 1.0;
                Ok(payload.len())
            }
            AudioDecoder::Opus(d) => d.decode(payload, out),
        }
    }

    /// Recovers a lost frame of `samples` from the next packet's FEC; `Ok(None)` when the
    /// codec (G.711) or the packet (CELT-only Opus) has none.
    pub fn decode_fec(
        &mut self,
        next_payload: &[u8],
        samples: usize,
        out: &mut Vec<i16>,
    ) -> Result<Option<usize>, CodecError> {
        match self {
            AudioDecoder::Opus(d) if opus::OpusDecoder::has_fec(next_payload) => {
                d.decode_fec(next_payload, samples, out).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Conceals a lost frame of `samples`: Opus PLC, or G.711 repeat of the last frame with
    /// the gain halved each time (silence after four).
    pub fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) -> Result<usize, CodecError> {
        match self {
            AudioDecoder::G711 { last, gain, .. } => {
                *gain *= 0.5;
                let g = if *gain < 0.07 { 0.0 } else { *gain };
                for i in 0..samples {
                    let s = if last.is_empty() {
                        0
                    } else {
                        last[i % last.len()]
                    };
                    out.push((s as f32 * g) as i16);
                }
                Ok(samples)
            }
            AudioDecoder::Opus(d) => d.conceal(samples, out),
        }
    }
}

/// Goertzel power of `freq` in `samples` at `rate` (a single-bin DFT); used by tests and
/// by apps that want to detect a tone.
pub fn goertzel_power(samples: &[i16], rate: u32, freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / rate as f64;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = x as f64 + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, rate: u32, ch: u8, fmtp: Option<&str>) -> CodecSpec {
        CodecSpec {
            pt: 0,
            name: name.into(),
            clock_rate: rate,
            channels: ch,
            fmtp: fmtp.map(Into::into),
        }
    }

    fn tone(rate: u32, f: f64, n: usize, off: usize) -> Vec<i16> {
        (off..off + n)
            .map(|i| {
                ((i as f64 * f * 2.0 * std::f64::consts::PI / rate as f64).sin() * 8000.0) as i16
            })
            .collect()
    }

    #[test]
    fn opus_round_trip_fec_and_plc() {
        let s = spec("opus", 48000, 2, Some("useinbandfec=1"));
        for rate in [16000u32, 48000] {
            let mut enc = AudioEncoder::new(&s, rate).unwrap();
            let mut dec = AudioDecoder::new(&s, rate).unwrap();
            assert_eq!(enc.pcm_rate(), rate);
            let frame = rate as usize / 50;
            let mut out = Vec::new();
            let mut packets = Vec::new();
            for k in 0..50 {
                let mut p = Vec::new();
                enc.encode(&tone(rate, 600.0, frame, k * frame), &mut p)
                    .unwrap();
                packets.push(p);
            }
            for p in &packets[..40] {
                assert_eq!(dec.decode(p, &mut out).unwrap(), frame);
            }
            let tail = &out[out.len() - frame * 10..];
            assert!(goertzel_power(tail, rate, 600.0) > 50.0 * goertzel_power(tail, rate, 1500.0));
            // lose packet 40: recover from 41's FEC, then PLC for a frame
            let n = dec.decode_fec(&packets[41], frame, &mut out).unwrap();
            assert_eq!(n, Some(frame));
            assert_eq!(dec.conceal(frame, &mut out).unwrap(), frame);
            assert!(dec.decode(&[], &mut out).is_err());
        }
    }

    #[test]
    fn g711_codec_and_concealment() {
        for name in ["PCMU", "PCMA"] {
            let s = spec(name, 8000, 1, None);
            let mut enc = AudioEncoder::new(&s, 48000).unwrap();
            let mut dec = AudioDecoder::new(&s, 48000).unwrap();
            assert_eq!(enc.pcm_rate(), 8000);
            let pcm = tone(8000, 1000.0, 160, 0);
            let mut p = Vec::new();
            enc.encode(&pcm, &mut p).unwrap();
            assert_eq!(p.len(), 160);
            let mut out = Vec::new();
            dec.decode(&p, &mut out).unwrap();
            let energy = |v: &[i16]| v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>();
            dec.conceal(160, &mut out).unwrap();
            dec.conceal(160, &mut out).unwrap();
            let (e0, e1, e2) = (
                energy(&out[..160]),
                energy(&out[160..320]),
                energy(&out[320..480]),
            );
            assert!(e1 < e0 * 0.3 && e1 > e0 * 0.2, "{e0} {e1}");
            assert!(e2 < e1 * 0.3);
            for _ in 0..3 {
                dec.conceal(160, &mut out).unwrap();
            }
            assert!(out[out.len() - 160..].iter().all(|&x| x == 0));
            assert_eq!(dec.decode_fec(&p, 160, &mut out), Ok(None));
        }
        assert!(AudioEncoder::new(&spec("G722", 8000, 1, None), 8000).is_err());
    }
}
