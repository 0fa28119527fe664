//! `edgefleet vault` and the age loader: real age files, real SSH keys (ssh-keygen), the real `age` CLI for
//! interop, a real pseudo-terminal for the passphrase prompt, and a scripted `$EDITOR`.
//!
//! Every command runs in a fresh session without a controlling terminal (setsid) and with HOME pointing at an
//! empty directory, so nothing here can prompt or pick up the developer's own keys by accident.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use age::secrecy::ExposeSecret;
use edgefleet::redact;
use edgefleet::vars::secrets::{self, PassphraseSource, SecretStore};

use crate::support;

const CANARY: &str = "db-password-canary-7Hq2x";

/// A temp directory with an empty HOME, used as the working directory of every command.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("home/.ssh")).unwrap();
        Sandbox { dir }
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn home(&self) -> PathBuf {
        self.path("home")
    }
    fn write(&self, rel: &str, content: &str) -> PathBuf {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&p, content).unwrap();
        p
    }
    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel)).unwrap()
    }
    /// `edgefleet` in this sandbox, detached from any terminal, without passphrase or editor variables.
    fn ef(&self) -> Command {
        let mut c = support::edgefleet();
        c.current_dir(self.dir.path())
            .env("HOME", self.home())
            .env_remove("EDGEFLEET_AGE_PASSPHRASE")
            .env_remove("EDGEFLEET_AGE_PASSPHRASE_FILE")
            .env_remove("VISUAL")
            .env_remove("EDITOR")
            .stdin(Stdio::null());
        // SAFETY: setsid is async-signal-safe; it only detaches the child from our controlling terminal.
        unsafe {
            c.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        c
    }
    fn run(&self, args: &[&str]) -> Output {
        self.ef().args(args).output().unwrap()
    }
    /// `edgefleet vault keygen -o NAME`; returns the public key.
    fn keygen(&self, name: &str) -> String {
        let out = self.run(&["vault", "keygen", "-o", name]);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = self.read(name);
        text.lines()
            .find_map(|l| l.strip_prefix("# public key: "))
            .unwrap()
            .to_string()
    }
    /// `ssh-keygen -t KIND`; returns the public key line.
    fn ssh_keygen(&self, rel: &str, kind: &str, passphrase: &str) -> String {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        let mut c = Command::new("ssh-keygen");
        c.args([
            "-q",
            "-t",
            kind,
            "-N",
            passphrase,
            "-C",
            &format!("{kind}@test"),
            "-f",
        ])
        .arg(&p);
        if kind == "rsa" {
            c.args(["-b", "2048"]);
        }
        crate::tools::require("ssh-keygen");
        let out = c
            .output()
            .unwrap_or_else(|e| panic!("cannot run ssh-keygen: {e}"));
        assert!(out.status.success(), "{}", stderr(&out));
        fs::read_to_string(p.with_extension("pub"))
            .unwrap_or_else(|_| fs::read_to_string(format!("{}.pub", p.display())).unwrap())
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The `age` CLI: these tests fail (never skip) without it.
fn age_cli() -> Command {
    crate::tools::require("age");
    Command::new("age")
}

fn ssh_tag(pubkey: &str) -> String {
    secrets::parse_recipient(pubkey, "test")
        .unwrap()
        .ssh_tag
        .unwrap()
}

fn assert_code(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
}

fn assert_no_leak(out: &Output, secret: &str) {
    assert!(
        !stdout(out).contains(secret),
        "leaked on stdout: {}",
        stdout(out)
    );
    assert!(
        !stderr(out).contains(secret),
        "leaked on stderr: {}",
        stderr(out)
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Round trips per recipient type, and interop with the age CLI
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn x25519_roundtrip_with_recipients_file_and_age_cli() {
    let sb = Sandbox::new();
    let public = sb.keygen("key.txt");
    assert!(public.starts_with("age1"), "{public}");
    assert_eq!(
        fs::metadata(sb.path("key.txt"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    // Our identity file is a valid age identity file: age-keygen derives the same public key from it.
    let y = Command::new("age-keygen")
        .arg("-y")
        .arg(sb.path("key.txt"))
        .output()
        .unwrap_or_else(|e| {
            crate::tools::require("age-keygen");
            panic!("cannot run age-keygen: {e}")
        });
    assert_eq!(String::from_utf8_lossy(&y.stdout).trim(), public);

    sb.write(".age-recipients", &format!("# team\n{public}\n"));
    sb.write(
        "group_vars/all/vault.yml",
        &format!("db_password: {CANARY}\n"),
    );
    let out = sb.run(&["vault", "encrypt", "group_vars/all/vault.yml"]);
    assert_code(&out, 0);
    assert_no_leak(&out, CANARY);
    // The plaintext is gone, the encrypted file is armored and does not contain the secret.
    assert!(!sb.path("group_vars/all/vault.yml").exists());
    let ct = sb.read("group_vars/all/vault.yml.age");
    assert!(
        ct.starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n"),
        "{ct}"
    );
    assert!(!ct.contains(CANARY));

    // view
    let out = sb.run(&[
        "vault",
        "view",
        "--identity",
        "key.txt",
        "group_vars/all/vault.yml.age",
    ]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), format!("db_password: {CANARY}\n"));

    // The age CLI decrypts what we wrote.
    let out = age_cli()
        .args(["-d", "-i"])
        .arg(sb.path("key.txt"))
        .arg(sb.path("group_vars/all/vault.yml.age"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("db_password: {CANARY}\n"));

    // decrypt: FILE.age -> FILE, mode 0600, and never over an existing file.
    let out = sb.run(&[
        "vault",
        "decrypt",
        "--identity",
        "key.txt",
        "group_vars/all/vault.yml.age",
    ]);
    assert_code(&out, 0);
    let plain = sb.path("group_vars/all/vault.yml");
    assert_eq!(
        fs::read_to_string(&plain).unwrap(),
        format!("db_password: {CANARY}\n")
    );
    assert_eq!(
        fs::metadata(&plain).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let out = sb.run(&[
        "vault",
        "decrypt",
        "--identity",
        "key.txt",
        "group_vars/all/vault.yml.age",
    ]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));

    // decrypt -o - prints to stdout.
    let out = sb.run(&[
        "vault",
        "decrypt",
        "--identity",
        "key.txt",
        "-o",
        "-",
        "group_vars/all/vault.yml.age",
    ]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), format!("db_password: {CANARY}\n"));
}

#[test]
fn files_from_the_age_cli_decrypt_armored_and_binary() {
    let sb = Sandbox::new();
    let public = sb.keygen("key.txt");
    for (name, armor) in [("armored.age", true), ("binary.age", false)] {
        let mut c = age_cli();
        c.arg("-r").arg(&public).arg("-o").arg(sb.path(name));
        if armor {
            c.arg("-a");
        }
        let mut child = c.stdin(Stdio::piped()).spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("from-age-cli: {CANARY}\n").as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
        let out = sb.run(&["vault", "view", "--identity", "key.txt", name]);
        assert_code(&out, 0);
        assert_eq!(stdout(&out), format!("from-age-cli: {CANARY}\n"), "{name}");
    }
}

#[test]
fn ssh_ed25519_roundtrip_and_default_ssh_identity() {
    let sb = Sandbox::new();
    let public = sb.ssh_keygen("home/.ssh/id_ed25519", "ed25519", "");
    sb.write("secret.yml", &format!("k: {CANARY}\n"));
    let out = sb.run(&["vault", "encrypt", "-r", public.trim(), "secret.yml"]);
    assert_code(&out, 0);
    let info = secrets::inspect(
        &sb.path("secret.yml.age"),
        sb.read("secret.yml.age").as_bytes(),
    )
    .unwrap();
    assert_eq!(info.stanzas.len(), 1);
    assert_eq!(info.stanzas[0].kind, "ssh-ed25519");
    assert_eq!(info.stanzas[0].ssh_tag(), Some(ssh_tag(&public).as_str()));

    // No --identity, no EDGEFLEET_AGE_IDENTITY: the operator's ~/.ssh/id_ed25519 is used.
    let out = sb.run(&["vault", "view", "secret.yml.age"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), format!("k: {CANARY}\n"));

    // And the age CLI agrees.
    let out = age_cli()
        .args(["-d", "-i"])
        .arg(sb.path("home/.ssh/id_ed25519"))
        .arg(sb.path("secret.yml.age"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("k: {CANARY}\n"));
}

#[test]
fn ssh_rsa_roundtrip_via_env_identity_list_and_age_cli() {
    let sb = Sandbox::new();
    let rsa_pub = sb.ssh_keygen("keys/rsa", "rsa", "");
    let x_pub = sb.keygen("keys/x.txt");
    sb.write("keys/recipients.txt", &rsa_pub);
    // Encrypted by the age CLI to the RSA key (with -R): we decrypt it.
    let mut child = age_cli()
        .args(["-a", "-R"])
        .arg(sb.path("keys/recipients.txt"))
        .arg("-o")
        .arg(sb.path("rsa.age"))
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(CANARY.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    // EDGEFLEET_AGE_IDENTITY is a ':'-separated list; the x25519 key is tried and does not match, RSA does.
    let out = sb
        .ef()
        .env(
            "EDGEFLEET_AGE_IDENTITY",
            format!(
                "{}:{}",
                sb.path("keys/x.txt").display(),
                sb.path("keys/rsa").display()
            ),
        )
        .args(["vault", "view", "rsa.age"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert_eq!(stdout(&out), CANARY);

    // We encrypt to ssh-rsa (-R file) plus x25519 (-r); the age CLI decrypts with the RSA key.
    sb.write("two.txt", CANARY);
    let out = sb.run(&[
        "vault",
        "encrypt",
        "-R",
        "keys/recipients.txt",
        "-r",
        &x_pub,
        "two.txt",
    ]);
    assert_code(&out, 0);
    let out = age_cli()
        .args(["-d", "-i"])
        .arg(sb.path("keys/rsa"))
        .arg(sb.path("two.txt.age"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), CANARY);
}

#[test]
fn encrypt_from_stdin_keep_and_refusals() {
    let sb = Sandbox::new();
    let public = sb.keygen("key.txt");
    // From stdin: the plaintext never touches the disk.
    let mut child = sb
        .ef()
        .args(["vault", "encrypt", "-", "-o", "s.age", "-r", &public])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(CANARY.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 0);
    let out = sb.run(&["vault", "view", "--identity", "key.txt", "s.age"]);
    assert_eq!(stdout(&out), CANARY);

    // --keep keeps the plaintext.
    sb.write("k.txt", CANARY);
    let out = sb.run(&["vault", "encrypt", "--keep", "-r", &public, "k.txt"]);
    assert_code(&out, 0);
    assert!(sb.path("k.txt").exists() && sb.path("k.txt.age").exists());

    // Already encrypted: refused.
    let out = sb.run(&[
        "vault",
        "encrypt",
        "-r",
        &public,
        "-o",
        "again.age",
        "s.age",
    ]);
    assert_code(&out, 4);
    assert!(
        stderr(&out).contains("already age-encrypted"),
        "{}",
        stderr(&out)
    );

    // No recipients anywhere: refused, and the plaintext stays.
    sb.write("alone/x.txt", CANARY);
    let out = sb.run(&["vault", "encrypt", "alone/x.txt"]);
    assert_code(&out, 4);
    assert!(stderr(&out).contains(".age-recipients"), "{}", stderr(&out));
    assert!(sb.path("alone/x.txt").exists());

    // A private key pasted into .age-recipients: named by file and line, never echoed.
    let secret_key = sb.read("key.txt");
    let secret_line = secret_key.lines().last().unwrap();
    sb.write("bad/.age-recipients", &format!("{public}\n{secret_line}\n"));
    sb.write("bad/y.txt", CANARY);
    let out = sb.run(&["vault", "encrypt", "bad/y.txt"]);
    assert_code(&out, 4);
    let err = stderr(&out);
    assert!(err.contains(".age-recipients:2"), "{err}");
    assert!(err.contains("private key"), "{err}");
    assert!(!err.contains(secret_line), "{err}");

    // keygen never overwrites an identity.
    let before = sb.read("key.txt");
    let out = sb.run(&["vault", "keygen", "-o", "key.txt"]);
    assert_code(&out, 5);
    assert_eq!(sb.read("key.txt"), before);
}

// ---------------------------------------------------------------------------------------------------------------
// rekey
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn rekey_changes_recipients() {
    let sb = Sandbox::new();
    let a = sb.keygen("a.txt");
    let b = sb.keygen("b.txt");
    sb.write("v.yml", &format!("x: {CANARY}\n"));
    assert_code(&sb.run(&["vault", "encrypt", "-r", &a, "v.yml"]), 0);
    assert_code(
        &sb.run(&["vault", "view", "--identity", "b.txt", "v.yml.age"]),
        4,
    );

    // Rekey to B only: A loses access, B gains it, and we are warned that A (who decrypted) is locked out.
    let out = sb.run(&[
        "vault",
        "rekey",
        "--identity",
        "a.txt",
        "-r",
        &b,
        "v.yml.age",
    ]);
    assert_code(&out, 0);
    assert!(
        stderr(&out).contains("not be able to decrypt"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains(&a), "{}", stderr(&out));
    assert_no_leak(&out, CANARY);
    let out = sb.run(&["vault", "view", "--identity", "b.txt", "v.yml.age"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), format!("x: {CANARY}\n"));
    assert_code(
        &sb.run(&["vault", "view", "--identity", "a.txt", "v.yml.age"]),
        4,
    );

    // Rekey from .age-recipients (A and B): both decrypt, no lock-out warning, the count change is noted.
    sb.write(".age-recipients", &format!("{a}\n{b}\n{a}\n"));
    let out = sb.run(&["vault", "rekey", "--identity", "b.txt", "v.yml.age"]);
    assert_code(&out, 0);
    assert!(
        !stderr(&out).contains("not be able to decrypt"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("1 recipient; it is now encrypted to 2"),
        "{}",
        stderr(&out)
    );
    for id in ["a.txt", "b.txt"] {
        let out = sb.run(&["vault", "view", "--identity", id, "v.yml.age"]);
        assert_code(&out, 0);
        assert_eq!(stdout(&out), format!("x: {CANARY}\n"));
    }
}

// ---------------------------------------------------------------------------------------------------------------
// edit
// ---------------------------------------------------------------------------------------------------------------

fn script(sb: &Sandbox, name: &str, body: &str) -> PathBuf {
    let p = sb.write(name, &format!("#!/bin/sh\n{body}"));
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn edit_with_scripted_editor_uses_private_temp_file_and_removes_it() {
    let sb = Sandbox::new();
    let public = sb.keygen("key.txt");
    sb.write("inv/.age-recipients", &format!("{public}\n"));
    sb.write(
        "inv/group_vars/all/vault.yml",
        &format!("db_password: {CANARY}\n"),
    );
    assert_code(
        &sb.run(&["vault", "encrypt", "inv/group_vars/all/vault.yml"]),
        0,
    );
    let log = sb.path("editor.log");
    let editor = script(
        &sb,
        "editor.sh",
        &format!(
            "f=\"$1\"\necho \"$f\" > '{log}'\nstat -c '%a' \"$f\" >> '{log}'\nstat -c '%a' \"$(dirname \"$f\")\" >> '{log}'\n\
             env | grep -c EDGEFLEET_AGE_PASSPHRASE >> '{log}'\n\
             sed -i 's/{CANARY}/edited-value-42/' \"$f\"\necho 'extra: yes' >> \"$f\"\n",
            log = log.display()
        ),
    );
    let out = sb
        .ef()
        .env("EDITOR", &editor)
        .env("EDGEFLEET_AGE_PASSPHRASE", "must-not-reach-the-editor")
        .args([
            "vault",
            "edit",
            "--identity",
            "key.txt",
            "inv/group_vars/all/vault.yml.age",
        ])
        .output()
        .unwrap();
    assert_code(&out, 0);
    let log = fs::read_to_string(&log).unwrap();
    let mut lines = log.lines();
    let temp = PathBuf::from(lines.next().unwrap());
    assert_eq!(lines.next(), Some("600"), "temp file mode: {log}");
    assert_eq!(lines.next(), Some("700"), "temp dir mode: {log}");
    assert_eq!(
        lines.next(),
        Some("0"),
        "passphrase variables reached the editor: {log}"
    );
    if Path::new("/dev/shm").is_dir() {
        assert!(temp.starts_with("/dev/shm"), "{}", temp.display());
    }
    assert_eq!(
        temp.file_name().unwrap(),
        "vault.yml",
        "keeps the name (editors pick syntax by it)"
    );
    assert!(!temp.exists(), "temp file left behind: {}", temp.display());
    assert!(!temp.parent().unwrap().exists(), "temp dir left behind");

    let out = sb.run(&[
        "vault",
        "view",
        "--identity",
        "key.txt",
        "inv/group_vars/all/vault.yml.age",
    ]);
    assert_eq!(stdout(&out), "db_password: edited-value-42\nextra: yes\n");

    // An editor that changes nothing: the file is left byte for byte as it was.
    let before = sb.read("inv/group_vars/all/vault.yml.age");
    let out = sb
        .ef()
        .env("EDITOR", "true")
        .args([
            "vault",
            "edit",
            "--identity",
            "key.txt",
            "inv/group_vars/all/vault.yml.age",
        ])
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert_eq!(sb.read("inv/group_vars/all/vault.yml.age"), before);

    // A failing editor: nothing saved, temp cleaned.
    let failing = script(
        &sb,
        "fail.sh",
        &format!(
            "echo \"$1\" > '{}'\necho junk >> \"$1\"\nexit 3\n",
            sb.path("fail.log").display()
        ),
    );
    let out = sb
        .ef()
        .env("VISUAL", &failing)
        .args([
            "vault",
            "edit",
            "--identity",
            "key.txt",
            "inv/group_vars/all/vault.yml.age",
        ])
        .output()
        .unwrap();
    assert_code(&out, 1);
    assert_eq!(sb.read("inv/group_vars/all/vault.yml.age"), before);
    let temp = PathBuf::from(sb.read("fail.log").trim());
    assert!(!temp.exists() && !temp.parent().unwrap().exists());
}

#[test]
fn edit_without_recipients_refuses_before_the_editor_runs() {
    let sb = Sandbox::new();
    let public = sb.keygen("key.txt");
    sb.write("s.yml", &format!("a: {CANARY}\n"));
    assert_code(&sb.run(&["vault", "encrypt", "-r", &public, "s.yml"]), 0);
    let marker = sb.path("editor-ran");
    let editor = script(&sb, "ed.sh", &format!("touch '{}'\n", marker.display()));
    let out = sb
        .ef()
        .env("EDITOR", &editor)
        .args(["vault", "edit", "--identity", "key.txt", "s.yml.age"])
        .output()
        .unwrap();
    assert_code(&out, 4);
    assert!(stderr(&out).contains("no recipients"), "{}", stderr(&out));
    assert!(
        !marker.exists(),
        "the editor ran although the result could not be saved"
    );
    // With -r it works.
    let out = sb
        .ef()
        .env("EDITOR", &editor)
        .args([
            "vault",
            "edit",
            "--identity",
            "key.txt",
            "-r",
            &public,
            "s.yml.age",
        ])
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert!(marker.exists());
}

#[test]
fn edit_stopped_by_sigterm_cleans_up_and_leaves_the_file() {
    let sb = Sandbox::new();
    let public = sb.keygen("key.txt");
    sb.write("s.yml", &format!("a: {CANARY}\n"));
    assert_code(&sb.run(&["vault", "encrypt", "-r", &public, "s.yml"]), 0);
    let before = sb.read("s.yml.age");
    let log = sb.path("term.log");
    // The editor edits, then edgefleet is told to stop (as a closing terminal or `kill` would); the editor keeps
    // running until edgefleet stops it.
    let editor = script(
        &sb,
        "ed.sh",
        &format!(
            "echo \"$1\" > '{}'\necho changed >> \"$1\"\nkill -TERM $PPID\nexec sleep 30\n",
            log.display()
        ),
    );
    let out = sb
        .ef()
        .env("EDITOR", &editor)
        .args([
            "vault",
            "edit",
            "--identity",
            "key.txt",
            "-r",
            &public,
            "s.yml.age",
        ])
        .output()
        .unwrap();
    assert_code(&out, 99);
    assert_eq!(sb.read("s.yml.age"), before);
    let temp = PathBuf::from(fs::read_to_string(&log).unwrap().trim());
    assert!(!temp.exists(), "temp file left behind after SIGTERM");
    assert!(
        !temp.parent().unwrap().exists(),
        "temp dir left behind after SIGTERM"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn no_identity_and_wrong_identity_name_file_recipients_and_tried() {
    let sb = Sandbox::new();
    let a = sb.keygen("a.txt");
    let other = sb.keygen("other.txt");
    let ssh_pub = sb.ssh_keygen("ops_key", "ed25519", "");
    sb.write(".age-recipients", &format!("{a}\n{ssh_pub}"));
    sb.write("vault.yml", &format!("p: {CANARY}\n"));
    assert_code(&sb.run(&["vault", "encrypt", "vault.yml"]), 0);

    // No identity at all (empty HOME, no flag, no variable).
    let out = sb.run(&["vault", "view", "vault.yml.age"]);
    assert_code(&out, 4);
    let err = stderr(&out);
    assert!(
        err.contains("no identity to decrypt vault.yml.age"),
        "{err}"
    );
    assert!(
        err.contains("--identity") && err.contains("EDGEFLEET_AGE_IDENTITY"),
        "{err}"
    );

    // A wrong identity: the file, what it is encrypted to (the SSH tag matched to .age-recipients), what was tried.
    let out = sb.run(&["vault", "view", "--identity", "other.txt", "vault.yml.age"]);
    assert_code(&out, 4);
    assert_no_leak(&out, CANARY);
    let err = stderr(&out);
    assert!(
        err.contains("no identity can decrypt vault.yml.age"),
        "{err}"
    );
    assert!(err.contains("encrypted to 2 recipients: 1 X25519"), "{err}");
    let tag = ssh_tag(&ssh_pub);
    assert!(
        err.contains(&format!(
            "1 ssh-ed25519 (tag {tag}: `ed25519@test` in .age-recipients)"
        )),
        "{err}"
    );
    assert!(err.contains(&format!("other.txt ({other})")), "{err}");
    assert!(err.contains("edgefleet vault rekey"), "{err}");

    // A named identity file that does not exist, or is a public key: named, exit 4.
    let out = sb.run(&["vault", "view", "--identity", "nope.txt", "vault.yml.age"]);
    assert_code(&out, 4);
    assert!(
        stderr(&out).contains("identity file nope.txt: cannot read it"),
        "{}",
        stderr(&out)
    );
    let out = sb.run(&[
        "vault",
        "view",
        "--identity",
        "ops_key.pub",
        "vault.yml.age",
    ]);
    assert_code(&out, 4);
    assert!(stderr(&out).contains("is a public key"), "{}", stderr(&out));
}

#[test]
fn damaged_truncated_missing_and_not_age_files() {
    let sb = Sandbox::new();
    let public = sb.keygen("key.txt");
    sb.write("v.yml", &format!("p: {CANARY}\n"));
    assert_code(&sb.run(&["vault", "encrypt", "-r", &public, "v.yml"]), 0);
    let armored = sb.read("v.yml.age");
    let lines: Vec<&str> = armored.lines().collect();

    // Tampered: one base64 character of the payload changed (the last body line holds payload bytes).
    let mut tampered: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    let n = tampered.len() - 2;
    let line = tampered[n].clone();
    let mut chars: Vec<char> = line.chars().collect();
    chars[2] = if chars[2] == 'A' { 'B' } else { 'A' };
    tampered[n] = chars.into_iter().collect();
    sb.write("tampered.age", &(tampered.join("\n") + "\n"));
    // Truncated: the end of the armor is missing.
    sb.write(
        "truncated.age",
        &(lines[..lines.len() - 2].join("\n") + "\n"),
    );
    // Truncated binary file (as the age CLI writes without -a).
    let mut child = age_cli()
        .arg("-r")
        .arg(&public)
        .arg("-o")
        .arg(sb.path("bin.age"))
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(CANARY.repeat(100).as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    let bin = fs::read(sb.path("bin.age")).unwrap();
    fs::write(sb.path("bin-cut.age"), &bin[..bin.len() - 40]).unwrap();
    sb.write("plain.yml.age", &format!("p: {CANARY}\n"));

    let cases = [
        ("tampered.age", "tampered"),
        ("truncated.age", "truncated"),
        ("bin-cut.age", "cut short"),
        ("missing.age", "cannot read missing.age"),
        ("plain.yml.age", "not an age-encrypted file"),
    ];
    for (file, expect) in cases {
        let out = sb.run(&["vault", "view", "--identity", "key.txt", file]);
        assert_code(&out, 4);
        assert_no_leak(&out, CANARY);
        assert!(
            stdout(&out).is_empty(),
            "{file}: printed something: {}",
            stdout(&out)
        );
        let err = stderr(&out);
        assert!(err.contains(file), "{file}: {err}");
        assert!(
            err.contains(expect),
            "{file}: expected `{expect}` in: {err}"
        );
    }
    // view of several files prints nothing unless all decrypt.
    let out = sb.run(&[
        "vault",
        "view",
        "--identity",
        "key.txt",
        "v.yml.age",
        "tampered.age",
    ]);
    assert_code(&out, 4);
    assert!(stdout(&out).is_empty());
}

#[test]
fn protected_ssh_key_wrong_passphrase_and_no_terminal() {
    let sb = Sandbox::new();
    let public = sb.ssh_keygen("enc_key", "ed25519", "right horse battery");
    sb.write("v.yml", &format!("p: {CANARY}\n"));
    assert_code(
        &sb.run(&["vault", "encrypt", "-r", public.trim(), "v.yml"]),
        0,
    );

    // Wrong passphrase from the environment: clear error, exit 4.
    let out = sb
        .ef()
        .env("EDGEFLEET_AGE_PASSPHRASE", "wrong")
        .args(["vault", "view", "--identity", "enc_key", "v.yml.age"])
        .output()
        .unwrap();
    assert_code(&out, 4);
    assert!(
        stderr(&out)
            .contains("wrong passphrase for identity enc_key (from EDGEFLEET_AGE_PASSPHRASE)"),
        "{}",
        stderr(&out)
    );

    // No terminal and no variable: says how to supply it.
    let out = sb.run(&["vault", "view", "--identity", "enc_key", "v.yml.age"]);
    assert_code(&out, 4);
    let err = stderr(&out);
    assert!(err.contains("no terminal"), "{err}");
    assert!(err.contains("EDGEFLEET_AGE_PASSPHRASE_FILE"), "{err}");

    // The right one, from a file (trailing newline ignored).
    sb.write("pass.txt", "right horse battery\n");
    let out = sb
        .ef()
        .env("EDGEFLEET_AGE_PASSPHRASE_FILE", sb.path("pass.txt"))
        .args(["vault", "view", "--identity", "enc_key", "v.yml.age"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert_eq!(stdout(&out), format!("p: {CANARY}\n"));
}

/// An age-encrypted identity file with a low scrypt work factor (fast in tests; the real keygen path is
/// exercised separately).
fn write_protected_identity(path: &Path, passphrase: &str) -> String {
    let id = age::x25519::Identity::generate();
    let content = format!("# test\n{}\n", id.to_string().expose_secret());
    let mut r = age::scrypt::Recipient::new(passphrase.to_string().into());
    r.set_work_factor(10);
    let enc = age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient)).unwrap();
    let mut out = Vec::new();
    let armor =
        age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor).unwrap();
    let mut w = enc.wrap_output(armor).unwrap();
    w.write_all(content.as_bytes()).unwrap();
    w.finish().unwrap().finish().unwrap();
    fs::write(path, out).unwrap();
    id.to_public().to_string()
}

#[test]
fn protected_age_identity_file() {
    let sb = Sandbox::new();
    let public = write_protected_identity(&sb.path("id.age"), "s3cret pass");
    sb.write("v.yml", &format!("p: {CANARY}\n"));
    assert_code(&sb.run(&["vault", "encrypt", "-r", &public, "v.yml"]), 0);
    let out = sb
        .ef()
        .env("EDGEFLEET_AGE_PASSPHRASE", "s3cret pass")
        .args(["vault", "view", "--identity", "id.age", "v.yml.age"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert_eq!(stdout(&out), format!("p: {CANARY}\n"));
    let out = sb
        .ef()
        .env("EDGEFLEET_AGE_PASSPHRASE", "nope")
        .args(["vault", "view", "--identity", "id.age", "v.yml.age"])
        .output()
        .unwrap();
    assert_code(&out, 4);
    assert!(
        stderr(&out).contains("wrong passphrase for identity id.age"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn keygen_with_passphrase_writes_an_identity_age_can_use() {
    let sb = Sandbox::new();
    sb.write("pass.txt", "keygen pass\n");
    let out = sb
        .ef()
        .env("EDGEFLEET_AGE_PASSPHRASE_FILE", sb.path("pass.txt"))
        .args(["vault", "keygen", "--passphrase", "-o", "id.age"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    let public = stderr(&out)
        .lines()
        .find_map(|l| l.strip_prefix("Public key: "))
        .unwrap()
        .to_string();
    let text = sb.read("id.age");
    assert!(
        text.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"),
        "{text}"
    );
    assert!(!text.contains("AGE-SECRET-KEY"));
    assert_eq!(
        fs::metadata(sb.path("id.age"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let info = secrets::inspect(&sb.path("id.age"), text.as_bytes()).unwrap();
    assert!(info.is_passphrase());
    sb.write("v.yml", CANARY);
    assert_code(&sb.run(&["vault", "encrypt", "-r", &public, "v.yml"]), 0);
    let out = sb
        .ef()
        .env("EDGEFLEET_AGE_PASSPHRASE_FILE", sb.path("pass.txt"))
        .args(["vault", "view", "--identity", "id.age", "v.yml.age"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert_eq!(stdout(&out), CANARY);
}

// ---------------------------------------------------------------------------------------------------------------
// The passphrase prompt on a real pseudo-terminal
// ---------------------------------------------------------------------------------------------------------------

struct Pty {
    master: fs::File,
    slave: PathBuf,
    /// Held open by the test so reading the master never sees "no slave" (EIO) before the child opens it.
    slave_hold: fs::File,
}

fn open_pty() -> Pty {
    use std::os::fd::FromRawFd;
    // SAFETY: plain libc pty calls; every return value is checked.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(m >= 0, "posix_openpt failed");
        // The child must not inherit the master.
        assert_eq!(libc::fcntl(m, libc::F_SETFD, libc::FD_CLOEXEC), 0);
        assert_eq!(libc::grantpt(m), 0);
        assert_eq!(libc::unlockpt(m), 0);
        let mut buf = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(m, buf.as_mut_ptr(), buf.len()), 0);
        let name = std::ffi::CStr::from_ptr(buf.as_ptr())
            .to_string_lossy()
            .to_string();
        let slave_hold = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(&name)
            .unwrap();
        Pty {
            master: fs::File::from_raw_fd(m),
            slave: PathBuf::from(name),
            slave_hold,
        }
    }
}

/// Run edgefleet with the pty as its controlling terminal (stdout/stderr still piped), answering each
/// passphrase prompt with the next of `answers`. Returns the output and everything written to the terminal.
fn run_on_pty(sb: &Sandbox, args: &[&str], answers: &[&str]) -> (Output, String) {
    let pty = open_pty();
    let slave = std::ffi::CString::new(pty.slave.to_string_lossy().as_bytes()).unwrap();
    let mut cmd = support::edgefleet();
    cmd.current_dir(sb.dir.path())
        .env("HOME", sb.home())
        .env_remove("EDGEFLEET_AGE_PASSPHRASE")
        .env_remove("EDGEFLEET_AGE_PASSPHRASE_FILE")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setsid/open/ioctl/close are async-signal-safe; they give the child the pty as controlling tty.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            let fd = libc::open(slave.as_ptr(), libc::O_RDWR);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::ioctl(fd, libc::TIOCSCTTY as _, 0);
            libc::close(fd);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let seen = Arc::new(Mutex::new(String::new()));
    let mut reader = pty.master.try_clone().unwrap();
    let seen2 = seen.clone();
    let t = std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen2
                .lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let mut master = pty.master;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut answered = 0;
    loop {
        if let Some(_status) = child.try_wait().unwrap() {
            break;
        }
        let prompts = seen.lock().unwrap().matches("Passphrase for").count();
        if prompts > answered && answered < answers.len() {
            master
                .write_all(format!("{}\r", answers[answered]).as_bytes())
                .unwrap();
            answered += 1;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "edgefleet did not finish; terminal so far: {}",
                seen.lock().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    // The child is gone: closing our slave descriptor makes the reader see end of file.
    drop(pty.slave_hold);
    drop(master);
    // The reader thread ends when the last slave descriptor closes (the child is gone).
    let _ = t.join();
    let text = seen.lock().unwrap().clone();
    (out, text)
}

#[test]
fn terminal_prompt_asks_once_per_run_and_retries_a_wrong_passphrase() {
    let sb = Sandbox::new();
    // Two protected identities with the same passphrase, one file for each: one prompt for the whole run.
    let ssh_pub = sb.ssh_keygen("enc_key", "ed25519", "tty pass");
    let age_pub = write_protected_identity(&sb.path("id.age"), "tty pass");
    sb.write("one.yml", "one: first-canary-value\n");
    sb.write("two.yml", "two: second-canary-value\n");
    assert_code(
        &sb.run(&["vault", "encrypt", "-r", ssh_pub.trim(), "one.yml"]),
        0,
    );
    assert_code(&sb.run(&["vault", "encrypt", "-r", &age_pub, "two.yml"]), 0);

    let (out, tty) = run_on_pty(
        &sb,
        &[
            "vault",
            "view",
            "--identity",
            "enc_key",
            "--identity",
            "id.age",
            "one.yml.age",
            "two.yml.age",
        ],
        &["tty pass"],
    );
    assert_code(&out, 0);
    assert_eq!(
        stdout(&out),
        "one: first-canary-value\ntwo: second-canary-value\n"
    );
    assert_eq!(tty.matches("Passphrase for").count(), 1, "terminal: {tty}");
    assert!(
        tty.contains("Passphrase for identity enc_key"),
        "terminal: {tty}"
    );
    assert!(
        !tty.contains("tty pass"),
        "the passphrase was echoed: {tty}"
    );

    // A wrong passphrase first: asked again on the terminal, then it works.
    let (out, tty) = run_on_pty(
        &sb,
        &["vault", "view", "--identity", "enc_key", "one.yml.age"],
        &["not it", "tty pass"],
    );
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "one: first-canary-value\n");
    assert_eq!(tty.matches("Passphrase for").count(), 2, "terminal: {tty}");
    assert!(
        tty.contains("Wrong passphrase, try again"),
        "terminal: {tty}"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// The loader API: decrypt once, register with the redactor, never leak in errors
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn load_vars_file_registers_values_and_decrypts_once() {
    let sb = Sandbox::new();
    let public = sb.keygen("key.txt");
    let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIFakeKeyMaterialForRedactionTest0123\n-----END PRIVATE KEY-----\n";
    let yaml = format!(
        "iothub_conn: \"HostName=hub.azure-devices.net;DeviceId=d1;SharedAccessKey=loader-canary-SAK1=\"\n\
         registry:\n  password: loader-canary-registry-pw\n  list: [loader-canary-in-list]\n\
         edge_ca_key: |\n{}",
        pem.lines().map(|l| format!("  {l}\n")).collect::<String>()
    );
    sb.write("group_vars/all/vault.yml", &yaml);
    assert_code(
        &sb.run(&[
            "vault",
            "encrypt",
            "-r",
            &public,
            "group_vars/all/vault.yml",
        ]),
        0,
    );
    let file = sb.path("group_vars/all/vault.yml.age");

    let store = SecretStore::new(&[sb.path("key.txt")]);
    let v = store.load_vars_file(&file).unwrap();
    assert_eq!(v["registry"]["password"], "loader-canary-registry-pw");
    assert_eq!(v["edge_ca_key"], pem);
    // Every value is masked wherever it is printed, including the PEM key and single lines of it.
    let printed = serde_json::to_string_pretty(&v).unwrap();
    let masked = redact::redact(&printed);
    for s in [
        "loader-canary-SAK1",
        "loader-canary-registry-pw",
        "loader-canary-in-list",
        "MC4CAQAwBQYDK2VwBCIEIFakeKeyMaterialForRedactionTest0123",
    ] {
        assert!(!masked.contains(s), "{s} not masked in: {masked}");
    }
    assert!(masked.contains(redact::MASK));
    assert!(
        masked.contains("\"registry\""),
        "keys stay readable: {masked}"
    );

    // Decrypted once however often it is loaded, by whatever path spelling.
    assert_eq!(store.decryptions(), 1);
    store.load_vars_file(&file).unwrap();
    store
        .decrypt_file(&sb.path("group_vars/../group_vars/all/vault.yml.age"))
        .unwrap();
    assert_eq!(store.decryptions(), 1);
    // A second file is a second decryption.
    sb.write("other.txt", "other-canary-bytes");
    assert_code(
        &sb.run(&["vault", "encrypt", "-r", &public, "other.txt"]),
        0,
    );
    let p = store.decrypt_file(&sb.path("other.txt.age")).unwrap();
    assert_eq!(p.bytes(), b"other-canary-bytes");
    assert_eq!(format!("{p:?}"), "Plaintext(18 bytes, redacted)");
    assert_eq!(store.decryptions(), 2);
    assert_eq!(redact::redact("x other-canary-bytes"), "x ********");

    // The process-wide API used by the loaders.
    secrets::configure(&[sb.path("key.txt")]);
    let v = secrets::load_vars_file(&file).unwrap();
    assert_eq!(v["registry"]["list"][0], "loader-canary-in-list");
    let bytes = secrets::decrypt_file(&sb.path("other.txt.age")).unwrap();
    assert_eq!(bytes, b"other-canary-bytes");
}

#[test]
fn loader_errors_never_contain_plaintext() {
    let sb = Sandbox::new();
    let public = sb.keygen("key.txt");
    // Invalid YAML holding a secret: the error gives a position, not the content.
    sb.write("bad.yml", "ok: 1\npassword: \"broken-canary-Zx9 \n  - [\n");
    assert_code(&sb.run(&["vault", "encrypt", "-r", &public, "bad.yml"]), 0);
    let store = SecretStore::new(&[sb.path("key.txt")]);
    let e = store.load_vars_file(&sb.path("bad.yml.age")).unwrap_err();
    let msg = e.into_diag().to_string();
    assert!(msg.contains("bad.yml.age"), "{msg}");
    assert!(msg.contains("not valid YAML"), "{msg}");
    assert!(!msg.contains("broken-canary"), "{msg}");
    assert!(!msg.contains("password"), "{msg}");

    // A wrong passphrase through the library: a clear error, nothing decrypted.
    let ssh_pub = sb.ssh_keygen("enc_key", "ed25519", "lib pass");
    sb.write("s.txt", CANARY);
    assert_code(
        &sb.run(&["vault", "encrypt", "-r", ssh_pub.trim(), "s.txt"]),
        0,
    );
    let store = SecretStore::new(&[sb.path("enc_key")])
        .with_passphrase_source(PassphraseSource::Fixed("nope".to_string().into()));
    let e = store
        .decrypt_file(&sb.path("s.txt.age"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("wrong passphrase"), "{e}");
    assert_eq!(store.decryptions(), 0);
    let store = SecretStore::new(&[sb.path("enc_key")])
        .with_passphrase_source(PassphraseSource::Fixed("lib pass".to_string().into()));
    assert_eq!(
        store.decrypt_file(&sb.path("s.txt.age")).unwrap().bytes(),
        CANARY.as_bytes()
    );
    assert_eq!(store.prompts(), 0);
}

#[test]
fn committed_fixture_written_by_the_age_cli_still_decrypts() {
    // Files written by `age` 1.1 (armored vars file, binary src file) with the committed test-only identity:
    // a regression guard for reading files that already live in operators' repositories.
    let id = support::fixture("vault/test-identity.txt");
    let store = SecretStore::new(std::slice::from_ref(&id));
    let v = store
        .load_vars_file(&support::fixture("vault/group_vars/all/vault.yml.age"))
        .unwrap();
    assert_eq!(v["registry_password"], "fixture-canary-registry");
    assert!(v["iothub_connection_string"]
        .as_str()
        .unwrap()
        .ends_with("SharedAccessKey=fixture-canary-c2VjcmV0"));
    let masked = redact::redact(&v.to_string()).into_owned();
    assert!(!masked.contains("fixture-canary"), "{masked}");
    let p = store
        .decrypt_file(&support::fixture("vault/binary.txt.age"))
        .unwrap();
    assert_eq!(p.text(), Some("fixture-canary-binary\n"));

    let out = support::edgefleet()
        .env("HOME", "/nonexistent")
        .env("EDGEFLEET_AGE_IDENTITY", &id)
        .args(["vault", "view"])
        .arg(support::fixture("vault/binary.txt.age"))
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "fixture-canary-binary\n");
}
