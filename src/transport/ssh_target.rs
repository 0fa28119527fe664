//! Where and how to reach one device over SSH: the merge of inventory connection variables ([`ConnSpec`]),
//! ssh arguments, ssh_config and the run-wide options, into one [`Target`] (and its ProxyJump chain).
//!
//! Owns precedence (explicit inventory vars > `ansible_ssh_*_args` > ssh_config file > run-wide defaults, with
//! `--known-hosts` and `--host-key-policy` as run-wide overrides), jump-host parsing (`[user@]host[:port]`,
//! `ssh://` URIs, comma lists for multi-hop) and the default identity and known_hosts locations. Pure: it must
//! not open connections or read keys; the only files it reads are ssh_config files (through the caller's cache).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::known_hosts::lookup_name;
use super::ssh_config::{
    self, home_dir, HostConfig, SshArgs, SshConfig, SshConfigError, StrictMode,
};
use super::ConnSpec;

/// What to do with host keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// Refuse unknown and changed keys.
    Strict,
    /// Record unknown keys once (atomically); refuse changed keys.
    AcceptNew,
    /// Check nothing (`ansible_ssh_host_key_checking: false`, `StrictHostKeyChecking=no`): loud warning.
    Off,
}

/// `--connect-timeout` when not given (a per-host ConnectTimeout / `ansible_ssh_timeout` wins).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Run-wide SSH options (from the command line), shared by every device of a run.
#[derive(Debug, Clone)]
pub struct SshOptions {
    /// `--known-hosts FILE`: the only user known_hosts file (overrides UserKnownHostsFile).
    pub known_hosts: Option<PathBuf>,
    /// `--host-key-policy`; `None` = from ssh_config/args, else strict.
    pub host_key_policy: Option<HostKeyPolicy>,
    /// `-F FILE`; `None` = `~/.ssh/config` followed by [`SshOptions::system_ssh_config`].
    pub ssh_config: Option<PathBuf>,
    /// The system-wide ssh_config read after the user's when no `-F` is given (default `/etc/ssh/ssh_config`).
    pub system_ssh_config: Option<PathBuf>,
    /// `--connect-timeout` (a per-host ConnectTimeout / `ansible_ssh_timeout` wins).
    pub connect_timeout: Duration,
    /// Use the ssh-agent first.
    pub use_agent: bool,
    /// The agent's socket; `None` = `$SSH_AUTH_SOCK`.
    pub agent_socket: Option<PathBuf>,
    /// Read-only known_hosts files consulted after the user's (default `/etc/ssh/ssh_known_hosts`).
    pub global_known_hosts: Vec<PathBuf>,
    /// Identity files tried when nothing names one (default `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`).
    pub default_identities: Vec<PathBuf>,
    /// Prompt on the terminal for key passphrases (once per key file per run) when no other source has one.
    pub prompt_passphrase: bool,
    /// Channels (commands) in flight per connection; more are queued. OpenSSH's MaxSessions is 10.
    pub max_channels: usize,
    /// Simultaneous handshakes through one bastion connection.
    pub bastion_handshakes: usize,
    /// Simultaneous handshakes (connect + key exchange + auth) in the whole run: a thousand devices connecting at
    /// once would only make every handshake slow enough to time out. Waiting for a slot does not count against
    /// the connect timeout.
    pub max_handshakes: usize,
    /// Connect attempts for refused/reset connections (sshd MaxStartups drops), all within the connect timeout.
    pub connect_attempts: u32,
    /// Hold this run's lock on every device for as long as its connection lives (`play`; `None` for read-only
    /// commands and `--check`). It takes one session channel beside the [`SshOptions::max_channels`].
    pub run_lock: Option<super::runlock::RunLock>,
}

impl Default for SshOptions {
    fn default() -> Self {
        let ssh_dir = home_dir().map(|h| h.join(".ssh")).unwrap_or_default();
        SshOptions {
            known_hosts: None,
            host_key_policy: None,
            ssh_config: None,
            system_ssh_config: Some(PathBuf::from("/etc/ssh/ssh_config")),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            use_agent: true,
            agent_socket: None,
            global_known_hosts: vec![PathBuf::from("/etc/ssh/ssh_known_hosts")],
            default_identities: ["id_ed25519", "id_ecdsa", "id_rsa"]
                .iter()
                .map(|n| ssh_dir.join(n))
                .collect(),
            prompt_passphrase: true,
            max_channels: 8,
            bastion_handshakes: 16,
            max_handshakes: 64,
            connect_attempts: 8,
            run_lock: None,
        }
    }
}

