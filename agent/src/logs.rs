//! The agent's own log (kept in memory, also sent to `tracing`) and
//! `log.collect_system_logs`' archive: a gzipped tar, base64 encoded, as
//! upstream returns it.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;

use crate::Shared;

/// Lines kept; older ones are dropped.
const MAX_LINES: usize = 10_000;

#[derive(Default)]
pub struct LogBuffer {
    lines: Mutex<VecDeque<String>>,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl LogBuffer {
    fn push(&self, level: &str, message: &str) {
        if let Ok(mut lines) = self.lines.lock() {
            if lines.len() >= MAX_LINES {
                lines.pop_front();
            }
            lines.push_back(format!("{:.3} {level} {message}", now()));
        }
    }

    pub fn info(&self, message: String) {
        tracing::info!("{message}");
        self.push("INFO", &message);
    }

    pub fn warn(&self, message: String) {
        tracing::warn!("{message}");
        self.push("WARNING", &message);
    }

    pub fn text(&self) -> String {
        self.lines
            .lock()
            .map(|lines| {
                let mut text = String::new();
                for line in lines.iter() {
                    text.push_str(line);
                    text.push('\n');
                }
                text
            })
            .unwrap_or_default()
    }
}

/// One ustar header block for a regular file.
fn tar_header(name: &str, size: usize, mtime: u64) -> Result<[u8; 512], String> {
    let mut header = [0u8; 512];
    if name.len() > 99 {
        return Err(format!("file name {name:?} is too long for a tar header"));
    }
    header[..name.len()].copy_from_slice(name.as_bytes());
    let octal = |buf: &mut [u8], value: u64| {
        let width = buf.len() - 1;
        let text = format!("{value:0width$o}");
        buf[..width].copy_from_slice(&text.as_bytes()[text.len() - width..]);
    };
    octal(&mut header[100..108], 0o644);
    octal(&mut header[108..116], 0);
    octal(&mut header[116..124], 0);
    octal(&mut header[124..136], size as u64);
    octal(&mut header[136..148], mtime);
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[265..269].copy_from_slice(b"root");
    header[297..301].copy_from_slice(b"root");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    let text = format!("{sum:06o}\0 ");
    header[148..156].copy_from_slice(text.as_bytes());
    Ok(header)
}

/// A tar archive of `files` (name, contents).
pub fn tar(files: &[(&str, Vec<u8>)]) -> Result<Vec<u8>, String> {
    let mtime = now() as u64;
    let mut out = Vec::new();
    for (name, data) in files {
        out.extend_from_slice(&tar_header(name, data.len(), mtime)?);
        out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        out.resize(out.len() + pad, 0);
    }
    out.resize(out.len() + 1024, 0);
    Ok(out)
}

/// base64(gzip(tar(files))).
pub fn pack(files: &[(&str, Vec<u8>)]) -> Result<String, String> {
    let tar = tar(files)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar)
        .map_err(|err| format!("cannot compress the logs: {err}"))?;
    let gz = gz
        .finish()
        .map_err(|err| format!("cannot compress the logs: {err}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(gz))
}

/// The agent's log and the hardware it reports, packed for
/// `collect_system_logs`.
pub fn archive(shared: &Shared) -> Result<String, String> {
    let hardware = serde_json::to_vec_pretty(shared.hardware())
        .map_err(|err| format!("cannot serialize the hardware description: {err}"))?;
    pack(&[
        ("ironic-python-agent.log", shared.log.text().into_bytes()),
        ("hardware.json", hardware),
    ])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn system_tar_reads_the_archive() {
        let packed = pack(&[("a.log", b"hello\n".to_vec()), ("b.json", vec![b'x'; 700])]).unwrap();
        let gz = base64::engine::general_purpose::STANDARD
            .decode(packed)
            .unwrap();
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(tar.len() % 512, 0);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.tar");
        std::fs::write(&path, &tar).unwrap();
        let out = std::process::Command::new("tar")
            .arg("-xf")
            .arg(&path)
            .arg("-C")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(std::fs::read(dir.path().join("a.log")).unwrap(), b"hello\n");
        assert_eq!(std::fs::read(dir.path().join("b.json")).unwrap().len(), 700);
    }

    #[test]
    fn buffer_keeps_lines_in_order() {
        let log = LogBuffer::default();
        log.info("first".into());
        log.warn("second".into());
        let text = log.text();
        assert!(text.find("INFO first").unwrap() < text.find("WARNING second").unwrap());
    }
}
