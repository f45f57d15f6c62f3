//! Minimal WAV (RIFF/WAVE, 16-bit PCM) reading and writing, for tests and examples.
//!
//! Reading accepts `WAVE_FORMAT_PCM` (1) and `WAVE_FORMAT_EXTENSIBLE` (0xFFFE) with 16-bit
//! samples, skips unknown chunks, and limits the data to [`MAX_WAV_SAMPLES`].

/// Largest number of samples read (all channels): 10 minutes of 48 kHz stereo.
pub const MAX_WAV_SAMPLES: usize = 48_000 * 2 * 600;

/// Decoded WAV audio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wav {
    /// Sample rate (Hz).
    pub rate: u32,
    /// Channel count.
    pub channels: u16,
    /// Interleaved samples.
    pub samples: Vec<i16>,
}

/// Why a WAV file was rejected (the file's fault).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WavError {
    /// Not RIFF/WAVE.
    #[error("not a RIFF/WAVE file")]
    NotWav,
    /// Format other than 16-bit PCM.
    #[error("unsupported WAV format")]
    Unsupported,
    /// Truncated or inconsistent chunks.
    #[error("malformed WAV file")]
    Malformed,
    /// More than [`MAX_WAV_SAMPLES`].
    #[error("WAV data too large")]
    TooLarge,
}

fn u16le(b: &[u8], at: usize) -> Result<u16, WavError> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or(WavError::Malformed)
}
fn u32le(b: &[u8], at: usize) -> Result<u32, WavError> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or(WavError::Malformed)
}

impl Wav {
    /// Parses a WAV file.
    pub fn parse(b: &[u8]) -> Result<Self, WavError> {
        if b.get(0..4) != Some(b"RIFF") || b.get(8..12) != Some(b"WAVE") {
            return Err(WavError::NotWav);
        }
        let mut pos = 12;
        let mut fmt: Option<(u32, u16)> = None;
        while pos + 8 <= b.len() {
            let id = &b[pos..pos + 4];
            let len = u32le(b, pos + 4)? as usize;
            let body = b.get(pos + 8..pos + 8 + len).ok_or(WavError::Malformed)?;
            match id {
                b"fmt " => {
                    let tag = u16le(body, 0)?;
                    let channels = u16le(body, 2)?;
                    let rate = u32le(body, 4)?;
                    let bits = u16le(body, 14)?;
                    if !(tag == 1 || tag == 0xfffe) || bits != 16 || channels == 0 || rate == 0 {
                        return Err(WavError::Unsupported);
                    }
                    fmt = Some((rate, channels));
                }
                b"data" => {
                    let (rate, channels) = fmt.ok_or(WavError::Malformed)?;
                    if body.len() / 2 > MAX_WAV_SAMPLES {
                        return Err(WavError::TooLarge);
                    }
                    let samples = body
                        .chunks_exact(2)
                        .map(|c| i16::from_le_bytes([c[0], c[1]]))
                        .collect();
                    return Ok(Wav {
                        rate,
                        channels,
                        samples,
                    });
                }
                _ => {}
            }
            pos += 8 + len + (len & 1);
        }
        Err(WavError::Malformed)
    }

    /// Serializes as a canonical 44-byte-header PCM WAV file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let data_len = (self.samples.len() * 2) as u32;
        let block = self.channels.max(1) * 2;
        let mut v = Vec::with_capacity(44 + data_len as usize);
        v.extend_from_slice(b"RIFF");
        v.extend_from_slice(&(36 + data_len).to_le_bytes());
        v.extend_from_slice(b"WAVEfmt ");
        v.extend_from_slice(&16u32.to_le_bytes());
        v.extend_from_slice(&1u16.to_le_bytes());
        v.extend_from_slice(&self.channels.max(1).to_le_bytes());
        v.extend_from_slice(&self.rate.to_le_bytes());
        v.extend_from_slice(&(self.rate * block as u32).to_le_bytes());
        v.extend_from_slice(&block.to_le_bytes());
        v.extend_from_slice(&16u16.to_le_bytes());
        v.extend_from_slice(b"data");
        v.extend_from_slice(&data_len.to_le_bytes());
        for s in &self.samples {
            v.extend_from_slice(&s.to_le_bytes());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let w = Wav {
            rate: 8000,
            channels: 1,
            samples: vec![0, 1, -1, i16::MAX, i16::MIN],
        };
        let b = w.to_bytes();
        assert_eq!(b.len(), 44 + 10);
        assert_eq!(&b[0..4], b"RIFF");
        assert_eq!(Wav::parse(&b), Ok(w));
        assert_eq!(Wav::parse(b"RIFX"), Err(WavError::NotWav));
        let mut trunc = b.clone();
        trunc.truncate(50);
        assert_eq!(Wav::parse(&trunc), Err(WavError::Malformed));
        let mut f32wav = b.clone();
        f32wav[34] = 32;
        assert_eq!(Wav::parse(&f32wav), Err(WavError::Unsupported));
        // an unknown chunk before data is skipped
        let mut with_list = b[..36].to_vec();
        with_list.extend_from_slice(b"LIST\x03\x00\x00\x00abc\x00");
        with_list.extend_from_slice(&b[36..]);
        assert_eq!(Wav::parse(&with_list).unwrap().samples.len(), 5);
    }
}