impl SshOptions {
    /// The ssh_config files for a host whose args name `-F` (or not): `(path, is_system)`, user file first.
    pub fn config_files(&self, args_file: Option<&Path>) -> Vec<(PathBuf, bool)> {
        if let Some(p) = args_file.or(self.ssh_config.as_deref()) {
            return vec![(p.to_path_buf(), false)];
        }
        let mut v = Vec::new();
        if let Some(h) = home_dir() {
            v.push((h.join(".ssh/config"), false));
        }
        if let Some(s) = &self.system_ssh_config {
            v.push((s.clone(), true));
        }
        v
    }
}

/// Everything needed to reach one SSH endpoint (a device or a jump host).
#[derive(Debug, Clone)]
pub struct Target {
    /// Inventory name (or the jump spec), for messages.
    pub name: String,
    /// Network host name or address (after ssh_config HostName).
    pub hostname: String,
    /// TCP port.
    pub port: u16,
    /// Remote user.
    pub user: String,
    /// Identity files to try, in order (after the agent).
    pub identities: Vec<PathBuf>,
    /// Whether identity files were named explicitly (missing ones are then reported).
    pub identities_explicit: bool,
    /// IdentitiesOnly: use only agent keys whose public half matches an identity file.
    pub identities_only: bool,
    /// Password (`ansible_password`). Secret.
    pub password: Option<String>,
    /// Key passphrase (`ansible_ssh_private_key_passphrase`). Secret.
    pub passphrase: Option<String>,
    /// Known_hosts files that may receive new keys (the first one does).
    pub user_known_hosts: Vec<PathBuf>,
    /// Read-only known_hosts files.
    pub global_known_hosts: Vec<PathBuf>,
    /// Host key policy for this endpoint.
    pub policy: HostKeyPolicy,
    /// Where a disabled policy came from (for the warning).
    pub policy_source: Option<String>,
    /// Write new known_hosts lines hashed.
    pub hash_known_hosts: bool,
    /// HostKeyAlias (the name checked in known_hosts instead of the host name).
    pub host_key_alias: Option<String>,
    /// Connect timeout (TCP + banner + key exchange, and again for authentication).
    pub connect_timeout: Duration,
    /// Keepalive interval (`None`: off) and missed replies before the connection is declared dead.
    pub keepalive: (Option<Duration>, usize),
    /// The jump host this endpoint is reached through (itself possibly behind another).
    pub jump: Option<Arc<Target>>,
    /// ssh flags from `ansible_ssh_*_args` that edgefleet does not act on (reported once).
    pub ignored_args: Vec<String>,
}

impl Target {
    /// `host:port` for messages.
    pub fn addr(&self) -> String {
        if self.hostname.contains(':') {
            format!("[{}]:{}", self.hostname, self.port)
        } else {
            format!("{}:{}", self.hostname, self.port)
        }
    }

    /// The names looked up in known_hosts: `host` or `[host]:port`, or the HostKeyAlias verbatim (as OpenSSH).
    pub fn known_hosts_names(&self) -> Vec<String> {
        match &self.host_key_alias {
            Some(a) => vec![a.to_ascii_lowercase()],
            None => vec![lookup_name(&self.hostname.to_ascii_lowercase(), self.port)],
        }
    }

    /// The name a host certificate must list as a principal.
    pub fn principal(&self) -> &str {
        self.host_key_alias.as_deref().unwrap_or(&self.hostname)
    }

    /// A stable key identifying this endpoint and how we authenticate to it (for sharing bastion connections).
    pub fn key(&self) -> String {
        let mut k = format!("{}@{}", self.user, self.addr());
        for i in &self.identities {
            k.push('|');
            k.push_str(&i.to_string_lossy());
        }
        if let Some(j) = &self.jump {
            k.push_str(" via ");
            k.push_str(&j.key());
        }
        k
    }
}

/// One hop of a ProxyJump list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpHop {
    /// User, when given.
    pub user: Option<String>,
    /// Host (alias, looked up in ssh_config).
    pub host: String,
    /// Port, when given.
    pub port: Option<u16>,
}

