//! `edgefleet vault`: encrypt, decrypt, view, edit, rekey and keygen for age-encrypted secrets files.
//!
//! Owns the file handling around the age operations in `vars::secrets`: output names, atomic writes, removing
//! plaintext (overwritten first), the private temp file of `edit` and the editor process, and the status lines
//! on stderr. It must not implement cryptography (that is `secrets`) and must not print plaintext anywhere but
//! where the operator asked for it (`view`, `decrypt -o -`, the editor's file).
//!
//! Behaviour worth knowing:
//! - Files are ASCII-armored age files (`-----BEGIN AGE ENCRYPTED FILE-----`), readable by `age -d` / `rage -d`.
//! - Recipients: `-r`/`-R` when given, else the `.age-recipients` file in the file's directory or the nearest
//!   one above. age files do not record their recipients, so `edit` and `rekey` use the same lookup; `edit`
//!   refuses before opening the editor when there is none, and warns when the identity that decrypted the file
//!   is not among the new recipients (you would lock yourself out).
//! - `encrypt` writes FILE.age and then overwrites FILE with zeros and removes it, unless `--keep`. Overwriting
//!   is best effort: copy-on-write file systems and SSD wear levelling may keep old blocks; the real protection
//!   is never having the plaintext on disk, so prefer `vault edit`, or `vault encrypt - -o FILE.age` from stdin.
//! - `decrypt` writes plaintext with mode 0600 and never overwrites an existing file.
//! - `edit` decrypts into memory and writes the plaintext only to a private temp file: mode 0600 in a fresh
//!   0700 directory, on /dev/shm (RAM) when it exists, else $TMPDIR. Every file in that directory (editors'
//!   swap and backup files too) is overwritten and removed afterwards, also when the editor fails or edgefleet
//!   is told to stop (SIGTERM, SIGHUP: the editor is stopped first). Ctrl-C belongs to the editor while it runs.
//!   The editor is `$VISUAL`, else `$EDITOR`, else `vi`, run through `sh -c`; it does not inherit
//!   `EDGEFLEET_AGE_PASSPHRASE*`. Unchanged content is not re-encrypted (no churn in git).

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use age::secrecy::zeroize::Zeroizing;
use age::secrecy::ExposeSecret;

use crate::cli::{IdentityOptions, RecipientOptions, VaultArgs, VaultCommand};
use crate::diag::display_path;
use crate::error::{AppError, ExitCode};
use crate::vars::secrets::{
    self, encrypt_armored, looks_like_age, resolve_recipients, RecipientEntry, SecretError,
    SecretStore,
};

/// Run `edgefleet vault ...`.
pub fn run(args: VaultArgs) -> Result<ExitCode, AppError> {
    match args.command {
        VaultCommand::Encrypt {
            files,
            rcpt,
            output,
            keep,
        } => encrypt(&files, &rcpt, output.as_deref(), keep),
        VaultCommand::Decrypt { files, id, output } => decrypt(&files, &id, output.as_deref()),
        VaultCommand::View { files, id } => view(&files, &id),
        VaultCommand::Edit { file, id, rcpt } => edit(&file, &id, &rcpt),
        VaultCommand::Rekey { files, id, rcpt } => rekey(&files, &id, &rcpt),
        VaultCommand::Keygen { output, passphrase } => keygen(output.as_deref(), passphrase),
    }
}

fn is_stdio(p: &Path) -> bool {
    p.as_os_str() == "-"
}

/// Secret errors are problems with the operator's files: exit 4 (a cancelled prompt is an interruption).
fn load_err(e: SecretError) -> AppError {
    match e {
        SecretError::Cancelled => AppError::Interrupted,
        other => AppError::Load(other.into_diag().into()),
    }
}

fn write_err(path: &Path, e: io::Error) -> AppError {
    AppError::Other(format!("cannot write {}: {e}", display_path(path)))
}

