//! OpenSSH `known_hosts` files: parsing, host matching, key and host-certificate verdicts, and safe appends.
//!
//! Owns the file format exactly as OpenSSH reads it: comma lists of host patterns with `*`, `?` and `!negation`,
//! `[host]:port` names, hashed names (`|1|salt|hash`, HMAC-SHA1), `@cert-authority` and `@revoked` markers.
//! Keys are compared as raw SSH wire blobs, so this module needs no SSH library: `ssh.rs` hands it the server's
//! key blob, or a [`CertInfo`] describing a host certificate whose CA signature it has already verified.
//! Appends for `accept-new` are serialised in-process and with `flock(2)` across processes, re-reading the file
//! under the lock so each name is recorded exactly once. It must not decide policy (strict / accept-new / off):
//! that is the connector's job; here we only answer "trusted, unknown, changed or revoked, and where".

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use hmac::{KeyInit, Mac};

/// Errors reading or appending a known_hosts file.
#[derive(Debug, thiserror::Error)]
pub enum KnownHostsError {
    /// The file exists but cannot be read.
    #[error("cannot read known_hosts file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file cannot be created, locked or written.
    #[error("cannot record the host key in {path}: {source} (fix the file's permissions, or pass --known-hosts FILE)")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The marker at the start of a known_hosts line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// An ordinary host key.
    Plain,
    /// `@cert-authority`: a CA key trusted to sign host certificates for the matching hosts.
    CertAuthority,
    /// `@revoked`: this key must never be accepted.
    Revoked,
}

#[derive(Debug, Clone)]
struct Pattern {
    negated: bool,
    /// Lower-cased glob.
    glob: String,
}

#[derive(Debug, Clone)]
enum Hosts {
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
    Patterns(Vec<Pattern>),
}

#[derive(Debug, Clone)]
struct Entry {
    line: usize,
    marker: Marker,
    hosts: Hosts,
    /// The key's algorithm name as found inside the blob (e.g. `ssh-rsa`, `ssh-ed25519`).
    key_type: String,
    blob: Vec<u8>,
}

/// One parsed known_hosts file.
#[derive(Debug, Clone, Default)]
pub struct KnownHostsFile {
    path: PathBuf,
    entries: Vec<Entry>,
    /// Lines that could not be parsed (1-based line numbers, with the reason); OpenSSH skips them too.
    pub skipped: Vec<(usize, String)>,
}

/// Where a known_hosts line lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file.
    pub path: PathBuf,
    /// 1-based line number.
    pub line: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.path.display(), self.line)
    }
}

/// What the known_hosts files say about a server key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The key is listed for this host (or signed by a CA trusted for it).
    Trusted(Location),
    /// Nothing is recorded for this host.
    Unknown,
    /// A different key of the same type is recorded for this host: possible man-in-the-middle.
    Changed(Location),
    /// The host is known, but only with keys of other types (listed with their first line).
    OtherTypes(Location, Vec<String>),
    /// The key (or the CA that signed it) is marked `@revoked`.
    Revoked(Location),
}

/// A host certificate presented by a server, as `ssh.rs` decoded it.
#[derive(Debug, Clone)]
pub struct CertInfo {
    /// Wire blob of the signing CA's public key.
    pub ca_blob: Vec<u8>,
    /// Wire blob of the certified (plain) host key.
    pub key_blob: Vec<u8>,
    /// Whether the CA signature over the certificate verified (checked by the caller with the CA key in it).
    pub signature_valid: bool,
    /// Certificate type is "host" (not "user").
    pub is_host: bool,
    /// Valid principals (host names); empty means any host, which OpenSSH refuses for host certificates.
    pub principals: Vec<String>,
    /// Seconds since the epoch.
    pub valid_after: u64,
    /// Seconds since the epoch.
    pub valid_before: u64,
    /// Names of critical options (host certificates must have none).
    pub critical_options: Vec<String>,
}

/// The name OpenSSH looks up for `host` and `port`: `host` on port 22, `[host]:port` otherwise.
pub fn lookup_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// The algorithm name at the start of an SSH wire key blob (`ssh-ed25519`, `ssh-rsa`, ...).
pub fn blob_key_type(blob: &[u8]) -> Option<String> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    let name = blob.get(4..4 + len)?;
    String::from_utf8(name.to_vec()).ok()
}

