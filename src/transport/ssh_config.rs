//! OpenSSH client configuration: `~/.ssh/config` (or `-F FILE`) and ssh command-line arguments.
//!
//! Owns parsing `Host` blocks (patterns, `!negation`, first-obtained-value-wins), `Include` (with globs, `~`),
//! the keywords edgefleet honours (HostName, User, Port, IdentityFile, IdentitiesOnly, ProxyJump,
//! UserKnownHostsFile, GlobalKnownHostsFile, StrictHostKeyChecking, HashKnownHosts, HostKeyAlias,
//! ConnectTimeout, ConnectionAttempts, ServerAliveInterval, ServerAliveCountMax), and the subset of `ssh`
//! flags that may appear in `ansible_ssh_common_args` / `ansible_ssh_extra_args` (`-o K=V`, `-J`, `-i`, `-p`,
//! `-l`, `-F`). Unknown keywords are ignored as OpenSSH-compatible noise; `Match` blocks are skipped with a
//! warning. It must not touch the network or decide anything about keys: it only says what the files say.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::known_hosts::{glob_match, match_pattern_list};

/// A problem in an ssh_config file or in ssh arguments.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SshConfigError {
    /// A file could not be read.
    #[error("cannot read ssh config {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A line has a value OpenSSH would refuse too.
    #[error("{location}: {message}")]
    Invalid {
        /// `file:line` (or `ssh args` for command-line options).
        location: String,
        /// What is wrong and what to write instead.
        message: String,
    },
}

/// `StrictHostKeyChecking`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrictMode {
    /// `yes` / `ask`: refuse unknown and changed keys.
    Yes,
    /// `accept-new`: record unknown keys, refuse changed ones.
    AcceptNew,
    /// `no` / `off`: check nothing (changed keys are still refused by edgefleet).
    No,
}

#[derive(Debug, Clone)]
struct Opt {
    key: String,
    args: Vec<String>,
    location: String,
}

#[derive(Debug, Clone)]
struct Block {
    /// `None`: options before the first Host (apply to every host).
    patterns: Option<Vec<(bool, String)>>,
    /// A `Match` block: never applies.
    unsupported: bool,
    opts: Vec<Opt>,
}

/// A parsed ssh_config (with its includes inlined).
#[derive(Debug, Clone, Default)]
pub struct SshConfig {
    blocks: Vec<Block>,
    /// Things the operator should know (unsupported `Match`, unreadable includes...).
    pub warnings: Vec<String>,
}

/// Everything the files and arguments say about one destination.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostConfig {
    /// `HostName` (with `%h` expanded).
    pub hostname: Option<String>,
    /// `User`.
    pub user: Option<String>,
    /// `Port`.
    pub port: Option<u16>,
    /// `IdentityFile` values, in order, `~` and `%` tokens expanded.
    pub identity_files: Vec<PathBuf>,
    /// `IdentitiesOnly`.
    pub identities_only: Option<bool>,
    /// `ProxyJump` (`none` is reported as `Some("none")`).
    pub proxy_jump: Option<String>,
    /// `UserKnownHostsFile` values (first one receives new keys).
    pub user_known_hosts: Option<Vec<PathBuf>>,
    /// `GlobalKnownHostsFile` values.
    pub global_known_hosts: Option<Vec<PathBuf>>,
    /// `StrictHostKeyChecking`.
    pub strict_host_key_checking: Option<StrictMode>,
    /// Where `StrictHostKeyChecking` was set (`file:line`, `inventory` or the args), for warnings.
    pub strict_source: Option<String>,
    /// `HashKnownHosts`.
    pub hash_known_hosts: Option<bool>,
    /// `HostKeyAlias`.
    pub host_key_alias: Option<String>,
    /// `ConnectTimeout`.
    pub connect_timeout: Option<Duration>,
    /// `ConnectionAttempts`.
    pub connection_attempts: Option<u32>,
    /// `ServerAliveInterval` (0 disables).
    pub server_alive_interval: Option<Duration>,
    /// `ServerAliveCountMax`.
    pub server_alive_count_max: Option<u32>,
}

