//! A sipp child process for the interop tests (`sipp_interop.rs`, `sipp_via_kamailio.rs`):
//! started on 127.0.0.1 with its logs in a temporary folder, killed when dropped.
#![allow(dead_code)]

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running sipp, killed (and its logs removed unless `CUSAX_KEEP_SIPP_LOGS` is set) when
/// dropped.
pub struct Sipp {
    child: Child,
    log_dir: PathBuf,
}

impl Sipp {
    /// Starts `bin` on 127.0.0.1:`port` with `scenario` for one call; `extra` are the
    /// mode-specific arguments (remote host, transport, variables). Every message sipp sees
    /// is traced for the failure report.
    pub fn spawn(bin: &Path, scenario: &Path, port: u16, extra: &[String]) -> Sipp {
        let log_dir =
            std::env::temp_dir().join(format!("cusax-sipp-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&log_dir).expect("log dir");
        let out = |name: &str| {
            std::fs::File::create(log_dir.join(name))
                .map(Stdio::from)
                .unwrap_or(Stdio::null())
        };
        let child = Command::new(bin)
            .current_dir(&log_dir)
            .arg("-sf")
            .arg(scenario)
            .args(["-i", "127.0.0.1", "-mi", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .args([
                "-m",
                "1",
                "-timeout",
                "30s",
                "-timeout_error",
                "-trace_err",
                "-nostdin",
            ])
            .args(extra)
            .arg("-trace_msg")
            .stdin(Stdio::null())
            .stdout(out("sipp.out"))
            .stderr(out("sipp.err"))
            .spawn()
            .expect("spawn sipp");
        Sipp { child, log_dir }
    }

    /// Waits for sipp to exit; an error carries sipp's [`Sipp::report`].
    pub fn wait(mut self, timeout: Duration) -> Result<(), String> {
        let end = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => {
                    return Err(format!("sipp exited with {status}; {}", self.report()));
                }
                Ok(None) if Instant::now() > end => {
                    return Err(format!("sipp did not finish in time; {}", self.report()));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// Concatenated log files whose name passes `pick`.
    fn logs(&self, pick: impl Fn(&str) -> bool) -> String {
        let mut out = String::new();
        if let Ok(rd) = std::fs::read_dir(&self.log_dir) {
            for e in rd.flatten() {
                if pick(&e.file_name().to_string_lossy()) {
                    out.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
        out
    }

    /// sipp's error log only.
    pub fn errors(&self) -> String {
        self.logs(|name| name.contains("errors") || name == "sipp.err")
    }

    /// The error log, then every message sipp sent and received.
    pub fn report(&self) -> String {
        format!(
            "errors:\n{}\n--- sipp messages:\n{}",
            self.errors(),
            self.logs(|name| name.contains("messages"))
        )
    }

    /// Panics with `what` and sipp's report.
    pub fn fail(&self, what: &str) -> ! {
        panic!("{what}\n--- sipp {}", self.report())
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::env::var_os("CUSAX_KEEP_SIPP_LOGS").is_none() {
            let _ = std::fs::remove_dir_all(&self.log_dir);
        }
    }
}

/// A free port on 127.0.0.1 for sipp (TCP or UDP).
pub fn free_port(tcp: bool) -> u16 {
    let port = if tcp {
        TcpListener::bind("127.0.0.1:0").and_then(|s| s.local_addr())
    } else {
        UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr())
    };
    port.map(|a| a.port()).expect("free port")
}