/// The SHA-256 fingerprint of a key blob, as OpenSSH prints it (`SHA256:...`, unpadded base64).
pub fn fingerprint(blob: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(blob);
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(d)
    )
}

/// A known_hosts line for `name` and the key blob (`name type base64`), plain or hashed.
pub fn format_line(name: &str, blob: &[u8], hashed: bool) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key_type = blob_key_type(blob).unwrap_or_else(|| "unknown".into());
    let host = if hashed {
        let salt: [u8; 20] = rand::random();
        let hash = hmac_sha1(&salt, name.as_bytes());
        format!("|1|{}|{}", b64.encode(salt), b64.encode(hash))
    } else {
        name.to_string()
    };
    format!("{host} {key_type} {}", b64.encode(blob))
}

fn hmac_sha1(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // new_from_slice never fails for HMAC (any key length is valid); fall back to an impossible hash if it did.
    match hmac::Hmac::<sha1::Sha1>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(msg);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// OpenSSH's `match_pattern`: `*` matches any run, `?` any one character. Both sides already lower-cased.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p = pattern.as_bytes();
    let t = text.as_bytes();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// OpenSSH's `match_pattern_list` for host names: a negated pattern that matches wins (no match);
/// otherwise any positive match matches.
pub fn match_pattern_list<'a>(
    name: &str,
    patterns: impl IntoIterator<Item = (bool, &'a str)>,
) -> bool {
    let name = name.to_ascii_lowercase();
    let mut matched = false;
    for (negated, glob) in patterns {
        if glob_match(&glob.to_ascii_lowercase(), &name) {
            if negated {
                return false;
            }
            matched = true;
        }
    }
    matched
}

impl Hosts {
    fn matches(&self, name: &str) -> bool {
        match self {
            Hosts::Hashed { salt, hash } => {
                // OpenSSH hashes the name exactly as looked up (lower-cased host, `[host]:port` form).
                hmac_sha1(salt, name.to_ascii_lowercase().as_bytes()) == *hash
            }
            Hosts::Patterns(ps) => {
                match_pattern_list(name, ps.iter().map(|p| (p.negated, p.glob.as_str())))
            }
        }
    }
}

impl KnownHostsFile {
    /// Parse known_hosts text. Bad lines are skipped (and listed in [`KnownHostsFile::skipped`]), as OpenSSH does.
    pub fn parse(path: impl Into<PathBuf>, text: &str) -> Self {
        let mut f = KnownHostsFile {
            path: path.into(),
            ..Default::default()
        };
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let s = raw.trim();
            if s.is_empty() || s.starts_with('#') {
                continue;
            }
            match parse_line(s) {
                Ok((marker, hosts, blob)) => {
                    let key_type = blob_key_type(&blob).unwrap_or_default();
                    f.entries.push(Entry {
                        line,
                        marker,
                        hosts,
                        key_type,
                        blob,
                    })
                }
                Err(why) => f.skipped.push((line, why)),
            }
        }
        f
    }

    /// Read and parse a file; a missing file is an empty one.
    pub fn load(path: &Path) -> Result<Self, KnownHostsError> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(Self::parse(path, &String::from_utf8_lossy(&bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::parse(path, "")),
            Err(e) => Err(KnownHostsError::Read {
                path: path.to_path_buf(),
                source: e,
            }),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of usable entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No usable entries?
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn loc(&self, e: &Entry) -> Location {
        Location {
            path: self.path.clone(),
            line: e.line,
        }
    }

    fn matching<'a>(&'a self, names: &'a [String]) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries
            .iter()
            .filter(move |e| names.iter().any(|n| e.hosts.matches(n)))
    }

    /// Is there any `@cert-authority` line for one of these names?
    pub fn has_cert_authority(&self, names: &[String]) -> bool {
        self.matching(names)
            .any(|e| e.marker == Marker::CertAuthority)
    }

    /// Plain key types recorded for these names (for ordering host key algorithms like OpenSSH does).
    pub fn known_types(&self, names: &[String]) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for e in self.matching(names).filter(|e| e.marker == Marker::Plain) {
            if !v.contains(&e.key_type) {
                v.push(e.key_type.clone());
            }
        }
        v
    }
}

