//! G.711 (ITU-T G.711) µ-law and A-law, segment-search implementation.

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 32635;

/// Encodes one 16-bit linear sample to µ-law.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let mut s = sample as i32;
    let sign = if s < 0 { 0x80 } else { 0 };
    if s < 0 {
        s = -s;
    }
    s = s.min(ULAW_CLIP) + ULAW_BIAS;
    // exponent: position of the highest set bit of s >> 7 (0..=7)
    let exponent = (31 - ((s >> 7) as u32 | 1).leading_zeros()) as i32;
    let mantissa = (s >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) | mantissa) as u8
}

/// Decodes one µ-law byte to 16-bit linear.
pub fn ulaw_to_linear(u: u8) -> i16 {
    let u = !u;
    let t = (((u & 0x0f) as i32) << 3) + ULAW_BIAS;
    let t = t << ((u & 0x70) >> 4);
    (if u & 0x80 != 0 {
        ULAW_BIAS - t
    } else {
        t - ULAW_BIAS
    }) as i16
}

/// Encodes one 16-bit linear sample to A-law.
pub fn linear_to_alaw(sample: i16) -> u8 {
    let mut pcm = (sample as i32) >> 3; // 13-bit magnitude domain
    let mask: i32 = if pcm >= 0 {
        0xd5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    // segment end points of the 13-bit magnitude
    const SEG_END: [i32; 8] = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];
    let seg = SEG_END.iter().position(|&e| pcm <= e).unwrap_or(8) as i32;
    if seg >= 8 {
        return (0x7f ^ mask) as u8;
    }
    let mut aval = seg << 4;
    aval |= if seg < 2 {
        (pcm >> 1) & 0x0f
    } else {
        (pcm >> seg) & 0x0f
    };
    (aval ^ mask) as u8
}

/// Decodes one A-law byte to 16-bit linear.
pub fn alaw_to_linear(a: u8) -> i16 {
    let a = a ^ 0x55;
    let mut t = ((a & 0x0f) as i32) << 4;
    let seg = ((a & 0x70) >> 4) as i32;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_known_points() {
        // G.711 Table 2a: code 0x80 (after inversion: sign 1, seg 7, step 15) decodes to the
        // maximum 8031 in the 14-bit domain = 32124 in 16-bit; 0xff/0x7f decode to 0.
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0xff), 0);
        assert_eq!(ulaw_to_linear(0x7f), 0);
        assert_eq!(ulaw_to_linear(0xfe), 8); // first step: 1 in 14-bit = 4, decision midpoint 8
        assert_eq!(linear_to_ulaw(0), 0xff);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(linear_to_ulaw(-1), 0x7f);
    }

    #[test]
    fn alaw_known_points() {
        // G.711 Table 1a: even-bit inversion; 0xd5/0x55 are the smallest magnitudes (±8),
        // 0xaa/0x2a the largest (±32256 = ±4032 in the 13-bit domain × 8).
        assert_eq!(alaw_to_linear(0xd5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xaa), 32256);
        assert_eq!(alaw_to_linear(0x2a), -32256);
        assert_eq!(linear_to_alaw(0), 0xd5);
        assert_eq!(linear_to_alaw(-1), 0x55);
        assert_eq!(linear_to_alaw(i16::MAX), 0xaa);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2a);
    }

    #[test]
    fn round_trip_is_idempotent_and_error_bounded() {
        for code in 0..=255u8 {
            assert_eq!(
                linear_to_ulaw(ulaw_to_linear(code)),
                code | if code == 0x7f { 0x80 } else { 0 }
            );
            assert_eq!(linear_to_alaw(alaw_to_linear(code)), code);
        }
        for s in (i16::MIN..=i16::MAX).step_by(7) {
            let eu = (ulaw_to_linear(linear_to_ulaw(s)) as i32 - s as i32).abs();
            let ea = (alaw_to_linear(linear_to_alaw(s)) as i32 - s as i32).abs();
            // quantization error is at most half a step: step size grows with the segment
            let bound = (s as i32).abs() / 16 + 16;
            assert!(
                eu <= bound.max(1024) && ea <= bound.max(1024),
                "s={s} eu={eu} ea={ea}"
            );
            assert!(
                eu <= (s as i32).abs() / 8 + 8 || (s as i32).abs() > 32000,
                "s={s} eu={eu}"
            );
        }
    }
}
