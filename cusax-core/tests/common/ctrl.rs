//! A minimal client for baresip's `ctrl_tcp` remote control: JSON commands and
//! responses/events framed as netstrings (`<len>:<json>,`). Messages are inspected as
//! text (enough for the few fields a test needs; no JSON parser).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest netstring accepted from baresip.
const MAX_MESSAGE: usize = 64 * 1024;

/// A `ctrl_tcp` connection.
pub struct Ctrl {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Ctrl {
    /// Connects to `ctrl_tcp_listen`.
    pub async fn connect(addr: SocketAddr) -> Result<Ctrl, String> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("baresip ctrl_tcp {addr}: {e}"))?;
        Ok(Ctrl {
            stream,
            buf: Vec::new(),
        })
    }

    /// Sends `{"command":..,"params":..,"token":..}` (arguments must not need JSON
    /// escaping).
    pub async fn send(&mut self, command: &str, params: &str) -> Result<(), String> {
        let json = format!(r#"{{"command":"{command}","params":"{params}","token":"cusax"}}"#);
        let msg = format!("{}:{json},", json.len());
        self.stream
            .write_all(msg.as_bytes())
            .await
            .map_err(|e| format!("ctrl_tcp write: {e}"))
    }

    /// The next message (response or event), `None` at end of stream.
    pub async fn next(&mut self) -> Result<Option<String>, String> {
        loop {
            if let Some(colon) = self.buf.iter().position(|&b| b == b':') {
                let len: usize = std::str::from_utf8(&self.buf[..colon])
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .filter(|&n| n <= MAX_MESSAGE)
                    .ok_or("ctrl_tcp: bad netstring length")?;
                let end = colon + 1 + len;
                if self.buf.len() > end {
                    if self.buf[end] != b',' {
                        return Err("ctrl_tcp: netstring without ','".into());
                    }
                    let msg = String::from_utf8_lossy(&self.buf[colon + 1..end]).into_owned();
                    self.buf.drain(..=end);
                    return Ok(Some(msg));
                }
            } else if self.buf.len() > 16 {
                return Err("ctrl_tcp: bad netstring header".into());
            }
            let mut chunk = [0u8; 4096];
            let n = self
                .stream
                .read(&mut chunk)
                .await
                .map_err(|e| format!("ctrl_tcp read: {e}"))?;
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends a command and returns its response (events read meanwhile are skipped).
    pub async fn command(&mut self, command: &str, params: &str) -> Result<String, String> {
        self.send(command, params).await?;
        while let Some(m) = self.next().await? {
            if m.contains(r#""response":true"#) {
                return Ok(m);
            }
        }
        Err("ctrl_tcp closed".into())
    }
}

/// Waits for baresip's `CALL_INCOMING` event from a peer URI containing `peer` and
/// answers it with the `accept` command (for a baresip that does not auto-answer).
/// Returns the event and the command's response.
pub async fn accept_incoming(mut ctrl: Ctrl, peer: String) -> Result<(String, String), String> {
    while let Some(m) = ctrl.next().await? {
        if m.contains(r#""type":"CALL_INCOMING""#) && m.contains(&peer) {
            let resp = ctrl.command("accept", "").await?;
            return Ok((m, resp));
        }
    }
    Err("ctrl_tcp closed before the call came in".into())
}