fn parse_line(s: &str) -> Result<(Marker, Hosts, Vec<u8>), String> {
    let mut fields = s.split_ascii_whitespace();
    let mut first = fields.next().ok_or("empty line")?;
    let marker = match first {
        "@cert-authority" => Marker::CertAuthority,
        "@revoked" => Marker::Revoked,
        m if m.starts_with('@') => return Err(format!("unknown marker {m}")),
        _ => Marker::Plain,
    };
    if marker != Marker::Plain {
        first = fields.next().ok_or("marker without host patterns")?;
    }
    let hosts = if let Some(rest) = first.strip_prefix("|1|") {
        let (salt, hash) = rest.split_once('|').ok_or("bad hashed host name")?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let salt = b64
            .decode(salt)
            .map_err(|_| "bad salt in hashed host name")?;
        let hash = b64
            .decode(hash)
            .map_err(|_| "bad hash in hashed host name")?;
        Hosts::Hashed { salt, hash }
    } else {
        Hosts::Patterns(
            first
                .split(',')
                .filter(|p| !p.is_empty())
                .map(|p| match p.strip_prefix('!') {
                    Some(n) => Pattern {
                        negated: true,
                        glob: n.to_ascii_lowercase(),
                    },
                    None => Pattern {
                        negated: false,
                        glob: p.to_ascii_lowercase(),
                    },
                })
                .collect(),
        )
    };
    let key_type = fields.next().ok_or("missing key type")?;
    let b64 = fields.next().ok_or("missing key")?;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| "key is not valid base64".to_string())?;
    let inner = blob_key_type(&blob).ok_or("key blob is malformed")?;
    if inner != key_type {
        return Err(format!(
            "key type {key_type} does not match the key ({inner})"
        ));
    }
    Ok((marker, hosts, blob))
}

/// A set of known_hosts files consulted together (user files first, then global ones).
#[derive(Debug, Clone, Default)]
pub struct KnownHosts {
    /// The files, in lookup order.
    pub files: Vec<std::sync::Arc<KnownHostsFile>>,
}

impl KnownHosts {
    fn revoked(&self, names: &[String], blob: &[u8]) -> Option<Location> {
        for f in &self.files {
            // OpenSSH applies @revoked to matching host patterns; `*` is the usual pattern.
            if let Some(e) = f
                .matching(names)
                .find(|e| e.marker == Marker::Revoked && e.blob == blob)
            {
                return Some(f.loc(e));
            }
        }
        None
    }

    /// Verdict for a plain server key offered under `names` (the lookup names, e.g. `[10.0.0.5]:2222`).
    pub fn check_key(&self, names: &[String], blob: &[u8]) -> Verdict {
        if let Some(l) = self.revoked(names, blob) {
            return Verdict::Revoked(l);
        }
        let key_type = blob_key_type(blob).unwrap_or_default();
        let mut changed = None;
        let mut other: Option<(Location, Vec<String>)> = None;
        for f in &self.files {
            for e in f.matching(names).filter(|e| e.marker == Marker::Plain) {
                if e.blob == blob {
                    return Verdict::Trusted(f.loc(e));
                }
                if e.key_type == key_type {
                    changed.get_or_insert_with(|| f.loc(e));
                } else {
                    let o = other.get_or_insert_with(|| (f.loc(e), Vec::new()));
                    if !o.1.contains(&e.key_type) {
                        o.1.push(e.key_type.clone());
                    }
                }
            }
        }
        if let Some(l) = changed {
            return Verdict::Changed(l);
        }
        if let Some((l, types)) = other {
            return Verdict::OtherTypes(l, types);
        }
        Verdict::Unknown
    }