/// The home directory (`$HOME`), if known.
pub fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// Expand a leading `~` / `~/`.
pub fn expand_tilde(p: &str) -> PathBuf {
    if p == "~" {
        return home_dir().unwrap_or_else(|| PathBuf::from("~"));
    }
    if let Some(rest) = p.strip_prefix("~/") {
        if let Some(h) = home_dir() {
            return h.join(rest);
        }
    }
    PathBuf::from(p)
}

/// Split a line into words like ssh_config does: whitespace separated, `"double quotes"` group.
fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quoted = false;
    for c in s.chars() {
        if quoted {
            if c == '"' {
                quoted = false;
            } else {
                cur.push(c);
            }
        } else if c == '"' {
            quoted = true;
            in_word = true;
        } else if c.is_whitespace() {
            if in_word {
                out.push(std::mem::take(&mut cur));
                in_word = false;
            }
        } else {
            cur.push(c);
            in_word = true;
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// Split `Key value`, `Key=value` or `Key = value` into the lower-cased key and its arguments.
fn split_keyword(line: &str) -> Result<Option<(String, Vec<String>)>, String> {
    let s = line.trim();
    if s.is_empty() || s.starts_with('#') {
        return Ok(None);
    }
    let end = s
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(s.len());
    let key = s[..end].to_ascii_lowercase();
    let mut rest = s[end..].trim_start();
    if let Some(r) = rest.strip_prefix('=') {
        rest = r.trim_start();
    }
    Ok(Some((key, split_words(rest)?)))
}

/// Shell-like splitting of an `ansible_ssh_common_args` string: whitespace, 'single' and "double" quotes,
/// backslash escapes. (The inventory normally does this; exposed for callers that hold the raw string.)
pub fn split_args(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => cur.push(x),
                            Some(x) => {
                                cur.push('\\');
                                cur.push(x)
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(x) => cur.push(x),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(x) = chars.next() {
                    cur.push(x);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// Expand a path glob (`*`, `?` in any component) into the sorted list of existing paths.
fn expand_glob(pattern: &Path) -> Vec<PathBuf> {
    let s = pattern.to_string_lossy();
    if !s.contains(['*', '?']) {
        return if pattern.exists() {
            vec![pattern.to_path_buf()]
        } else {
            vec![]
        };
    }
    let mut current = vec![PathBuf::new()];
    for comp in pattern.components() {
        let c = comp.as_os_str().to_string_lossy().into_owned();
        let mut next = Vec::new();
        for base in &current {
            if c.contains(['*', '?']) {
                let dir = if base.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    base.clone()
                };
                if let Ok(rd) = std::fs::read_dir(&dir) {
                    let mut names: Vec<String> = rd
                        .filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|n| !n.starts_with('.') && glob_match(&c, n))
                        .collect();
                    names.sort();
                    next.extend(names.into_iter().map(|n| base.join(n)));
                }
            } else {
                next.push(base.join(&c));
            }
        }
        current = next;
    }
    current.into_iter().filter(|p| p.exists()).collect()
}

impl SshConfig {
    /// Parse a user config file (a missing file is an empty config). Relative `Include`s are resolved
    /// against `~/.ssh`, as OpenSSH does for `~/.ssh/config` and `-F FILE`; `~` is expanded.
    pub fn load(path: &Path) -> Result<Self, SshConfigError> {
        let base = home_dir().map(|h| h.join(".ssh")).unwrap_or_default();
        Self::load_with_base(path, &base)
    }

    /// Parse the system-wide config (`/etc/ssh/ssh_config`): relative `Include`s are resolved against its
    /// directory.
    pub fn load_system(path: &Path) -> Result<Self, SshConfigError> {
        let base = path.parent().unwrap_or(Path::new("/etc/ssh")).to_path_buf();
        Self::load_with_base(path, &base)
    }

    fn load_with_base(path: &Path, base: &Path) -> Result<Self, SshConfigError> {
        let mut cfg = SshConfig::default();
        match std::fs::read_to_string(path) {
            Ok(text) => cfg.parse_into(path, &text, 0, base)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(SshConfigError::Read {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })
            }
        }
        Ok(cfg)
    }

    /// Parse config text as if read from `path` (includes relative to `~/.ssh`).
    pub fn parse(path: &Path, text: &str) -> Result<Self, SshConfigError> {
        let mut cfg = SshConfig::default();
        let base = home_dir().map(|h| h.join(".ssh")).unwrap_or_default();
        cfg.parse_into(path, text, 0, &base)?;
        Ok(cfg)
    }

    /// Append another file's blocks after this one's (user config first, then the system config: the first
    /// obtained value still wins).
    pub fn extend(&mut self, other: SshConfig) {
        self.blocks.extend(other.blocks);
        self.warnings.extend(other.warnings);
    }

    fn parse_into(
        &mut self,
        path: &Path,
        text: &str,
        depth: usize,
        base: &Path,
    ) -> Result<(), SshConfigError> {
        if depth > 16 {
            return Err(SshConfigError::Invalid {
                location: path.display().to_string(),
                message: "Include nested too deeply (a loop?)".into(),
            });
        }
        for (i, line) in text.lines().enumerate() {
            let location = format!("{}:{}", path.display(), i + 1);
            let inv = |message: String| SshConfigError::Invalid {
                location: location.clone(),
                message,
            };
            let Some((key, args)) = split_keyword(line).map_err(inv)? else {
                continue;
            };
            match key.as_str() {
                "host" => {
                    if args.is_empty() {
                        return Err(inv("Host needs at least one pattern".into()));
                    }
                    let pats = args
                        .iter()
                        .map(|a| match a.strip_prefix('!') {
                            Some(n) => (true, n.to_ascii_lowercase()),
                            None => (false, a.to_ascii_lowercase()),
                        })
                        .collect();
                    self.blocks.push(Block {
                        patterns: Some(pats),
                        unsupported: false,
                        opts: vec![],
                    });
                }
                "match" => {
                    self.warnings.push(format!(
                        "{location}: `Match` blocks are not supported by edgefleet; the options in this block are ignored (use `Host` patterns)"
                    ));
                    self.blocks.push(Block {
                        patterns: None,
                        unsupported: true,
                        opts: vec![],
                    });
                }
                "include" => {
                    if self.blocks.last().is_some_and(|b| b.unsupported) {
                        continue;
                    }
                    for a in &args {
                        let p = expand_tilde(a);
                        let p = if p.is_absolute() { p } else { base.join(p) };
                        for f in expand_glob(&p) {
                            match std::fs::read_to_string(&f) {
                                Ok(t) => self.parse_into(&f, &t, depth + 1, base)?,
                                Err(e) => self.warnings.push(format!(
                                    "{location}: cannot read included {}: {e}",
                                    f.display()
                                )),
                            }
                        }
                    }
                }
                _ => {
                    validate(&key, &args).map_err(inv)?;
                    if key == "proxycommand"
                        && !args.first().is_some_and(|a| a.eq_ignore_ascii_case("none"))
                    {
                        self.warnings.push(format!(
                            "{location}: ProxyCommand is not supported by edgefleet and is ignored (use ProxyJump)"
                        ));
                    }
                    if self.blocks.is_empty() {
                        self.blocks.push(Block {
                            patterns: None,
                            unsupported: false,
                            opts: vec![],
                        });
                    }
                    if let Some(b) = self.blocks.last_mut() {
                        b.opts.push(Opt {
                            key,
                            args,
                            location,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// The options that apply to `host` (as given: the alias before HostName), in file order.
    fn options_for<'a>(&'a self, host: &'a str) -> impl Iterator<Item = &'a Opt> + 'a {
        self.blocks
            .iter()
            .filter(move |b| {
                !b.unsupported
                    && match &b.patterns {
                        None => true,
                        Some(p) => {
                            match_pattern_list(host, p.iter().map(|(n, g)| (*n, g.as_str())))
                        }
                    }
            })
            .flat_map(|b| b.opts.iter())
    }
}

/// Check a keyword's value the way OpenSSH would refuse it.
fn validate(key: &str, args: &[String]) -> Result<(), String> {
    let first = args.first().map(String::as_str);
    let need = |what: &str| format!("{key} needs {what}");
    match key {
        "port" => {
            let v = first.ok_or_else(|| need("a port number"))?;
            v.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("Port {v:?} is not a port number (1-65535)"))?;
        }
        "connecttimeout" | "serveraliveinterval" => {
            let v = first.ok_or_else(|| need("a number of seconds"))?;
            parse_seconds(v).ok_or_else(|| format!("{key} {v:?} is not a number of seconds"))?;
        }
        "serveralivecountmax" | "connectionattempts" => {
            let v = first.ok_or_else(|| need("a number"))?;
            v.parse::<u32>()
                .map_err(|_| format!("{key} {v:?} is not a number"))?;
        }
        "stricthostkeychecking" => {
            let v = first.ok_or_else(|| need("yes, accept-new or no"))?;
            parse_strict(v)
                .ok_or_else(|| format!("StrictHostKeyChecking {v:?}: use yes, accept-new or no"))?;
        }
        "identitiesonly" | "hashknownhosts" => {
            let v = first.ok_or_else(|| need("yes or no"))?;
            parse_bool(v).ok_or_else(|| format!("{key} {v:?}: use yes or no"))?;
        }
        "hostname"
        | "user"
        | "identityfile"
        | "proxyjump"
        | "userknownhostsfile"
        | "globalknownhostsfile"
        | "hostkeyalias" => {
            first.ok_or_else(|| need("a value"))?;
        }
        _ => {}
    }
    Ok(())
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" => Some(true),
        "no" | "false" => Some(false),
        _ => None,
    }
}

fn parse_strict(v: &str) -> Option<StrictMode> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "ask" | "true" => Some(StrictMode::Yes),
        "accept-new" => Some(StrictMode::AcceptNew),
        "no" | "off" | "false" => Some(StrictMode::No),
        _ => None,
    }
}

/// OpenSSH time format: plain seconds, or `1m30s`-style units (s, m, h, d, w).
fn parse_seconds(v: &str) -> Option<Duration> {
    if let Ok(n) = v.parse::<u64>() {
        return Some(Duration::from_secs(n));
    }
    let mut total = 0u64;
    let mut num = String::new();
    for c in v.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        let mul = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            'w' => 604800,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(mul)?)?;
    }
    if !num.is_empty() {
        total = total.checked_add(num.parse().ok()?)?;
    }
    Some(Duration::from_secs(total))
}

/// What the ssh flags in `ansible_ssh_common_args` / `ansible_ssh_extra_args` say.
#[derive(Debug, Clone, Default)]
pub struct SshArgs {
    /// `-o Key=Value`, `-p`, `-l`, `-i`, `-J` as config options, in order (they win over any file).
    opts: Vec<Opt>,
    /// `-F FILE`.
    pub config_file: Option<PathBuf>,
    /// Flags edgefleet does not act on (reported once, never fatal).
    pub ignored: Vec<String>,
}

impl SshArgs {
    /// Parse ssh arguments (already split into words).
    pub fn parse(args: &[String]) -> Result<Self, SshConfigError> {
        let mut out = SshArgs::default();
        let loc = "ansible_ssh_common_args/ansible_ssh_extra_args".to_string();
        let inv = |message: String| SshConfigError::Invalid {
            location: loc.clone(),
            message,
        };
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            i += 1;
            let Some(flag) = a.strip_prefix('-').filter(|f| !f.is_empty()) else {
                out.ignored.push(a.clone());
                continue;
            };
            let c = flag.chars().next().unwrap_or('-');
            let takes_value = "BbcDEeFIiJLlmOopQRSWw".contains(c);
            if !takes_value {
                out.ignored.push(a.clone());
                continue;
            }
            let value = if flag.len() > c.len_utf8() {
                flag[c.len_utf8()..].to_string()
            } else if i < args.len() {
                i += 1;
                args[i - 1].clone()
            } else {
                return Err(inv(format!("{a} needs a value")));
            };
            let mut push = |key: &str, v: String| -> Result<(), SshConfigError> {
                let argv = vec![v];
                validate(key, &argv).map_err(inv)?;
                out.opts.push(Opt {
                    key: key.to_string(),
                    args: argv,
                    location: loc.clone(),
                });
                Ok(())
            };
            match c {
                'o' => {
                    let Some((key, vals)) = split_keyword(&value).map_err(inv)? else {
                        return Err(inv(format!("-o {value:?} is empty")));
                    };
                    if vals.is_empty() {
                        return Err(inv(format!(
                            "-o {value:?} has no value: write -o Key=Value"
                        )));
                    }
                    validate(&key, &vals).map_err(inv)?;
                    out.opts.push(Opt {
                        key,
                        args: vals,
                        location: loc.clone(),
                    });
                }
                'p' => push("port", value)?,
                'l' => push("user", value)?,
                'i' => push("identityfile", value)?,
                'J' => push("proxyjump", value)?,
                'F' => out.config_file = Some(expand_tilde(&value)),
                _ => out.ignored.push(format!("{a} {value}")),
            }
        }
        Ok(out)
    }
}

/// Local values for `%` tokens.
struct Tokens<'a> {
    host: &'a str,
    port: u16,
    user: &'a str,
    local_user: String,
    home: String,
}