fn read_input(path: &Path) -> Result<Zeroizing<Vec<u8>>, AppError> {
    let mut buf = Zeroizing::new(Vec::new());
    if is_stdio(path) {
        // Reserve generously so the buffer does not reallocate (and leave copies) for usual secret sizes.
        buf.reserve(1 << 20);
        io::stdin()
            .lock()
            .read_to_end(&mut buf)
            .map_err(|e| AppError::Other(format!("cannot read standard input: {e}")))?;
        return Ok(buf);
    }
    let mut f = fs::File::open(path).map_err(|source| {
        load_err(SecretError::Read {
            path: path.into(),
            source,
        })
    })?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    buf.reserve(len as usize + 1);
    f.read_to_end(&mut buf).map_err(|source| {
        load_err(SecretError::Read {
            path: path.into(),
            source,
        })
    })?;
    Ok(buf)
}

fn write_stdout(data: &[u8]) -> Result<(), AppError> {
    let mut out = io::stdout().lock();
    match out.write_all(data).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        // `vault view x | head`: the reader went away; not an error of ours.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(AppError::Other(format!(
            "cannot write to standard output: {e}"
        ))),
    }
}

/// Write `data` to `path` atomically (temp file in the same directory, fsync, rename). Keeps the mode of an
/// existing file; new files get `mode`.
fn write_atomic(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "out".into());
    let mode = fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(mode);
    let tmp = dir.join(format!(
        ".{name}.edgefleet-{:016x}.tmp",
        rand::random::<u64>()
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Write plaintext to a new file with mode 0600; never overwrites. A failed write removes what was written.
fn write_private_new(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    let r = f.write_all(data).and_then(|_| f.sync_all());
    if r.is_err() {
        drop(f);
        let _ = shred_remove(path);
    }
    r
}

/// Overwrite a file with zeros (best effort: see the module doc), then remove it.
fn shred_remove(path: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.is_file() {
        if let Ok(mut f) = OpenOptions::new().write(true).open(path) {
            let zeros = [0u8; 64 * 1024];
            let mut left = meta.len();
            while left > 0 {
                let n = left.min(zeros.len() as u64) as usize;
                if f.write_all(&zeros[..n]).is_err() {
                    break;
                }
                left -= n as u64;
            }
            let _ = f.sync_all();
        }
    }
    fs::remove_file(path)
}

fn with_age_suffix(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".age");
    PathBuf::from(s)
}

fn without_age_suffix(p: &Path) -> Option<PathBuf> {
    if secrets::is_age_path(p) {
        Some(p.with_extension(""))
    } else {
        None
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

// ---------------------------------------------------------------------------------------------------------------
// encrypt
// ---------------------------------------------------------------------------------------------------------------

fn encrypt(
    files: &[PathBuf],
    rcpt: &RecipientOptions,
    output: Option<&Path>,
    keep: bool,
) -> Result<ExitCode, AppError> {
    if output.is_some() && files.len() > 1 {
        return Err(AppError::Usage(
            "--output works with a single file; without it each FILE becomes FILE.age".into(),
        ));
    }
    for file in files {
        let out = match (output, is_stdio(file)) {
            (Some(o), _) => o.to_path_buf(),
            (None, true) => {
                return Err(AppError::Usage(
                    "encrypting standard input (`-`) needs --output FILE (or `-o -`)".into(),
                ))
            }
            (None, false) => with_age_suffix(file),
        };
        let plaintext = read_input(file)?;
        if looks_like_age(&plaintext) {
            return Err(load_err(SecretError::Encrypt {
                path: file.clone(),
                message: "it is already age-encrypted; use `edgefleet vault rekey` to change its recipients"
                    .into(),
            }));
        }
        // Recipients are looked up from where the encrypted file will live.
        let lookup = if is_stdio(&out) {
            PathBuf::from("stdin")
        } else {
            out.clone()
        };
        let (recipients, source) =
            resolve_recipients(&rcpt.recipient, &rcpt.recipients_file, &lookup)
                .map_err(load_err)?;
        let ct = encrypt_armored(&out, &plaintext, &recipients).map_err(load_err)?;
        if is_stdio(&out) {
            write_stdout(&ct)?;
        } else {
            write_atomic(&out, &ct, 0o644).map_err(|e| write_err(&out, e))?;
        }
        let removed = if !keep && !is_stdio(file) {
            shred_remove(file).map_err(|e| {
                AppError::Other(format!(
                    "encrypted {} but could not remove the plaintext {}: {e}; remove it yourself",
                    display_path(&out),
                    display_path(file)
                ))
            })?;
            "; plaintext overwritten and removed"
        } else {
            ""
        };
        eprintln!(
            "encrypted {} -> {} for {} (from {source}){removed}",
            if is_stdio(file) {
                "stdin".to_string()
            } else {
                display_path(file)
            },
            if is_stdio(&out) {
                "stdout".to_string()
            } else {
                display_path(&out)
            },
            plural(recipients.len(), "recipient", "recipients"),
        );
    }
    Ok(ExitCode::Ok)
}

// ---------------------------------------------------------------------------------------------------------------
// decrypt / view
// ---------------------------------------------------------------------------------------------------------------

fn decrypt_one(store: &SecretStore, file: &Path) -> Result<secrets::Decrypted, AppError> {
    let data = read_input(file)?;
    let name = if is_stdio(file) {
        Path::new("stdin")
    } else {
        file
    };
    store.decrypt_bytes(name, &data).map_err(load_err)
}

fn decrypt(
    files: &[PathBuf],
    id: &IdentityOptions,
    output: Option<&Path>,
) -> Result<ExitCode, AppError> {
    if output.is_some() && files.len() > 1 {
        return Err(AppError::Usage(
            "--output works with a single file; without it each FILE.age becomes FILE".into(),
        ));
    }
    let store = SecretStore::new(&id.identity);
    for file in files {
        let out = match output {
            Some(o) => o.to_path_buf(),
            None => without_age_suffix(file).ok_or_else(|| {
                AppError::Usage(format!(
                    "{} does not end in .age, so there is no default output name: pass -o FILE (or `-o -`)",
                    display_path(file)
                ))
            })?,
        };
        if !is_stdio(&out) && fs::symlink_metadata(&out).is_ok() {
            return Err(AppError::Other(format!(
                "{} already exists; not overwriting it with plaintext: remove it, or pass -o",
                display_path(&out)
            )));
        }
        let d = decrypt_one(&store, file)?;
        if is_stdio(&out) {
            write_stdout(&d.plaintext)?;
        } else {
            write_private_new(&out, &d.plaintext).map_err(|e| write_err(&out, e))?;
            eprintln!(
                "decrypted {} -> {} (mode 0600; this is plaintext on disk: delete it when done)",
                display_path(file),
                display_path(&out)
            );
        }
    }
    Ok(ExitCode::Ok)
}

fn view(files: &[PathBuf], id: &IdentityOptions) -> Result<ExitCode, AppError> {
    let store = SecretStore::new(&id.identity);
    // Decrypt everything first: nothing is printed unless every file decrypts.
    let mut all = Vec::with_capacity(files.len());
    for file in files {
        all.push(decrypt_one(&store, file)?);
    }
    for d in &all {
        write_stdout(&d.plaintext)?;
    }
    Ok(ExitCode::Ok)
}

// ---------------------------------------------------------------------------------------------------------------
// rekey / edit: re-encrypting to a (possibly new) set of recipients
// ---------------------------------------------------------------------------------------------------------------

/// Is the identity that decrypted a file (`age1...`, `ssh tag X`, `passphrase`) among `recipients`?
fn identity_kept(identity: &str, recipients: &[RecipientEntry]) -> bool {
    if let Some(tag) = identity.strip_prefix("ssh tag ") {
        recipients.iter().any(|r| r.ssh_tag.as_deref() == Some(tag))
    } else {
        recipients.iter().any(|r| r.key == identity)
    }
}

fn warn_recipient_change(
    file: &Path,
    d: &secrets::Decrypted,
    recipients: &[RecipientEntry],
    source: &str,
) {
    let before = d.header.stanzas.len();
    if !identity_kept(&d.identity, recipients) {
        eprintln!(
            "warning: {}: the identity that decrypted it ({}) is not among the new recipients (from {source}): \
             after this you will not be able to decrypt it yourself",
            display_path(file),
            d.identity
        );
    }
    if d.header.is_passphrase() {
        eprintln!(
            "note: {} was encrypted with a passphrase; it is now encrypted to {} (from {source})",
            display_path(file),
            plural(recipients.len(), "recipient", "recipients")
        );
    } else if before != recipients.len() {
        eprintln!(
            "note: {} was encrypted to {}; it is now encrypted to {} (from {source})",
            display_path(file),
            plural(before, "recipient", "recipients"),
            plural(recipients.len(), "recipient", "recipients")
        );
    }
}

fn rekey(
    files: &[PathBuf],
    id: &IdentityOptions,
    rcpt: &RecipientOptions,
) -> Result<ExitCode, AppError> {
    let store = SecretStore::new(&id.identity);
    for file in files {
        if is_stdio(file) {
            return Err(AppError::Usage(
                "rekey rewrites files in place; `-` is not a file".into(),
            ));
        }
        let d = decrypt_one(&store, file)?;
        let (recipients, source) =
            resolve_recipients(&rcpt.recipient, &rcpt.recipients_file, file).map_err(load_err)?;
        let ct = encrypt_armored(file, &d.plaintext, &recipients).map_err(load_err)?;
        warn_recipient_change(file, &d, &recipients, &source);
        write_atomic(file, &ct, 0o644).map_err(|e| write_err(file, e))?;
        eprintln!(
            "rekeyed {} for {} (from {source})",
            display_path(file),
            plural(recipients.len(), "recipient", "recipients")
        );
    }
    Ok(ExitCode::Ok)
}

/// The private directory and file `edit` hands to the editor. Dropping it overwrites and removes every file in
/// the directory (the editor's swap and backup files too) and the directory itself.
struct EditTemp {
    dir: PathBuf,
    file: PathBuf,
}

impl EditTemp {
    fn base() -> PathBuf {
        let shm = Path::new("/dev/shm");
        let writable = fs::metadata(shm)
            .map(|m| m.is_dir() && !m.permissions().readonly())
            .unwrap_or(false);
        if writable {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        }
    }

    fn create(name: &str, content: &[u8]) -> io::Result<Self> {
        let base = Self::base();
        match Self::create_in(&base, name, content) {
            // /dev/shm can exist and still refuse us (read-only or full in a container): fall back to $TMPDIR.
            Err(_) if base != std::env::temp_dir() => {
                Self::create_in(&std::env::temp_dir(), name, content)
            }
            r => r,
        }
    }

    fn create_in(base: &Path, name: &str, content: &[u8]) -> io::Result<Self> {
        let mut last = None;
        for _ in 0..16 {
            let dir = base.join(format!("edgefleet-vault-{:016x}", rand::random::<u64>()));
            match fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {
                    // The mode given to mkdir is filtered by the umask; make sure it is exactly 0700.
                    let t = EditTemp {
                        file: dir.join(name),
                        dir,
                    };
                    fs::set_permissions(&t.dir, fs::Permissions::from_mode(0o700))?;
                    let mut f = OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&t.file)?;
                    fs::set_permissions(&t.file, fs::Permissions::from_mode(0o600))?;
                    f.write_all(content)?;
                    f.sync_all()?;
                    return Ok(t);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("cannot create a private temp directory")))
    }
}

impl Drop for EditTemp {
    fn drop(&mut self) {
        fn scrub(dir: &Path) {
            if let Ok(entries) = fs::read_dir(dir) {
                for e in entries.flatten() {
                    let p = e.path();
                    match e.file_type() {
                        Ok(t) if t.is_dir() => {
                            scrub(&p);
                            let _ = fs::remove_dir(&p);
                        }
                        _ => {
                            let _ = shred_remove(&p);
                        }
                    }
                }
            }
        }
        scrub(&self.dir);
        let _ = fs::remove_dir(&self.dir);
        if self.dir.exists() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Signals received while the editor runs.
static GOT_INT: AtomicBool = AtomicBool::new(false);
static GOT_TERM: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    // Only async-signal-safe work here: set a flag.
    if sig == libc::SIGINT {
        GOT_INT.store(true, Ordering::SeqCst);
    } else {
        GOT_TERM.store(true, Ordering::SeqCst);
    }
}

/// Catches SIGINT, SIGTERM and SIGHUP while alive (so the temp file is always cleaned up), restoring the
/// previous dispositions on drop. Handlers (unlike ignored signals) are reset in the editor by exec.
struct SignalGuard {
    old: Vec<(libc::c_int, libc::sigaction)>,
}

impl SignalGuard {
    fn install() -> Self {
        GOT_INT.store(false, Ordering::SeqCst);
        GOT_TERM.store(false, Ordering::SeqCst);
        let mut old = Vec::new();
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: sigaction structs are plain data; the handler only stores to atomics (async-signal-safe).
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as *const () as libc::sighandler_t;
                libc::sigemptyset(&mut sa.sa_mask);
                sa.sa_flags = 0;
                let mut prev: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, &sa, &mut prev) == 0 {
                    old.push((sig, prev));
                }
            }
        }
        SignalGuard { old }
    }
}