    /// Verdict for a host certificate: trusted when a matching `@cert-authority` line lists its CA and the
    /// certificate is valid for `principal` at `now`. `Err` explains why the certificate cannot be used; the
    /// caller then falls back to checking the certified plain key, as OpenSSH does.
    pub fn check_cert(
        &self,
        names: &[String],
        principal: &str,
        cert: &CertInfo,
        now: u64,
    ) -> Result<Verdict, String> {
        if let Some(l) = self.revoked(names, &cert.key_blob) {
            return Ok(Verdict::Revoked(l));
        }
        if let Some(l) = self.revoked(names, &cert.ca_blob) {
            return Ok(Verdict::Revoked(l));
        }
        let mut ca = None;
        for f in &self.files {
            if let Some(e) = f
                .matching(names)
                .find(|e| e.marker == Marker::CertAuthority && e.blob == cert.ca_blob)
            {
                ca = Some(f.loc(e));
                break;
            }
        }
        let ca = ca.ok_or_else(|| {
            format!(
                "no @cert-authority line trusts its CA ({}) for {}",
                fingerprint(&cert.ca_blob),
                names.first().map(String::as_str).unwrap_or(principal)
            )
        })?;
        if !cert.signature_valid {
            return Err("the CA signature on the host certificate does not verify".into());
        }
        if !cert.is_host {
            return Err("the server presented a user certificate, not a host certificate".into());
        }
        if now < cert.valid_after {
            return Err(format!(
                "the host certificate is not valid yet (valid from {})",
                cert.valid_after
            ));
        }
        if now >= cert.valid_before {
            return Err(format!(
                "the host certificate expired (valid before {})",
                cert.valid_before
            ));
        }
        if cert.principals.is_empty() {
            return Err("the host certificate lists no principals".into());
        }
        let p = principal.to_ascii_lowercase();
        if !cert.principals.iter().any(|x| x.to_ascii_lowercase() == p) {
            return Err(format!(
                "the host certificate is for {} and not for {principal}",
                cert.principals.join(",")
            ));
        }
        if let Some(o) = cert.critical_options.first() {
            return Err(format!(
                "the host certificate has an unsupported critical option {o}"
            ));
        }
        Ok(Verdict::Trusted(ca))
    }

    /// Is any `@cert-authority` line relevant to these names?
    pub fn has_cert_authority(&self, names: &[String]) -> bool {
        self.files.iter().any(|f| f.has_cert_authority(names))
    }

    /// Plain key types known for these names, across all files.
    pub fn known_types(&self, names: &[String]) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for f in &self.files {
            for t in f.known_types(names) {
                if !v.contains(&t) {
                    v.push(t);
                }
            }
        }
        v
    }
}

/// What [`append_new`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// The line was written; the new file contents are in the returned parse.
    Added(Location),
    /// Another writer recorded a verdict for this host meanwhile (trusted, changed...): nothing was written.
    AlreadyThere(Verdict),
}