fn expand_tokens(s: &str, t: &Tokens<'_>) -> String {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('%') => out.push('%'),
            Some('h') => out.push_str(t.host),
            Some('p') => out.push_str(&t.port.to_string()),
            Some('r') => out.push_str(t.user),
            Some('u') => out.push_str(&t.local_user),
            Some('d') => out.push_str(&t.home),
            Some(x) => {
                out.push('%');
                out.push(x);
            }
            None => out.push('%'),
        }
    }
    out
}

/// Resolve everything for `host` (the destination as written: inventory `ansible_host`, or a jump host name).
/// `first` holds options that win over everything (explicit inventory vars), then `args`, then `config`.
pub fn resolve(
    host: &str,
    first: &[(&str, String)],
    args: &SshArgs,
    config: &SshConfig,
) -> HostConfig {
    let explicit: Vec<Opt> = first
        .iter()
        .map(|(k, v)| Opt {
            key: k.to_ascii_lowercase(),
            args: vec![v.clone()],
            location: "inventory".into(),
        })
        .collect();
    let all = explicit
        .iter()
        .chain(args.opts.iter())
        .chain(config.options_for(host));
    let mut hc = HostConfig::default();
    let mut raw_identities: Vec<String> = Vec::new();
    let mut raw_ukh: Option<Vec<String>> = None;
    let mut raw_gkh: Option<Vec<String>> = None;
    for o in all {
        let v = o.args.first().cloned().unwrap_or_default();
        match o.key.as_str() {
            "hostname" if hc.hostname.is_none() => {
                hc.hostname = Some(expand_tokens(
                    &v,
                    &Tokens {
                        host,
                        port: 22,
                        user: "",
                        local_user: String::new(),
                        home: String::new(),
                    },
                ))
            }
            "user" if hc.user.is_none() => hc.user = Some(v),
            "port" if hc.port.is_none() => hc.port = v.parse().ok(),
            "identityfile" if !raw_identities.contains(&v) => raw_identities.push(v),
            "identitiesonly" if hc.identities_only.is_none() => hc.identities_only = parse_bool(&v),
            "proxyjump" if hc.proxy_jump.is_none() => hc.proxy_jump = Some(v),
            "userknownhostsfile" if raw_ukh.is_none() => raw_ukh = Some(o.args.clone()),
            "globalknownhostsfile" if raw_gkh.is_none() => raw_gkh = Some(o.args.clone()),
            "stricthostkeychecking" if hc.strict_host_key_checking.is_none() => {
                hc.strict_host_key_checking = parse_strict(&v);
                hc.strict_source = Some(o.location.clone());
            }
            "hashknownhosts" if hc.hash_known_hosts.is_none() => {
                hc.hash_known_hosts = parse_bool(&v)
            }
            "hostkeyalias" if hc.host_key_alias.is_none() => hc.host_key_alias = Some(v),
            "connecttimeout" if hc.connect_timeout.is_none() => {
                hc.connect_timeout = parse_seconds(&v)
            }
            "connectionattempts" if hc.connection_attempts.is_none() => {
                hc.connection_attempts = v.parse().ok()
            }
            "serveraliveinterval" if hc.server_alive_interval.is_none() => {
                hc.server_alive_interval = parse_seconds(&v)
            }
            "serveralivecountmax" if hc.server_alive_count_max.is_none() => {
                hc.server_alive_count_max = v.parse().ok()
            }
            _ => {}
        }
    }
    let tokens = Tokens {
        host: hc.hostname.as_deref().unwrap_or(host),
        port: hc.port.unwrap_or(22),
        user: hc.user.as_deref().unwrap_or(""),
        local_user: std::env::var("USER").unwrap_or_default(),
        home: home_dir()
            .map(|h| h.display().to_string())
            .unwrap_or_default(),
    };
    let path = |s: &String| expand_tilde(&expand_tokens(s, &tokens));
    hc.identity_files = raw_identities
        .iter()
        .filter(|s| !s.eq_ignore_ascii_case("none"))
        .map(path)
        .collect();
    hc.user_known_hosts = raw_ukh.map(|v| v.iter().map(path).collect());
    hc.global_known_hosts = raw_gkh.map(|v| v.iter().map(path).collect());
    hc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> SshConfig {
        SshConfig::parse(Path::new("/cfg"), text).unwrap()
    }

    fn args(a: &[&str]) -> SshArgs {
        SshArgs::parse(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn first_obtained_value_wins_and_identities_accumulate() {
        let c = cfg("\
# comment
Host edge-* !edge-9
    User edgeadmin
    Port 2222
    IdentityFile ~/.ssh/fleet_ed25519
Host edge-1
    User other
    HostName 10.0.0.%h
Host *
    User fallback
    IdentityFile /keys/common
    StrictHostKeyChecking accept-new
    ServerAliveInterval 1m
    ConnectTimeout=7
");
        let h = resolve("edge-1", &[], &SshArgs::default(), &c);
        assert_eq!(h.user.as_deref(), Some("edgeadmin"));
        assert_eq!(h.port, Some(2222));
        assert_eq!(h.hostname.as_deref(), Some("10.0.0.edge-1"));
        assert_eq!(h.identity_files.len(), 2);
        assert!(h.identity_files[0].ends_with(".ssh/fleet_ed25519"));
        assert!(!h.identity_files[0].starts_with("~"));
        assert_eq!(h.identity_files[1], PathBuf::from("/keys/common"));
        assert_eq!(h.strict_host_key_checking, Some(StrictMode::AcceptNew));
        assert_eq!(h.server_alive_interval, Some(Duration::from_secs(60)));
        assert_eq!(h.connect_timeout, Some(Duration::from_secs(7)));
        // Negated: edge-9 falls through to Host *.
        let h = resolve("edge-9", &[], &SshArgs::default(), &c);
        assert_eq!(h.user.as_deref(), Some("fallback"));
        assert_eq!(h.port, None);
    }

    #[test]
    fn args_and_explicit_values_win_over_files() {
        let c = cfg("Host *\n  User fromfile\n  Port 2200\n  ProxyJump filejump\n");
        let a = args(&[
            "-o",
            "StrictHostKeyChecking=no",
            "-oUserKnownHostsFile=/tmp/kh /tmp/kh2",
            "-p",
            "2300",
            "-J",
            "bastion1,bastion2",
            "-i",
            "/k/id",
            "-C",
            "-l",
            "argsuser",
            "-F",
            "/x/cfg",
        ]);
        assert_eq!(a.config_file, Some(PathBuf::from("/x/cfg")));
        assert_eq!(a.ignored, vec!["-C".to_string()]);
        let h = resolve("d", &[("User", "inv".into())], &a, &c);
        assert_eq!(h.user.as_deref(), Some("inv"));
        assert_eq!(h.port, Some(2300));
        assert_eq!(h.proxy_jump.as_deref(), Some("bastion1,bastion2"));
        assert_eq!(h.strict_host_key_checking, Some(StrictMode::No));
        assert_eq!(
            h.user_known_hosts,
            Some(vec![PathBuf::from("/tmp/kh"), PathBuf::from("/tmp/kh2")])
        );
        assert_eq!(h.identity_files, vec![PathBuf::from("/k/id")]);
    }

    #[test]
    fn bad_values_name_the_line() {
        let e = SshConfig::parse(Path::new("/cfg"), "Host a\n  Port abc\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/cfg:2: Port \"abc\" is not a port number (1-65535)"
        );
        let e = SshArgs::parse(&["-o".into(), "StrictHostKeyChecking=maybe".into()]).unwrap_err();
        assert!(e.to_string().contains("use yes, accept-new or no"), "{e}");
        let e = SshArgs::parse(&["-p".into()]).unwrap_err();
        assert!(e.to_string().contains("-p needs a value"), "{e}");
    }

    #[test]
    fn match_is_skipped_with_a_warning_and_unknown_keywords_ignored() {
        let c = cfg("Match host x\n  User matched\nHost *\n  User plain\n  FancyNewOption yes\n  ProxyCommand nc %h %p\n");
        assert_eq!(c.warnings.len(), 2);
        assert!(
            c.warnings[1].contains("/cfg:6: ProxyCommand"),
            "{}",
            c.warnings[1]
        );
        assert!(c.warnings[0].starts_with("/cfg:1:"), "{}", c.warnings[0]);
        let h = resolve("x", &[], &SshArgs::default(), &c);
        assert_eq!(h.user.as_deref(), Some("plain"));
    }

    #[test]
    fn include_with_glob() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("conf.d")).unwrap();
        std::fs::write(d.path().join("conf.d/10-a.conf"), "Host a\n  User ua\n").unwrap();
        std::fs::write(d.path().join("conf.d/20-b.conf"), "Host b\n  Port 2022\n").unwrap();
        let main = format!(
            "Include {}/conf.d/*.conf\nHost *\n  User any\n",
            d.path().display()
        );
        let c = cfg(&main);
        assert_eq!(
            resolve("a", &[], &SshArgs::default(), &c).user.as_deref(),
            Some("ua")
        );
        let hb = resolve("b", &[], &SshArgs::default(), &c);
        assert_eq!((hb.user.as_deref(), hb.port), (Some("any"), Some(2022)));
    }

    #[test]
    fn shell_like_splitting() {
        assert_eq!(
            split_args(r#"-o ProxyJump=a@b -o 'UserKnownHostsFile=/tmp/my kh' -o "X=\"q\"" a\ b"#)
                .unwrap(),
            vec![
                "-o",
                "ProxyJump=a@b",
                "-o",
                "UserKnownHostsFile=/tmp/my kh",
                "-o",
                "X=\"q\"",
                "a b"
            ]
        );
        assert!(split_args("'open").is_err());
        assert_eq!(
            split_words(r#"IdentityFile "/a b/c""#).unwrap(),
            vec!["IdentityFile", "/a b/c"]
        );
        assert_eq!(parse_seconds("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_seconds("x"), None);
    }
}