/// Parse a ProxyJump value: `[user@]host[:port]` or `ssh://[user@]host[:port]`, comma-separated, first hop
/// first. `none` means no jump.
pub fn parse_jump(s: &str) -> Result<Vec<JumpHop>, String> {
    let s = s.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("none") {
        return Ok(vec![]);
    }
    s.split(',')
        .map(|h| {
            let h = h.trim();
            let h = h.strip_prefix("ssh://").unwrap_or(h);
            let (user, rest) = match h.rsplit_once('@') {
                Some((u, r)) => (Some(u.to_string()), r),
                None => (None, h),
            };
            let (host, port) = if let Some(r) = rest.strip_prefix('[') {
                let (host, after) = r
                    .split_once(']')
                    .ok_or_else(|| format!("jump host {h:?}: missing ']'"))?;
                let port = match after.strip_prefix(':') {
                    Some(p) => Some(p.to_string()),
                    None if after.is_empty() => None,
                    None => return Err(format!("jump host {h:?}: junk after ']'")),
                };
                (host.to_string(), port)
            } else {
                match rest.split_once(':') {
                    Some((host, port)) => (host.to_string(), Some(port.to_string())),
                    None => (rest.to_string(), None),
                }
            };
            if host.is_empty() {
                return Err(format!("jump host {h:?} has no host name"));
            }
            let port = match port {
                Some(p) => Some(
                    p.parse::<u16>()
                        .ok()
                        .filter(|p| *p > 0)
                        .ok_or_else(|| format!("jump host {h:?}: bad port {p:?}"))?,
                ),
                None => None,
            };
            Ok(JumpHop { user, host, port })
        })
        .collect()
}

/// Loads (and merges, in order) ssh_config files given as `(path, is_system)`.
pub type ConfigLoader<'a> =
    dyn Fn(&[(PathBuf, bool)]) -> Result<Arc<SshConfig>, SshConfigError> + 'a;

/// Resolves [`Target`]s; `config` loads (and caches) ssh_config files.
pub struct Resolver<'a> {
    /// Run-wide options.
    pub opts: &'a SshOptions,
    /// Loads (and merges, in order) ssh_config files given as `(path, is_system)`.
    pub config: &'a ConfigLoader<'a>,
}

fn local_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "root".into())
}

