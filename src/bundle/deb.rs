//! Reading a `.deb` file: an `ar` archive whose first member is `debian-binary` (`2.0`), then `control.tar`
//! (uncompressed, `.gz`, `.xz` or `.zst`) holding `./control`, then `data.tar.*`.
//!
//! Owns finding and decompressing the control member (bounded: a decompression bomb is refused, not
//! buffered) and handing `./control` to [`Control::parse`]. The data member is only read through to prove it
//! complete (a truncated download is refused). Must not hash or copy the file (`hash.rs`, `archive.rs`).

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use super::control::Control;

/// The largest compressed control member read (real ones are a few KiB).
const MAX_CONTROL_MEMBER: u64 = 16 * 1024 * 1024;
/// The largest decompressed control tar accepted.
const MAX_CONTROL_TAR: usize = 64 * 1024 * 1024;
/// The largest `control` file accepted.
const MAX_CONTROL_FILE: u64 = 1024 * 1024;

/// Read the control data of the `.deb` at `path`. The error says what is wrong, without the path (the caller
/// names the file).
pub fn read_deb(path: &Path) -> Result<Control, String> {
    let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    read_deb_from(BufReader::new(file))
}

/// [`read_deb`] on any reader.
pub fn read_deb_from(r: impl Read) -> Result<Control, String> {
    let mut ar = ar::Archive::new(r);
    let not_deb = |what: &str| format!("not a Debian package ({what})");
    let first = match ar.next_entry() {
        Some(Ok(e)) => e,
        Some(Err(e)) => return Err(not_deb(&format!("not an ar archive: {e}"))),
        None => return Err(not_deb("an empty ar archive")),
    };
    if first.header().identifier() != b"debian-binary" {
        return Err(not_deb(&format!(
            "its first member is `{}`, not `debian-binary`",
            String::from_utf8_lossy(first.header().identifier())
        )));
    }
    let mut magic = String::new();
    first
        .take(64)
        .read_to_string(&mut magic)
        .map_err(|e| not_deb(&format!("debian-binary is unreadable: {e}")))?;
    if !magic.starts_with("2.") {
        return Err(format!(
            "unsupported .deb format version `{}` (only 2.x exists)",
            magic.trim()
        ));
    }
    let mut control = None;
    while let Some(entry) = ar.next_entry() {
        let entry = entry.map_err(|e| format!("the ar archive is damaged: {e}"))?;
        let name = String::from_utf8_lossy(entry.header().identifier()).into_owned();
        let Some(compression) = name.strip_prefix("control.tar") else {
            if name.starts_with("data.tar") {
                return Err("`data.tar` comes before any `control.tar` member".into());
            }
            continue;
        };
        if entry.header().size() > MAX_CONTROL_MEMBER {
            return Err(format!(
                "member `{name}` is {} bytes: too big for control data",
                entry.header().size()
            ));
        }
        let mut raw = Vec::new();
        entry
            .take(MAX_CONTROL_MEMBER)
            .read_to_end(&mut raw)
            .map_err(|e| format!("member `{name}` is unreadable (truncated file?): {e}"))?;
        let tar = decompress(compression, &raw).map_err(|e| format!("member `{name}`: {e}"))?;
        let text = control_from_tar(&tar).map_err(|e| format!("member `{name}`: {e}"))?;
        control = Some(Control::parse(&text).map_err(|e| format!("its control file: {e}"))?);
        break;
    }
    let control = control.ok_or_else(|| not_deb("no `control.tar` member"))?;
    check_data_member(&mut ar)?;
    Ok(control)
}

/// After the control member: a `data.tar*` member must follow, complete (read through, never kept), so a
/// truncated download is refused here and not on the device.
fn check_data_member(ar: &mut ar::Archive<impl Read>) -> Result<(), String> {
    while let Some(entry) = ar.next_entry() {
        let mut entry = entry
            .map_err(|e| format!("the ar archive is damaged after the control member: {e}"))?;
        let name = String::from_utf8_lossy(entry.header().identifier()).into_owned();
        if !name.starts_with("data.tar") {
            continue;
        }
        let want = entry.header().size();
        let got = io::copy(&mut entry, &mut io::sink()).map_err(|e| {
            format!("member `{name}` is cut short (truncated .deb? download it again): {e}")
        })?;
        if got != want {
            return Err(format!(
                "member `{name}` has {got} of its {want} bytes: the .deb is truncated; download it again"
            ));
        }
        return Ok(());
    }
    Err("no `data.tar` member after the control data: the .deb is truncated or damaged".into())
}

/// Decompress a control member by its suffix, refusing more than [`MAX_CONTROL_TAR`] bytes of output.
fn decompress(suffix: &str, raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Limited(Vec::new());
    let res = match suffix {
        "" => out.write_all(raw),
        ".gz" => io::copy(&mut flate2::read::GzDecoder::new(raw), &mut out).map(drop),
        ".xz" => {
            lzma_rs::xz_decompress(&mut io::BufReader::new(raw), &mut out).map_err(|e| match e {
                lzma_rs::error::Error::IoError(e) => e,
                other => io::Error::new(io::ErrorKind::InvalidData, format!("{other:?}")),
            })
        }
        ".zst" => ruzstd::decoding::StreamingDecoder::new(raw)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
            .and_then(|mut d| io::copy(&mut d, &mut out).map(drop)),
        other => {
            return Err(format!(
                "unknown compression `{other}` (expected none, .gz, .xz or .zst)"
            ))
        }
    };
    res.map_err(|e| format!("cannot decompress: {e}"))?;
    Ok(out.0)
}

/// A writer that refuses to grow past [`MAX_CONTROL_TAR`].
struct Limited(Vec<u8>);

impl Write for Limited {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.0.len() + buf.len() > MAX_CONTROL_TAR {
            return Err(io::Error::other(format!(
                "control data decompresses to more than {MAX_CONTROL_TAR} bytes"
            )));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The text of `./control` inside a control tar.
fn control_from_tar(tar: &[u8]) -> Result<String, String> {
    let mut archive = tar::Archive::new(tar);
    let entries = archive
        .entries()
        .map_err(|e| format!("not a tar archive: {e}"))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("damaged tar archive: {e}"))?;
        let path = entry.path().map_err(|e| format!("bad path in tar: {e}"))?;
        let p = path.to_string_lossy();
        if p == "./control" || p == "control" {
            if entry.header().size().unwrap_or(0) > MAX_CONTROL_FILE {
                return Err("the control file is over 1 MiB".into());
            }
            let mut text = String::new();
            entry
                .take(MAX_CONTROL_FILE)
                .read_to_string(&mut text)
                .map_err(|e| format!("the control file is not UTF-8 text: {e}"))?;
            return Ok(text);
        }
    }
    Err("no `./control` file in it".into())
}
