//! Passphrases: for protected identities and passphrase-encrypted (`age -p`) files, and encryption with one.
//!
//! Owns where passphrases come from (`EDGEFLEET_AGE_PASSPHRASE_FILE`, `EDGEFLEET_AGE_PASSPHRASE`, a hidden prompt
//! on `/dev/tty`, or a fixed one from the caller), remembering one that worked so a run asks at most once,
//! [`new_passphrase`] and [`encrypt_with_passphrase`]. It must not decide which identity to unlock (the store
//! does), must write nothing but the prompt and only to `/dev/tty`, and never show or log a passphrase.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use age::armor::{ArmoredWriter, Format};
use age::secrecy::zeroize::{Zeroize, Zeroizing};
use age::secrecy::{ExposeSecret, SecretString};

use super::{read_limited, SecretError, ENV_PASSPHRASE, ENV_PASSPHRASE_FILE, MAX_KEY_FILE};

/// Where passphrases come from.
#[derive(Clone)]
pub enum PassphraseSource {
    /// `EDGEFLEET_AGE_PASSPHRASE_FILE`, `EDGEFLEET_AGE_PASSPHRASE`, then a prompt on `/dev/tty`.
    Auto,
    /// This passphrase, and nothing else (for library callers and tests).
    Fixed(SecretString),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PassOrigin {
    File,
    Env,
    Tty,
    Fixed,
}

impl PassOrigin {
    fn describe(self) -> String {
        match self {
            PassOrigin::File => ENV_PASSPHRASE_FILE.to_string(),
            PassOrigin::Env => ENV_PASSPHRASE.to_string(),
            PassOrigin::Tty => "the terminal".to_string(),
            PassOrigin::Fixed => "the caller".to_string(),
        }
    }
}

pub(super) struct Passphrases {
    pub(super) source: PassphraseSource,
    /// Passphrases that unlocked something this run: tried first on every other protected identity.
    pub(super) known: Vec<SecretString>,
    /// How many times the terminal was prompted (tests and `-v`).
    pub(super) prompts: usize,
}

impl Passphrases {
    fn obtain(
        &mut self,
        what: &str,
        attempt: u32,
    ) -> Result<(SecretString, PassOrigin), SecretError> {
        match &self.source {
            PassphraseSource::Fixed(p) => {
                if attempt == 0 {
                    Ok((p.clone(), PassOrigin::Fixed))
                } else {
                    Err(SecretError::WrongPassphrase {
                        what: what.into(),
                        origin: PassOrigin::Fixed.describe(),
                    })
                }
            }
            PassphraseSource::Auto => {
                let wrong = |o: PassOrigin| SecretError::WrongPassphrase {
                    what: what.into(),
                    origin: o.describe(),
                };
                if let Some(f) = std::env::var_os(ENV_PASSPHRASE_FILE) {
                    if attempt > 0 {
                        return Err(wrong(PassOrigin::File));
                    }
                    let f = PathBuf::from(f);
                    let data = read_limited(&f, MAX_KEY_FILE).map_err(|e| SecretError::Identity {
                        path: f.clone(),
                        message: format!("cannot read the passphrase file named by {ENV_PASSPHRASE_FILE}: {e}"),
                    })?;
                    let s =
                        String::from_utf8(data.to_vec()).map_err(|_| SecretError::Identity {
                            path: f.clone(),
                            message: format!(
                                "the passphrase file named by {ENV_PASSPHRASE_FILE} is not UTF-8"
                            ),
                        })?;
                    let mut s = Zeroizing::new(s);
                    let p = s.trim_end_matches(['\n', '\r']).to_string();
                    s.zeroize();
                    return Ok((SecretString::from(p), PassOrigin::File));
                }
                if let Some(v) = std::env::var_os(ENV_PASSPHRASE) {
                    if attempt > 0 {
                        return Err(wrong(PassOrigin::Env));
                    }
                    return Ok((
                        SecretString::from(v.to_string_lossy().to_string()),
                        PassOrigin::Env,
                    ));
                }
                if attempt >= 3 {
                    return Err(wrong(PassOrigin::Tty));
                }
                let prompt = if attempt == 0 {
                    format!("Passphrase for {what}: ")
                } else {
                    format!("Wrong passphrase, try again. Passphrase for {what}: ")
                };
                match tty::prompt_hidden(&prompt) {
                    Ok(Some(p)) => {
                        self.prompts += 1;
                        Ok((p, PassOrigin::Tty))
                    }
                    Ok(None) => Err(SecretError::NoPassphrase { what: what.into() }),
                    Err(tty::PromptError::Cancelled) => Err(SecretError::Cancelled),
                    Err(tty::PromptError::Io(_)) => {
                        Err(SecretError::NoPassphrase { what: what.into() })
                    }
                }
            }
        }
    }