static APPEND_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Record `blob` for `name` in `path` unless the file (re-read under an exclusive lock) already says something
/// about `name`. Safe against concurrent appends from this process (a mutex) and others (`flock`).
/// Returns the verdict-or-location and the freshly parsed file (so callers can refresh their cache).
pub fn append_new(
    path: &Path,
    names: &[String],
    blob: &[u8],
    hashed: bool,
) -> Result<(Appended, KnownHostsFile), KnownHostsError> {
    let werr = |source| KnownHostsError::Write {
        path: path.to_path_buf(),
        source,
    };
    // A poisoned mutex only means another append panicked; the file itself is still consistent.
    let _guard = APPEND_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            std::fs::create_dir_all(dir).map_err(werr)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
            }
        }
    }
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(werr)?;
    // SAFETY: flock on a file descriptor we own; it is released when `file` is closed.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    if rc != 0 {
        return Err(werr(std::io::Error::last_os_error()));
    }
    let mut text = Vec::new();
    file.seek(SeekFrom::Start(0)).map_err(werr)?;
    file.read_to_end(&mut text).map_err(werr)?;
    let text = String::from_utf8_lossy(&text).into_owned();
    let parsed = KnownHostsFile::parse(path, &text);
    let set = KnownHosts {
        files: vec![std::sync::Arc::new(parsed.clone())],
    };
    let v = set.check_key(names, blob);
    if v != Verdict::Unknown {
        return Ok((Appended::AlreadyThere(v), parsed));
    }
    let name = names.first().map(String::as_str).unwrap_or("*");
    let mut line = String::new();
    if !text.is_empty() && !text.ends_with('\n') {
        line.push('\n');
    }
    line.push_str(&format_line(name, blob, hashed));
    line.push('\n');
    // One write(2) on an O_APPEND descriptor: the line lands whole at the end, even next to other writers.
    file.write_all(line.as_bytes()).map_err(werr)?;
    file.sync_data().map_err(werr)?;
    let full = format!("{text}{line}");
    let new = KnownHostsFile::parse(path, &full);
    let loc = Location {
        path: path.to_path_buf(),
        line: full.lines().count(),
    };
    Ok((Appended::Added(loc), new))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ssh/keys");

    fn pub_blob(name: &str) -> Vec<u8> {
        let text = std::fs::read_to_string(format!("{FIX}/{name}")).unwrap();
        let b64 = text.split_whitespace().nth(1).unwrap();
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap()
    }

    fn set(text: &str) -> KnownHosts {
        KnownHosts {
            files: vec![std::sync::Arc::new(KnownHostsFile::parse("kh", text))],
        }
    }

    fn line_for(hosts: &str, name: &str) -> String {
        let text = std::fs::read_to_string(format!("{FIX}/{name}")).unwrap();
        let mut it = text.split_whitespace();
        format!("{hosts} {} {}", it.next().unwrap(), it.next().unwrap())
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn globs_and_negation() {
        assert!(glob_match("edge-*", "edge-17"));
        assert!(glob_match("edge-?", "edge-1"));
        assert!(!glob_match("edge-?", "edge-17"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(match_pattern_list("EDGE-3", [(false, "edge-*")]));
        assert!(!match_pattern_list(
            "edge-3",
            [(false, "edge-*"), (true, "edge-3")]
        ));
        assert!(
            !match_pattern_list("x", [(true, "y")]),
            "only negations never match"
        );
    }

    #[test]
    fn lookup_names() {
        assert_eq!(lookup_name("dev1", 22), "dev1");
        assert_eq!(lookup_name("10.0.0.5", 2222), "[10.0.0.5]:2222");
    }

    #[test]
    fn plain_wildcard_comma_and_port_entries() {
        let kh = set(&format!(
            "# comment\n{}\n{}\n{}\n",
            line_for("dev1,dev2.example", "host_ed25519.pub"),
            line_for("edge-*,!edge-9", "host_ecdsa.pub"),
            line_for("[127.0.0.1]:2222", "host_rsa.pub"),
        ));
        let ed = pub_blob("host_ed25519.pub");
        let ec = pub_blob("host_ecdsa.pub");
        let rsa = pub_blob("host_rsa.pub");
        let other = pub_blob("other_ed25519.pub");
        assert!(
            matches!(kh.check_key(&names(&["dev2.example"]), &ed), Verdict::Trusted(l) if l.line == 2)
        );
        assert!(
            matches!(kh.check_key(&names(&["edge-7"]), &ec), Verdict::Trusted(l) if l.line == 3)
        );
        assert_eq!(kh.check_key(&names(&["edge-9"]), &ec), Verdict::Unknown);
        assert!(
            matches!(kh.check_key(&names(&["[127.0.0.1]:2222"]), &rsa), Verdict::Trusted(l) if l.line == 4)
        );
        // Port matters: the same address on port 22 is a different name.
        assert_eq!(kh.check_key(&names(&["127.0.0.1"]), &rsa), Verdict::Unknown);
        // Same type, different key: changed, with the line.
        assert!(
            matches!(kh.check_key(&names(&["dev1"]), &other), Verdict::Changed(l) if l.line == 2)
        );
        // Host known only with other key types.
        assert!(
            matches!(kh.check_key(&names(&["dev1"]), &ec), Verdict::OtherTypes(l, t) if l.line == 2 && t == vec!["ssh-ed25519".to_string()])
        );
        assert_eq!(
            kh.known_types(&names(&["edge-1"])),
            vec!["ecdsa-sha2-nistp256".to_string()]
        );
    }

    #[test]
    fn hashed_entries_from_ssh_keygen() {
        // tests/fixtures/ssh/keys/known_hosts_hashed was made by `ssh-keygen -H` from plain lines for
        // `device1.example` (port 22) and `[127.0.0.1]:2201` (see gen.sh).
        let text = std::fs::read_to_string(format!("{FIX}/known_hosts_hashed")).unwrap();
        assert!(text.starts_with("|1|"), "{text}");
        let kh = set(&text);
        let ed = pub_blob("host_ed25519.pub");
        assert!(matches!(
            kh.check_key(&names(&["device1.example"]), &ed),
            Verdict::Trusted(_)
        ));
        assert!(matches!(
            kh.check_key(&names(&["DEVICE1.example"]), &ed),
            Verdict::Trusted(_)
        ));
        assert!(matches!(
            kh.check_key(&names(&["[127.0.0.1]:2201"]), &ed),
            Verdict::Trusted(_)
        ));
        assert_eq!(
            kh.check_key(&names(&["device2.example"]), &ed),
            Verdict::Unknown
        );
        // Our own hashed lines are readable by the same matcher.
        let line = format_line("[10.1.2.3]:2222", &ed, true);
        let kh2 = set(&line);
        assert!(matches!(
            kh2.check_key(&names(&["[10.1.2.3]:2222"]), &ed),
            Verdict::Trusted(_)
        ));
        assert_eq!(kh2.check_key(&names(&["10.1.2.3"]), &ed), Verdict::Unknown);
    }

    #[test]
    fn revoked_beats_trusted() {
        let kh = set(&format!(
            "{}\n{}\n",
            line_for("dev1", "host_ed25519.pub"),
            line_for("@revoked *", "host_ed25519.pub"),
        ));
        assert!(
            matches!(kh.check_key(&names(&["dev1"]), &pub_blob("host_ed25519.pub")), Verdict::Revoked(l) if l.line == 2)
        );
    }

    fn cert(principals: &[&str]) -> CertInfo {
        CertInfo {
            ca_blob: pub_blob("ca.pub"),
            key_blob: pub_blob("host_ed25519.pub"),
            signature_valid: true,
            is_host: true,
            principals: principals.iter().map(|s| s.to_string()).collect(),
            valid_after: 100,
            valid_before: 200,
            critical_options: vec![],
        }
    }

    #[test]
    fn cert_authority_rules() {
        let kh = set(&line_for("@cert-authority *.example,127.0.0.1", "ca.pub"));
        let n = names(&["device1.example"]);
        assert!(kh.has_cert_authority(&n));
        assert!(matches!(
            kh.check_cert(&n, "device1.example", &cert(&["device1.example"]), 150),
            Ok(Verdict::Trusted(l)) if l.line == 1
        ));
        let e = kh
            .check_cert(&n, "device1.example", &cert(&["other"]), 150)
            .unwrap_err();
        assert!(e.contains("not for device1.example"), "{e}");
        let e = kh
            .check_cert(&n, "device1.example", &cert(&["device1.example"]), 250)
            .unwrap_err();
        assert!(e.contains("expired"), "{e}");
        let e = kh
            .check_cert(&n, "device1.example", &cert(&["device1.example"]), 50)
            .unwrap_err();
        assert!(e.contains("not valid yet"), "{e}");
        let mut user = cert(&["device1.example"]);
        user.is_host = false;
        assert!(kh
            .check_cert(&n, "device1.example", &user, 150)
            .unwrap_err()
            .contains("user certificate"));
        let mut bad = cert(&["device1.example"]);
        bad.signature_valid = false;
        assert!(kh.check_cert(&n, "device1.example", &bad, 150).is_err());
        // CA not trusted for this host name.
        let e = kh
            .check_cert(
                &names(&["other.net"]),
                "other.net",
                &cert(&["other.net"]),
                150,
            )
            .unwrap_err();
        assert!(e.contains("no @cert-authority"), "{e}");
        // A revoked CA is refused outright.
        let kh = set(&format!(
            "{}\n{}\n",
            line_for("@cert-authority *", "ca.pub"),
            line_for("@revoked *", "ca.pub")
        ));
        assert!(matches!(
            kh.check_cert(&n, "device1.example", &cert(&["device1.example"]), 150),
            Ok(Verdict::Revoked(_))
        ));
    }

    #[test]
    fn bad_lines_are_skipped_with_reason() {
        let f = KnownHostsFile::parse("kh", "dev1 ssh-ed25519 !!notbase64\n@weird x y z\ndev2\n");
        assert_eq!(f.len(), 0);
        assert_eq!(f.skipped.len(), 3);
        assert_eq!(f.skipped[0].0, 1);
    }

    #[test]
    fn append_is_exactly_once_under_concurrency() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/known_hosts");
        let ed = pub_blob("host_ed25519.pub");
        let other = pub_blob("other_ed25519.pub");
        std::thread::scope(|s| {
            for i in 0..40 {
                let (path, ed) = (&path, &ed);
                s.spawn(move || {
                    let n = vec![lookup_name(&format!("h{}", i % 20), 2222)];
                    append_new(path, &n, ed, i % 2 == 0).unwrap();
                });
            }
        });
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 20, "{text}");
        let kh = KnownHosts {
            files: vec![std::sync::Arc::new(KnownHostsFile::load(&path).unwrap())],
        };
        for i in 0..20 {
            let n = vec![lookup_name(&format!("h{i}"), 2222)];
            assert!(matches!(kh.check_key(&n, &ed), Verdict::Trusted(_)));
        }
        // A different key for a recorded name is never appended.
        let (r, _) = append_new(&path, &[lookup_name("h3", 2222)], &other, false).unwrap();
        assert!(matches!(r, Appended::AlreadyThere(Verdict::Changed(_))));
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 20);
    }
}
