//! A streaming linear-interpolation resampler for mono i16 audio.
//!
//! Quality: linear interpolation is cheap and click-free across frame boundaries but it
//! attenuates high frequencies (−3.9 dB at 0.5 × the lower Nyquist… roughly: a sinc² roll-off)
//! and does not low-pass before decimating, so content above the output Nyquist aliases.
//! That is acceptable for narrowband voice (G.711 at 8 kHz from/to 16/48 kHz app audio);
//! Opus avoids it entirely by running libopus at the app's rate when that is one of
//! 8/12/16/24/48 kHz.

/// Streaming resampler; keeps the fractional position and last sample between calls.
#[derive(Debug, Clone)]
pub struct Resampler {
    from: u32,
    to: u32,
    /// Position of the next output sample in input-sample units, relative to the first
    /// sample of the next input chunk; -1.0 refers to `last`.
    pos: f64,
    last: i16,
}

impl Resampler {
    /// A resampler from `from` Hz to `to` Hz (both non-zero).
    pub fn new(from: u32, to: u32) -> Self {
        Resampler {
            from: from.max(1),
            to: to.max(1),
            pos: 0.0,
            last: 0,
        }
    }

    /// Whether input and output rates are equal (then `process` copies).
    pub fn is_identity(&self) -> bool {
        self.from == self.to
    }

    /// Resamples `input`, appending to `out`. Over many calls the output length tracks
    /// `input_len * to / from`, lagging by at most one input sample period.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        if self.is_identity() {
            out.extend_from_slice(input);
            return;
        }
        if input.is_empty() {
            return;
        }
        let step = self.from as f64 / self.to as f64;
        let n = input.len() as f64;
        let mut pos = self.pos;
        while pos < n - 1.0 + 1e-9 {
            let idx = floor_isize(pos);
            let frac = pos - idx as f64;
            let a = if idx < 0 {
                self.last
            } else {
                input[idx as usize]
            } as f64;
            let b_idx = idx + 1;
            let b = if b_idx < 0 {
                self.last
            } else {
                input[(b_idx as usize).min(input.len() - 1)]
            } as f64;
            out.push(round_i16(a + (b - a) * frac));
            pos += step;
        }
        self.pos = pos - n;
        self.last = input[input.len() - 1];
    }
}

/// `x.floor() as isize` without `f64::floor`: on the x86-64 baseline (no SSE4.1) that is a
/// libm call, which dominated the per-sample cost. A truncating cast rounds toward zero,
/// so one is subtracted when that landed above `x`. Equal to `x.floor() as isize` for all
/// `x` (the cast saturates alike).
fn floor_isize(x: f64) -> isize {
    let t = x as isize;
    if (t as f64) > x {
        t.saturating_sub(1)
    } else {
        t
    }
}

/// `x.round() as i16` (halves away from zero, saturating, NaN → 0) without the libm
/// `round` call; `x - trunc(x)` is exact in floating point, so the result is identical.
fn round_i16(x: f64) -> i16 {
    let t = x as i64;
    let d = x - t as f64;
    let r = if d >= 0.5 {
        t.saturating_add(1)
    } else if d <= -0.5 {
        t.saturating_sub(1)
    } else {
        t
    };
    r.clamp(i16::MIN.into(), i16::MAX.into()) as i16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::goertzel_power;

    fn sine(rate: u32, freq: f64, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                ((i as f64 * freq * 2.0 * std::f64::consts::PI / rate as f64).sin() * 10000.0)
                    as i16
            })
            .collect()
    }

    #[test]
    fn preserves_frequency_and_length() {
        for (from, to) in [
            (48000, 8000),
            (8000, 48000),
            (16000, 8000),
            (8000, 44100),
            (44100, 16000),
        ] {
            let input = sine(from, 440.0, from as usize); // 1 s
            let mut r = Resampler::new(from, to);
            let mut out = Vec::new();
            for chunk in input.chunks((from / 50) as usize) {
                r.process(chunk, &mut out);
            }
            let expect = to as i64;
            let slack = (to / from) as i64 + 2; // output lags by at most one input sample
            assert!(
                (out.len() as i64 - expect).abs() <= slack,
                "{from}->{to}: {}",
                out.len()
            );
            let p440 = goertzel_power(&out[..to as usize / 2], to, 440.0);
            let p1000 = goertzel_power(&out[..to as usize / 2], to, 1000.0);
            assert!(p440 > 100.0 * p1000, "{from}->{to}: {p440} vs {p1000}");
        }
    }

    #[test]
    fn floor_and_round_match_std() {
        let mut xs = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            -2.5,
            0.49999999999999994,
            -0.49999999999999994,
            -1.0,
            -0.999999999,
            -1e-12,
            32766.5,
            32767.49,
            32767.5,
            -32768.5,
            -32769.0,
            1e300,
            -1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ];
        // a deterministic spread of values with every kind of fractional part
        let mut v = 0x1234_5678_u64;
        for _ in 0..100_000 {
            v = v
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            xs.push(((v >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 80_000.0);
        }
        for k in -40_000..40_000 {
            xs.push(k as f64 + 0.5);
            xs.push(k as f64 / 7.0);
        }
        for x in xs {
            assert_eq!(round_i16(x), x.round() as i16, "round {x}");
            if x.is_finite() {
                assert_eq!(floor_isize(x), x.floor() as isize, "floor {x}");
            }
        }
    }

    #[test]
    fn continuous_across_chunks() {
        let input = sine(8000, 300.0, 1600);
        let mut r = Resampler::new(8000, 48000);
        let mut out = Vec::new();
        for c in input.chunks(160) {
            r.process(c, &mut out);
        }
        // no jump larger than the sine's maximum slope at 48 kHz (plus rounding)
        let max_step = (10000.0 * 2.0 * std::f64::consts::PI * 300.0 / 48000.0) as i32 + 2;
        for w in out.windows(2) {
            assert!((w[1] as i32 - w[0] as i32).abs() <= max_step);
        }
    }
}