impl Drop for SignalGuard {
    fn drop(&mut self) {
        for (sig, prev) in &self.old {
            // SAFETY: restoring a disposition previously returned by sigaction.
            unsafe {
                libc::sigaction(*sig, prev, std::ptr::null_mut());
            }
        }
    }
}

enum EditorEnd {
    Exited(ExitStatus),
    Stopped,
}

fn run_editor(file: &Path) -> Result<EditorEnd, AppError> {
    let editor = std::env::var("VISUAL")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| {
            std::env::var("EDITOR")
                .ok()
                .filter(|s| !s.trim().is_empty())
        })
        .unwrap_or_else(|| "vi".to_string());
    let _signals = SignalGuard::install();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("exec {editor} \"$1\""))
        .arg("sh")
        .arg(file)
        .env_remove(secrets::ENV_PASSPHRASE)
        .env_remove(secrets::ENV_PASSPHRASE_FILE)
        .spawn()
        .map_err(|e| AppError::Other(format!("cannot start the editor `{editor}`: {e}")))?;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(EditorEnd::Exited(status)),
            Ok(None) => {}
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(AppError::Other(format!("lost track of the editor: {e}")));
            }
        }
        if GOT_TERM.load(Ordering::SeqCst) {
            // Stop the editor first, then let the caller clean up.
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            for _ in 0..100 {
                if let Ok(Some(_)) = child.try_wait() {
                    return Ok(EditorEnd::Stopped);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            return Ok(EditorEnd::Stopped);
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn edit(file: &Path, id: &IdentityOptions, rcpt: &RecipientOptions) -> Result<ExitCode, AppError> {
    if is_stdio(file) {
        return Err(AppError::Usage("edit needs a file, not `-`".into()));
    }
    let store = SecretStore::new(&id.identity);
    let d = decrypt_one(&store, file)?;
    // Recipients before the editor opens: never make the operator edit and then refuse to save.
    let (recipients, source) =
        resolve_recipients(&rcpt.recipient, &rcpt.recipients_file, file).map_err(load_err)?;
    warn_recipient_change(file, &d, &recipients, &source);

    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "secret".into());
    let name = name.strip_suffix(".age").unwrap_or(&name).to_string();
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let name = if name.is_empty() || name.starts_with('.') {
        format!("secret{name}")
    } else {
        name
    };
    let temp = EditTemp::create(&name, &d.plaintext).map_err(|e| {
        AppError::Other(format!(
            "cannot create a private temp file for editing: {e}"
        ))
    })?;
    let end = run_editor(&temp.file)?;
    match end {
        EditorEnd::Stopped => {
            drop(temp);
            eprintln!("stopped: {} left unchanged", display_path(file));
            return Err(AppError::Interrupted);
        }
        EditorEnd::Exited(status) if !status.success() => {
            drop(temp);
            if GOT_INT.load(Ordering::SeqCst) {
                eprintln!("interrupted: {} left unchanged", display_path(file));
                return Err(AppError::Interrupted);
            }
            return Err(AppError::Other(format!(
                "the editor exited with {status}; {} left unchanged",
                display_path(file)
            )));
        }
        EditorEnd::Exited(_) => {}
    }
    let edited = read_input(&temp.file).map_err(|_| {
        AppError::Other(format!(
            "the edited file is gone (did the editor move it?); {} left unchanged",
            display_path(file)
        ))
    })?;
    drop(temp);
    if edited.as_slice() == d.plaintext.as_slice() {
        eprintln!("no changes: {} left as it was", display_path(file));
        return Ok(ExitCode::Ok);
    }
    let ct = encrypt_armored(file, &edited, &recipients).map_err(load_err)?;
    write_atomic(file, &ct, 0o644).map_err(|e| write_err(file, e))?;
    eprintln!(
        "saved {} for {} (from {source})",
        display_path(file),
        plural(recipients.len(), "recipient", "recipients")
    );
    // A YAML vars file that no longer parses is saved anyway (the edit is not lost) but flagged now.
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".yml") || lower.ends_with(".yaml") {
        if let Ok(text) = std::str::from_utf8(&edited) {
            if let Err(e) = secrets::check_secret_yaml(text, file) {
                super::print_warning(&e.to_string());
            }
        }
    }
    Ok(ExitCode::Ok)
}

// ---------------------------------------------------------------------------------------------------------------
// keygen
// ---------------------------------------------------------------------------------------------------------------

fn keygen(output: Option<&Path>, passphrase: bool) -> Result<ExitCode, AppError> {
    let id = age::x25519::Identity::generate();
    let public = id.to_public().to_string();
    let created = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let secret = id.to_string();
    let content = Zeroizing::new(format!(
        "# created: {created}\n# public key: {public}\n{}\n",
        secret.expose_secret()
    ));
    let target = output.filter(|o| !is_stdio(o));
    let data: Zeroizing<Vec<u8>> = if passphrase {
        let what = match target {
            Some(o) => format!("new identity {}", display_path(o)),
            None => "the new identity".into(),
        };
        let p = secrets::new_passphrase(&what).map_err(load_err)?;
        let name = target.unwrap_or(Path::new("stdout"));
        Zeroizing::new(
            secrets::encrypt_with_passphrase(name, content.as_bytes(), p).map_err(load_err)?,
        )
    } else {
        Zeroizing::new(content.as_bytes().to_vec())
    };
    match target {
        Some(o) => {
            write_private_new(o, &data).map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    AppError::Usage(format!(
                        "{} already exists; not overwriting an identity (losing one loses every file encrypted \
                         only to it)",
                        display_path(o)
                    ))
                } else {
                    write_err(o, e)
                }
            })?;
            eprintln!("Public key: {public}");
            eprintln!(
                "wrote {} (mode 0600{}); add the public key to .age-recipients",
                display_path(o),
                if passphrase {
                    ", passphrase-protected"
                } else {
                    ""
                }
            );
        }
        None => {
            write_stdout(&data)?;
            eprintln!("Public key: {public}");
        }
    }
    Ok(ExitCode::Ok)
}
