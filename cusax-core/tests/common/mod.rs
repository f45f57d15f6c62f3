//! Test support for the real-peer media tests: tone generation, dominant-frequency
//! analysis (Hann-windowed Goertzel filter bank), and finding baresip's files.
#![allow(dead_code)]

pub mod ctrl;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use cusax_media::wav::Wav;

/// `n` samples of a sine of `freq` Hz at `rate`, starting at sample index `start`
/// (so consecutive frames join without a phase jump), amplitude about -11 dBFS.
pub fn sine(rate: u32, freq: f64, start: usize, n: usize) -> Vec<i16> {
    (start..start + n)
        .map(|i| {
            let t = i as f64 / rate as f64;
            ((t * freq * 2.0 * std::f64::consts::PI).sin() * 9000.0) as i16
        })
        .collect()
}

/// Power of `freq` in one Hann-windowed block (Goertzel algorithm).
fn goertzel_hann(block: &[f64], window: &[f64], rate: u32, freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / rate as f64;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for (x, h) in block.iter().zip(window) {
        let s0 = x * h + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

/// Spectrum analysis of mono audio: the power of each probed frequency summed over
/// 50 ms Hann-windowed blocks (20 Hz resolution, so a tone between probes still shows).
#[derive(Debug, Clone)]
pub struct Spectrum {
    /// (frequency Hz, power).
    pub bins: Vec<(f64, f64)>,
    /// Number of blocks analysed.
    pub blocks: usize,
    /// RMS level of the analysed audio (i16 units).
    pub rms: f64,
}

impl Spectrum {
    /// Probes 100..=3800 Hz in 5 Hz steps (below the 4 kHz limit of G.711), over at
    /// most `max_blocks` blocks spread across `samples`.
    pub fn of(samples: &[i16], rate: u32, max_blocks: usize) -> Spectrum {
        let n = (rate / 20).max(1) as usize;
        let window: Vec<f64> = (0..n)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / (n as f64 - 1.0)).cos())
            .collect();
        let total_blocks = samples.len() / n;
        let step = total_blocks.div_ceil(max_blocks.max(1)).max(1);
        let freqs: Vec<f64> = (20..=760).map(|k| k as f64 * 5.0).collect();
        let mut power = vec![0.0f64; freqs.len()];
        let mut blocks = 0;
        let mut sumsq = 0.0f64;
        let mut count = 0usize;
        for b in (0..total_blocks).step_by(step) {
            let Some(chunk) = samples.get(b * n..(b + 1) * n) else {
                break;
            };
            let block: Vec<f64> = chunk.iter().map(|&s| s as f64).collect();
            sumsq += block.iter().map(|x| x * x).sum::<f64>();
            count += n;
            for (p, f) in power.iter_mut().zip(&freqs) {
                *p += goertzel_hann(&block, &window, rate, *f);
            }
            blocks += 1;
        }
        Spectrum {
            bins: freqs.into_iter().zip(power).collect(),
            blocks,
            rms: if count > 0 {
                (sumsq / count as f64).sqrt()
            } else {
                0.0
            },
        }
    }

    /// The frequency with the most power.
    pub fn dominant(&self) -> Option<f64> {
        self.bins
            .iter()
            .copied()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(f, _)| f)
    }

    /// Power of the probe nearest to `freq`.
    pub fn power_at(&self, freq: f64) -> f64 {
        self.bins
            .iter()
            .copied()
            .min_by(|a, b| (a.0 - freq).abs().total_cmp(&(b.0 - freq).abs()))
            .map_or(0.0, |(_, p)| p)
    }
}

/// Channel 0 of interleaved audio.
pub fn first_channel(w: &Wav) -> Vec<i16> {
    let ch = w.channels.max(1) as usize;
    w.samples.iter().step_by(ch).copied().collect()
}

/// The WAV baresip plays as its microphone: the `aufile,<path>` of `audio_source` in
/// its `config`.
pub fn baresip_source_wav(dir: &Path) -> Result<PathBuf, String> {
    let cfg = std::fs::read_to_string(dir.join("config"))
        .map_err(|e| format!("reading {}/config: {e}", dir.display()))?;
    cfg.lines()
        .filter_map(|l| l.trim().strip_prefix("audio_source"))
        .find_map(|v| v.trim().strip_prefix("aufile,"))
        .map(|p| PathBuf::from(p.trim()))
        .ok_or_else(|| "no `audio_source aufile,<wav>` in baresip's config".to_owned())
}

/// The WAV files in `dir` whose name ends with `suffix`, with their modification time.
pub fn wav_files(dir: &Path, suffix: &str) -> Vec<(PathBuf, SystemTime)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
        .filter_map(|e| {
            let m = e.metadata().ok()?.modified().ok()?;
            Some((e.path(), m))
        })
        .collect()
}