impl Resolver<'_> {
    fn config_for(&self, args: &SshArgs) -> Result<Arc<SshConfig>, SshConfigError> {
        (self.config)(&self.opts.config_files(args.config_file.as_deref()))
    }

    /// Resolve the device described by `spec`.
    pub fn device(&self, spec: &ConnSpec) -> Result<Target, String> {
        let args = SshArgs::parse(&spec.ssh_args).map_err(|e| format!("{}: {e}", spec.name))?;
        let cfg = self
            .config_for(&args)
            .map_err(|e| format!("{}: {e}", spec.name))?;
        let mut first: Vec<(&str, String)> = Vec::new();
        if let Some(p) = spec.port {
            first.push(("Port", p.to_string()));
        }
        if let Some(u) = &spec.user {
            first.push(("User", u.clone()));
        }
        if let Some(k) = &spec.private_key_file {
            first.push(("IdentityFile", k.to_string_lossy().into_owned()));
        }
        if let Some(j) = &spec.jump {
            first.push(("ProxyJump", j.clone()));
        }
        if let Some(t) = spec.connect_timeout {
            first.push(("ConnectTimeout", t.as_secs().max(1).to_string()));
        }
        if spec.host_key_checking == Some(false) {
            first.push(("StrictHostKeyChecking", "no".into()));
        }
        let alias = if spec.address.is_empty() {
            spec.name.as_str()
        } else {
            spec.address.as_str()
        };
        let hc = ssh_config::resolve(alias, &first, &args, &cfg);
        let mut t = self.build(&spec.name, alias, &hc)?;
        t.password = spec.password.clone();
        t.passphrase = spec.private_key_passphrase.clone();
        t.ignored_args = args.ignored.clone();
        if let Some(j) = &hc.proxy_jump {
            t.jump = self.chain(j, &cfg, 0, spec.private_key_file.as_deref())?;
        }
        Ok(t)
    }

    fn build(&self, name: &str, alias: &str, hc: &HostConfig) -> Result<Target, String> {
        let identities_explicit = !hc.identity_files.is_empty();
        let identities = if identities_explicit {
            hc.identity_files.clone()
        } else {
            self.opts.default_identities.clone()
        };
        let user_known_hosts = match &self.opts.known_hosts {
            Some(p) => vec![p.clone()],
            None => hc.user_known_hosts.clone().unwrap_or_else(|| {
                vec![home_dir()
                    .map(|h| h.join(".ssh/known_hosts"))
                    .unwrap_or_else(|| PathBuf::from(".ssh/known_hosts"))]
            }),
        };
        let global_known_hosts = match (&self.opts.known_hosts, &hc.global_known_hosts) {
            (Some(_), _) => vec![],
            (None, Some(g)) => g.clone(),
            (None, None) => self.opts.global_known_hosts.clone(),
        };
        // A per-host "off" always wins (loudly); otherwise the run-wide flag, then the files, then strict.
        let (policy, policy_source) = match (hc.strict_host_key_checking, self.opts.host_key_policy)
        {
            (Some(StrictMode::No), _) => (HostKeyPolicy::Off, hc.strict_source.clone()),
            (_, Some(p)) => (p, None),
            (Some(StrictMode::AcceptNew), None) => (HostKeyPolicy::AcceptNew, None),
            _ => (HostKeyPolicy::Strict, None),
        };
        let interval = match hc.server_alive_interval {
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
            None => Some(Duration::from_secs(15)),
        };
        Ok(Target {
            name: name.to_string(),
            hostname: hc.hostname.clone().unwrap_or_else(|| alias.to_string()),
            port: hc.port.unwrap_or(22),
            user: hc.user.clone().unwrap_or_else(local_user),
            identities,
            identities_explicit,
            identities_only: hc.identities_only.unwrap_or(false),
            password: None,
            passphrase: None,
            user_known_hosts,
            global_known_hosts,
            policy,
            policy_source,
            hash_known_hosts: hc.hash_known_hosts.unwrap_or(false),
            host_key_alias: hc.host_key_alias.clone(),
            connect_timeout: hc.connect_timeout.unwrap_or(self.opts.connect_timeout),
            keepalive: (interval, hc.server_alive_count_max.unwrap_or(3) as usize),
            jump: None,
            ignored_args: Vec::new(),
        })
    }

    /// Resolve a ProxyJump list into the last hop (which links back to the earlier ones).
    fn chain(
        &self,
        spec: &str,
        cfg: &SshConfig,
        depth: usize,
        extra_identity: Option<&Path>,
    ) -> Result<Option<Arc<Target>>, String> {
        if depth > 4 {
            return Err(format!(
                "ProxyJump {spec:?}: more than 4 nested jump hosts (a loop in ssh_config?)"
            ));
        }
        let hops = parse_jump(spec)?;
        let mut prev: Option<Arc<Target>> = None;
        for (i, hop) in hops.iter().enumerate() {
            let mut first: Vec<(&str, String)> = Vec::new();
            if let Some(u) = &hop.user {
                first.push(("User", u.clone()));
            }
            if let Some(p) = hop.port {
                first.push(("Port", p.to_string()));
            }
            let hc = ssh_config::resolve(&hop.host, &first, &SshArgs::default(), cfg);
            let mut t = self.build(&format!("jump host {}", hop.host), &hop.host, &hc)?;
            // The device's own key is also offered to its jump hosts (after theirs): fleets usually share one.
            if let Some(k) = extra_identity {
                if !t.identities.iter().any(|i| i == k) {
                    t.identities.push(k.to_path_buf());
                }
            }
            t.jump = if i == 0 {
                match &hc.proxy_jump {
                    Some(j) => self.chain(j, cfg, depth + 1, extra_identity)?,
                    None => None,
                }
            } else {
                prev.clone()
            };
            prev = Some(Arc::new(t));
        }
        Ok(prev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jump_specs() {
        assert_eq!(
            parse_jump("admin@bastion:2222,ssh://u@[::1]:22,plain").unwrap(),
            vec![
                JumpHop {
                    user: Some("admin".into()),
                    host: "bastion".into(),
                    port: Some(2222)
                },
                JumpHop {
                    user: Some("u".into()),
                    host: "::1".into(),
                    port: Some(22)
                },
                JumpHop {
                    user: None,
                    host: "plain".into(),
                    port: None
                },
            ]
        );
        assert!(parse_jump("none").unwrap().is_empty());
        assert!(parse_jump("h:99999").unwrap_err().contains("bad port"));
    }

    fn resolver_test(cfg_text: &str, spec: ConnSpec, opts: SshOptions) -> Result<Target, String> {
        let cfg = Arc::new(SshConfig::parse(Path::new("/cfg"), cfg_text).unwrap());
        let load = move |_: &[(PathBuf, bool)]| Ok(cfg.clone());
        let r = Resolver {
            opts: &opts,
            config: &load,
        };
        r.device(&spec)
    }

    #[test]
    fn device_resolution_and_precedence() {
        let cfg = "Host 10.0.0.*\n  User cfguser\n  Port 2200\n  ProxyJump jumpy\n  StrictHostKeyChecking accept-new\nHost jumpy\n  HostName 192.0.2.1\n  User jumper\n  ProxyJump first@outer:2022\n";
        let spec = ConnSpec {
            name: "dev1".into(),
            address: "10.0.0.7".into(),
            user: Some("inv".into()),
            private_key_file: Some("/k/dev".into()),
            ..Default::default()
        };
        let t = resolver_test(cfg, spec.clone(), SshOptions::default()).unwrap();
        assert_eq!(
            (t.user.as_str(), t.port, t.hostname.as_str()),
            ("inv", 2200, "10.0.0.7")
        );
        assert_eq!(t.identities, vec![PathBuf::from("/k/dev")]);
        assert_eq!(t.policy, HostKeyPolicy::AcceptNew);
        assert_eq!(t.known_hosts_names(), vec!["[10.0.0.7]:2200".to_string()]);
        let j = t.jump.as_ref().unwrap();
        assert_eq!(
            (j.hostname.as_str(), j.user.as_str(), j.port),
            ("192.0.2.1", "jumper", 22)
        );
        assert!(j.identities.contains(&PathBuf::from("/k/dev")));
        let outer = j.jump.as_ref().unwrap();
        assert_eq!(
            (outer.hostname.as_str(), outer.user.as_str(), outer.port),
            ("outer", "first", 2022)
        );
        assert!(outer.jump.is_none());
        assert!(t.key().contains(" via "));

        // The run-wide flag beats the file; a per-host "off" beats the flag.
        let opts = SshOptions {
            host_key_policy: Some(HostKeyPolicy::Strict),
            ..Default::default()
        };
        assert_eq!(
            resolver_test(cfg, spec.clone(), opts.clone())
                .unwrap()
                .policy,
            HostKeyPolicy::Strict
        );
        let off = ConnSpec {
            host_key_checking: Some(false),
            ..spec.clone()
        };
        let t = resolver_test(cfg, off, opts).unwrap();
        assert_eq!(t.policy, HostKeyPolicy::Off);
        assert_eq!(t.policy_source.as_deref(), Some("inventory"));

        // Multi-hop from the inventory: the last listed hop is the one next to the device.
        let mh = ConnSpec {
            jump: Some("a@h1,b@h2:2022".into()),
            ..spec
        };
        let t = resolver_test("", mh, SshOptions::default()).unwrap();
        let last = t.jump.as_ref().unwrap();
        assert_eq!(
            (last.user.as_str(), last.hostname.as_str(), last.port),
            ("b", "h2", 2022)
        );
        assert_eq!(last.jump.as_ref().unwrap().hostname, "h1");
    }

    #[test]
    fn known_hosts_override_and_args() {
        let spec = ConnSpec {
            name: "d".into(),
            address: "d.example".into(),
            ssh_args: vec![
                "-o".into(),
                "UserKnownHostsFile=/a/kh".into(),
                "-p".into(),
                "2022".into(),
            ],
            ..Default::default()
        };
        let t = resolver_test("", spec.clone(), SshOptions::default()).unwrap();
        assert_eq!(t.user_known_hosts, vec![PathBuf::from("/a/kh")]);
        assert_eq!(t.known_hosts_names(), vec!["[d.example]:2022".to_string()]);
        assert_eq!(t.port, 2022);
        let mut aliased = spec.clone();
        aliased
            .ssh_args
            .extend(["-o".to_string(), "HostKeyAlias=Fleet-Dev".to_string()]);
        let t = resolver_test("", aliased, SshOptions::default()).unwrap();
        assert_eq!(t.known_hosts_names(), vec!["fleet-dev".to_string()]);
        assert_eq!(t.principal(), "Fleet-Dev");
        let opts = SshOptions {
            known_hosts: Some("/cli/kh".into()),
            ..Default::default()
        };
        let t = resolver_test("", spec, opts).unwrap();
        assert_eq!(t.user_known_hosts, vec![PathBuf::from("/cli/kh")]);
        assert!(t.global_known_hosts.is_empty());
        let bad = ConnSpec {
            name: "x".into(),
            ssh_args: vec!["-p".into(), "nope".into()],
            ..Default::default()
        };
        assert!(resolver_test("", bad, SshOptions::default())
            .unwrap_err()
            .starts_with("x: "));
    }
}
