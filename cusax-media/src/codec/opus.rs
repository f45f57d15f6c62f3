//! Opus (RFC 6716, RTP payload RFC 7587) through the `opus` crate (libopus).
//!
//! Mono PCM in and out; libopus runs at the app's rate when it is 8/12/16/24/48 kHz.
//! Packet loss: [`OpusDecoder::decode_fec`] recovers a lost frame from the in-band FEC of
//! the next packet; [`OpusDecoder::conceal`] runs libopus PLC (decode of a missing packet).

use super::CodecError;

/// Rates libopus accepts for PCM.
pub const OPUS_RATES: [u32; 5] = [8000, 12000, 16000, 24000, 48000];

fn err(e: opus::Error) -> CodecError {
    CodecError::Opus(e.description().to_owned())
}

/// Opus encoder.
pub struct OpusEncoder {
    inner: opus::Encoder,
    rate: u32,
    buf: Vec<u8>,
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder")
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

impl OpusEncoder {
    /// Mono VoIP encoder at `rate`; `fec` turns on in-band FEC (the peer signalled
    /// `useinbandfec=1`), `bitrate` caps the average (`maxaveragebitrate`).
    pub fn new(rate: u32, fec: bool, bitrate: Option<u32>) -> Result<Self, CodecError> {
        let mut inner =
            opus::Encoder::new(rate, opus::Channels::Mono, opus::Application::Voip).map_err(err)?;
        if fec {
            inner.set_inband_fec(true).map_err(err)?;
            inner.set_packet_loss_perc(10).map_err(err)?;
        }
        if let Some(b) = bitrate {
            inner
                .set_bitrate(opus::Bitrate::Bits(b.clamp(6000, 510_000) as i32))
                .map_err(err)?;
        }
        Ok(OpusEncoder {
            inner,
            rate,
            buf: vec![0; 1500],
        })
    }

    /// PCM rate.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Encodes one frame (2.5–60 ms at [`Self::rate`]) and appends the packet to `out`.
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        let n = self.inner.encode(pcm, &mut self.buf).map_err(err)?;
        out.extend_from_slice(self.buf.get(..n).unwrap_or_default());
        Ok(())
    }
}

/// Opus decoder.
pub struct OpusDecoder {
    inner: opus::Decoder,
    rate: u32,
    buf: Vec<i16>,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder")
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

impl OpusDecoder {
    /// Mono decoder at `rate`.
    pub fn new(rate: u32) -> Result<Self, CodecError> {
        let inner = opus::Decoder::new(rate, opus::Channels::Mono).map_err(err)?;
        // 120 ms is the longest Opus packet
        Ok(OpusDecoder {
            inner,
            rate,
            buf: vec![0; rate as usize * 120 / 1000],
        })
    }

    /// PCM rate.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Decodes a packet, appending samples to `out`.
    pub fn decode(&mut self, packet: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError> {
        if packet.is_empty() {
            return Err(CodecError::Malformed);
        }
        let n = self
            .inner
            .decode(packet, &mut self.buf, false)
            .map_err(err)?;
        out.extend_from_slice(self.buf.get(..n).unwrap_or_default());
        Ok(n)
    }

    /// Recovers the frame *before* `next_packet` from its in-band FEC (`samples` long).
    pub fn decode_fec(
        &mut self,
        next_packet: &[u8],
        samples: usize,
        out: &mut Vec<i16>,
    ) -> Result<usize, CodecError> {
        if next_packet.is_empty() {
            return Err(CodecError::Malformed);
        }
        let s = samples.min(self.buf.len());
        let n = self
            .inner
            .decode(next_packet, &mut self.buf[..s], true)
            .map_err(err)?;
        out.extend_from_slice(self.buf.get(..n).unwrap_or_default());
        Ok(n)
    }

    /// Packet-loss concealment for `samples` samples (decode of a missing packet).
    pub fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) -> Result<usize, CodecError> {
        let s = samples.min(self.buf.len());
        let n = self
            .inner
            .decode(&[], &mut self.buf[..s], false)
            .map_err(err)?;
        out.extend_from_slice(self.buf.get(..n).unwrap_or_default());
        Ok(n)
    }

    /// Whether a packet carries LBRR (FEC) data usable by [`Self::decode_fec`]: a SILK or
    /// hybrid mode packet (RFC 6716 §3.1 config < 16). CELT-only packets carry none.
    pub fn has_fec(packet: &[u8]) -> bool {
        packet.first().is_some_and(|toc| (toc >> 3) < 16)
    }
}