    /// Find a passphrase for which `try_one` succeeds: known ones first, then ask (up to three times on a TTY).
    pub(super) fn unlock<T>(
        &mut self,
        what: &str,
        mut try_one: impl FnMut(&SecretString) -> Result<Option<T>, SecretError>,
    ) -> Result<T, SecretError> {
        for p in &self.known {
            if let Some(t) = try_one(p)? {
                return Ok(t);
            }
        }
        let mut attempt = 0;
        loop {
            let (p, origin) = self.obtain(what, attempt)?;
            if let Some(t) = try_one(&p)? {
                self.known.push(p);
                return Ok(t);
            }
            if origin != PassOrigin::Tty {
                return Err(SecretError::WrongPassphrase {
                    what: what.into(),
                    origin: origin.describe(),
                });
            }
            attempt += 1;
        }
    }
}

/// A passphrase to protect a new identity: `EDGEFLEET_AGE_PASSPHRASE_FILE`, `EDGEFLEET_AGE_PASSPHRASE`, or asked
/// twice on the terminal. Empty passphrases are refused.
pub fn new_passphrase(what: &str) -> Result<SecretString, SecretError> {
    let mut p = Passphrases {
        source: PassphraseSource::Auto,
        known: Vec::new(),
        prompts: 0,
    };
    let env_set = std::env::var_os(ENV_PASSPHRASE_FILE).is_some()
        || std::env::var_os(ENV_PASSPHRASE).is_some();
    let (first, _) = p.obtain(what, 0)?;
    if first.expose_secret().is_empty() {
        return Err(SecretError::NoPassphrase {
            what: format!("{what} (an empty passphrase was given)"),
        });
    }
    if !env_set {
        match tty::prompt_hidden(&format!("Confirm the passphrase for {what}: ")) {
            Ok(Some(again)) if again.expose_secret() == first.expose_secret() => {}
            Ok(Some(_)) => {
                return Err(SecretError::WrongPassphrase {
                    what: what.into(),
                    origin: "the terminal: the two passphrases differ".into(),
                })
            }
            Ok(None) | Err(tty::PromptError::Io(_)) => {
                return Err(SecretError::NoPassphrase { what: what.into() })
            }
            Err(tty::PromptError::Cancelled) => return Err(SecretError::Cancelled),
        }
    }
    Ok(first)
}

/// Encrypt `plaintext` with a passphrase (scrypt) as an ASCII-armored age file.
pub fn encrypt_with_passphrase(
    path: &Path,
    plaintext: &[u8],
    passphrase: SecretString,
) -> Result<Vec<u8>, SecretError> {
    let err = |e: &dyn fmt::Display| SecretError::Encrypt {
        path: path.into(),
        message: e.to_string(),
    };
    let encryptor = age::Encryptor::with_user_passphrase(passphrase);
    let mut out = Vec::with_capacity(plaintext.len() * 4 / 3 + 1024);
    let armor = ArmoredWriter::wrap_output(&mut out, Format::AsciiArmor).map_err(|e| err(&e))?;
    let mut w = encryptor.wrap_output(armor).map_err(|e| err(&e))?;
    w.write_all(plaintext).map_err(|e| err(&e))?;
    let armor = w.finish().map_err(|e| err(&e))?;
    armor.finish().map_err(|e| err(&e))?;
    Ok(out)
}

/// The controlling terminal, for passphrase prompts (no echo, Ctrl-C cancels).
mod tty {
    use std::fs::OpenOptions;
    use std::io::{self, Read, Write};
    use std::os::fd::AsRawFd;

    use age::secrecy::zeroize::{Zeroize, Zeroizing};
    use age::secrecy::SecretString;

    /// Why a prompt produced no passphrase.
    pub(super) enum PromptError {
        /// Ctrl-C or Ctrl-D.
        Cancelled,
        /// Reading the terminal failed.
        Io(#[allow(dead_code)] io::Error),
    }

    struct Restore {
        fd: i32,
        orig: libc::termios,
    }
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: fd is an open terminal descriptor owned by the caller for the guard's lifetime; `orig` was
            // filled by tcgetattr on it.
            unsafe {
                libc::tcsetattr(self.fd, libc::TCSANOW, &self.orig);
            }
        }
    }

    /// Ask on `/dev/tty` without echo. `Ok(None)` when there is no controlling terminal.
    pub(super) fn prompt_hidden(prompt: &str) -> Result<Option<SecretString>, PromptError> {
        let Ok(mut tty) = OpenOptions::new().read(true).write(true).open("/dev/tty") else {
            return Ok(None);
        };
        let fd = tty.as_raw_fd();
        // SAFETY: termios is plain old data; tcgetattr fills it and reports failure via its return value.
        let mut term: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(fd, &mut term) } != 0 {
            return Ok(None);
        }
        let guard = Restore { fd, orig: term };
        term.c_lflag &= !(libc::ECHO | libc::ICANON | libc::ISIG);
        term.c_cc[libc::VMIN] = 1;
        term.c_cc[libc::VTIME] = 0;
        // SAFETY: fd is the open terminal; term is a valid termios.
        if unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &term) } != 0 {
            return Ok(None);
        }
        tty.write_all(prompt.as_bytes()).map_err(PromptError::Io)?;
        tty.flush().map_err(PromptError::Io)?;
        let mut buf = Zeroizing::new(Vec::<u8>::with_capacity(256));
        let mut byte = [0u8; 1];
        loop {
            match tty.read(&mut byte) {
                Ok(0) => break,
                Ok(_) => match byte[0] {
                    b'\n' | b'\r' => break,
                    0x03 => {
                        let _ = tty.write_all(b"\n");
                        return Err(PromptError::Cancelled);
                    }
                    0x04 if buf.is_empty() => {
                        let _ = tty.write_all(b"\n");
                        return Err(PromptError::Cancelled);
                    }
                    0x7f | 0x08 => {
                        // Remove one whole UTF-8 character.
                        while let Some(b) = buf.pop() {
                            if b & 0xC0 != 0x80 {
                                break;
                            }
                        }
                    }
                    0x15 => buf.clear(),
                    b => {
                        if buf.len() < buf.capacity() {
                            buf.push(b);
                        }
                    }
                },
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(PromptError::Io(e)),
            }
        }
        byte.zeroize();
        let _ = tty.write_all(b"\n");
        drop(guard);
        let s = String::from_utf8_lossy(&buf).to_string();
        Ok(Some(SecretString::from(s)))
    }
}
