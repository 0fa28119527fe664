//! Command-line definitions (clap derive) and nothing else.
//!
//! Owns the flags and subcommands, their help texts and their defaults (each default is a constant of the layer
//! that owns the value). It must not do any work: `commands/` turns these into actions. Nothing below
//! `commands/` imports this file; the enums a flag chooses from belong to their owners (`report`, `transport`,
//! `lab`) and are offered to clap here, so no lower layer depends on clap (the certificate defaults are
//! `iotedge::certs`'s constants).

use std::path::PathBuf;

use clap::builder::PossibleValue;
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::executor::DEFAULT_FORKS;
use crate::inventory::shard::Shard;
use crate::iotedge::certs::{
    DEFAULT_CRITICAL_DAYS, DEFAULT_RENEW_BEFORE_DAYS, DEFAULT_VALIDITY_DAYS, DEFAULT_WARN_DAYS,
};
use crate::lab::{FaultKind, LabBackend, LabUser};
use crate::report::{ColorMode, OutputFormat, ProgressMode};
use crate::transport::runlock::{DEFAULT_LOCK_WAIT_SECS, MAX_LOCK_WAIT_SECS};
use crate::transport::ssh::HostKeyPolicy;
use crate::transport::ssh_target::DEFAULT_CONNECT_TIMEOUT;

/// What `--version` prints after the name: the package version and the git commit it was built from (set by
/// `build.rs`; "unknown" in a build outside a git checkout, e.g. from a source tarball).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("EDGEFLEET_GIT_COMMIT"),
    ")"
);

/// Fleet provisioning for Azure IoT Edge devices over SSH.
#[derive(Debug, Parser)]
#[command(name = "edgefleet", version = VERSION, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run playbooks against an inventory.
    Play(PlayArgs),
    /// Show an inventory (the same JSON and tree as ansible-inventory).
    Inventory(InventoryArgs),
    /// Connect, authenticate and run `true` on every device: the floor of every run.
    Ping(PingArgs),
    /// The simulated device fleet: try playbooks on lab devices before touching real ones.
    Lab(LabArgs),
    /// age-encrypted secrets (the ansible-vault of edgefleet).
    Vault(VaultArgs),
    /// Edge CA certificates: sign new ones from your issuing CA, report expiry across the fleet.
    Certs(CertsArgs),
    /// Offline bundles: one signed file with the .debs, images and templates an air-gapped site needs.
    Bundle(BundleArgs),
    /// Check deployment manifests, config.toml and daemon.json against the IoT Edge production checklist.
    Lint(LintArgs),
    /// JSON reports: merge the reports of sharded runs into one fleet report.
    Report(ReportArgs),
    /// Print a shell completion script for bash, zsh or fish (bash also completes --limit from the inventory).
    Completions(CompletionsArgs),
    /// Write the man pages: edgefleet.1 and one per subcommand (edgefleet-play.1, edgefleet-lab-up.1, ...).
    Man(ManArgs),
}

/// `edgefleet completions`.
#[derive(Debug, Args)]
#[command(after_help = "\
Load it in the running shell, e.g. bash: source <(edgefleet completions bash); or install it where the shell
looks: bash ~/.local/share/bash-completion/completions/edgefleet, zsh a directory on $fpath as _edgefleet,
fish ~/.config/fish/completions/edgefleet.fish. In bash, --limit/-l completes the host and group names of the
inventory given by -i on the same line (else $EDGEFLEET_INVENTORY); encrypted vars files are never opened.")]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

/// The shells `edgefleet completions` writes scripts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    /// GNU bash (with dynamic completion of --limit).
    Bash,
    /// zsh.
    Zsh,
    /// fish.
    Fish,
}

/// `edgefleet man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Directory to write the pages into (created if missing; existing pages are replaced).
    #[arg(long, value_name = "DIR", required = true)]
    pub dir: PathBuf,
}

/// Subcommand name of [`CompleteHostsArgs`].
pub const COMPLETE_HOSTS: &str = "__complete-hosts";

/// `edgefleet __complete-hosts [-i INVENTORY]... [--] CURRENT` (internal): completes a --limit pattern with the
/// inventory's host and group names, for the bash completion script. Parsed apart from [`Cli`] (`commands::main`
/// looks for it first) because clap_complete's scripts offer hidden subcommands: this way neither the scripts
/// nor the man pages, both generated from `Cli`, ever show it.
#[derive(Debug, Parser)]
#[command(name = "edgefleet __complete-hosts", version = VERSION)]
pub struct CompleteHostsArgs {
    /// Inventory file or directory (repeatable). Default: $EDGEFLEET_INVENTORY.
    #[arg(short = 'i', long = "inventory", value_name = "INVENTORY")]
    pub inventory: Vec<PathBuf>,
    /// The --limit pattern typed so far.
    #[arg(value_name = "CURRENT", default_value = "", allow_hyphen_values = true)]
    pub current: String,
}

/// Where the inventory comes from.
#[derive(Debug, Args, Clone, Default)]
pub struct InventorySource {
    /// Inventory file or directory (repeatable). Default: $EDGEFLEET_INVENTORY.
    #[arg(short = 'i', long = "inventory", value_name = "INVENTORY")]
    pub inventory: Vec<PathBuf>,
    /// Limit to hosts matching this pattern (`web:&prod`, `edge-0*`, `~re`, `@file`; for `play`, `@failed`: the
    /// devices the last run did not finish ok).
    #[arg(short = 'l', long = "limit", value_name = "PATTERN")]
    pub limit: Option<String>,
    /// Only shard K of N (K from 0): a stable partition of the hosts by name, for running one fleet from N
    /// controllers (each takes one K; merge their reports with `edgefleet report merge`). Applied after --limit.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,
}

/// Output and progress options shared by commands that talk to devices.
#[derive(Debug, Args, Clone)]
pub struct OutputOptions {
    /// Output format on stdout: human text, one JSON document at the end, or JSON lines as events happen.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Write the JSON report to this file too (whatever --output says).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Write a detailed, timestamped per-device log (commands, durations, exit codes; secrets masked).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Progress display: bars on a terminal, plain lines otherwise.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// Colour.
    #[arg(long, value_enum, default_value_t = ColorMode::Auto)]
    pub color: ColorMode,
    /// More detail (-v per-task lines, -vv commands, -vvv everything).
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count)]
    pub verbose: u8,
}

/// SSH connection options shared by commands that talk to devices.
#[derive(Debug, Args, Clone)]
pub struct ConnectOptions {
    /// known_hosts file to check host keys against (default ~/.ssh/known_hosts, or the inventory's
    /// UserKnownHostsFile).
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// Unknown host keys: refuse (strict) or record them once (accept-new). A changed key is always refused.
    #[arg(long, value_enum)]
    pub host_key_policy: Option<HostKeyPolicy>,
    /// ssh_config file (default ~/.ssh/config).
    #[arg(short = 'F', long = "ssh-config", value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
    /// Connect timeout in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_CONNECT_TIMEOUT.as_secs())]
    pub connect_timeout: u64,
    /// Give up on a device after this many seconds in total (0: no deadline).
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub device_timeout: u64,
    /// Devices worked on at the same time.
    #[arg(short = 'f', long = "forks", value_name = "N", default_value_t = DEFAULT_FORKS)]
    pub forks: usize,
}

/// `edgefleet play`.
#[derive(Debug, Args)]
#[command(after_help = "\
Exit codes: 0 ok, 1 error, 2 a device failed, 3 a device was unreachable, 4 bad playbook/inventory, 5 bad options,
12 (only with --detailed-exitcode) every device ok and something changed (with --check: would change), 99 interrupted.
Every run is journaled in $XDG_STATE_HOME/edgefleet/runs/RUN-ID (default ~/.local/state/edgefleet/runs/).")]
pub struct PlayArgs {
    /// Playbook files (with --resume: default the resumed run's playbooks; if given, they must be the same).
    #[arg(required_unless_present = "resume", value_name = "PLAYBOOK")]
    pub playbooks: Vec<PathBuf>,
    /// Inventory and --limit.
    #[command(flatten)]
    pub inv: InventorySource,
    /// Don't change anything; say what would change.
    #[arg(short = 'C', long)]
    pub check: bool,
    /// Show diffs of changed files (secrets masked).
    #[arg(short = 'D', long)]
    pub diff: bool,
    /// Extra variables: `k=v ...`, a YAML/JSON mapping, or `@file.yml` (repeatable, highest precedence).
    #[arg(short = 'e', long = "extra-vars", value_name = "VARS")]
    pub extra_vars: Vec<String>,
    /// Only run tasks with these tags (comma-separated, repeatable).
    #[arg(short = 't', long = "tags", value_name = "TAGS")]
    pub tags: Vec<String>,
    /// Skip tasks with these tags.
    #[arg(long = "skip-tags", value_name = "TAGS")]
    pub skip_tags: Vec<String>,
    /// List the hosts each play would run on, then stop.
    #[arg(long)]
    pub list_hosts: bool,
    /// List the tasks each play would run, then stop.
    #[arg(long)]
    pub list_tasks: bool,
    /// Load and validate everything, contact nothing.
    #[arg(long)]
    pub syntax_check: bool,
    /// Identity to decrypt age-encrypted files (repeatable; default $EDGEFLEET_AGE_IDENTITY, then ~/.ssh keys).
    #[arg(long = "identity", value_name = "FILE")]
    pub identity: Vec<PathBuf>,
    /// Exit 12 when every device finished ok and something changed (with --check: would change, i.e. the
    /// devices drifted). Failures (2, 3, ...) still win. Without this flag a run with changes exits 0.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Re-run only the devices of an earlier run that did not finish ok (failed, unreachable, interrupted, or
    /// never finished because the controller died): `last`, or a run id from the journal directory. The
    /// playbooks and inventory default to that run's; the other flags are taken as given now.
    #[arg(long, value_name = "last|RUN-ID")]
    pub resume: Option<String>,
    /// Write the run's outcome in the Prometheus text format (node_exporter textfile collector) to FILE,
    /// atomically: devices by outcome, changed devices, findings by severity, min certificate days left,
    /// run duration and end time.
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
    /// Wait up to this many seconds for a device another run holds locked, then report it as unreachable
    /// ("locked by run ID (USER@HOST since TIME)") and go on with the others (0: don't wait; at most a day).
    /// --check runs take no lock.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_LOCK_WAIT_SECS,
          value_parser = clap::value_parser!(u64).range(0..=MAX_LOCK_WAIT_SECS))]
    pub lock_timeout: u64,
    /// Pause after each wave (`serial` batch) of a play, show the wave's summary (and its health gate with
    /// `rollout:`), and start the next wave only after an operator answers yes on the terminal. Refused when
    /// stdin is not a terminal. Progress is shown as plain lines (bars would draw over the question).
    #[arg(long)]
    pub confirm: bool,
    /// Output options.
    #[command(flatten)]
    pub out: OutputOptions,
    /// Connection options.
    #[command(flatten)]
    pub conn: ConnectOptions,
}

/// `edgefleet inventory`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("action").required(true).args(["list", "host", "graph"])))]
pub struct InventoryArgs {
    /// Inventory and --limit.
    #[command(flatten)]
    pub inv: InventorySource,
    /// Print all hosts and groups as JSON (like `ansible-inventory --list`).
    #[arg(long)]
    pub list: bool,
    /// Print one host's variables as JSON.
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Print the group tree (like `ansible-inventory --graph`), optionally from GROUP.
    #[arg(long, value_name = "GROUP", num_args = 0..=1, default_missing_value = "all")]
    pub graph: Option<String>,
    /// With --graph, show variables too.
    #[arg(long)]
    pub vars: bool,
    /// Playbook directory whose group_vars/host_vars also apply.
    #[arg(long, value_name = "DIR")]
    pub playbook_dir: Option<PathBuf>,
    /// Identity to decrypt age-encrypted vars files.
    #[arg(long = "identity", value_name = "FILE")]
    pub identity: Vec<PathBuf>,
}

/// `edgefleet ping`.
#[derive(Debug, Args)]
pub struct PingArgs {
    /// Inventory and --limit.
    #[command(flatten)]
    pub inv: InventorySource,
    /// Identity to decrypt age-encrypted vars files.
    #[arg(long = "identity", value_name = "FILE")]
    pub identity: Vec<PathBuf>,
    /// Output options.
    #[command(flatten)]
    pub out: OutputOptions,
    /// Connection options.
    #[command(flatten)]
    pub conn: ConnectOptions,
}

/// `edgefleet lab`.
#[derive(Debug, Args)]
pub struct LabArgs {
    /// What to do with the lab.
    #[command(subcommand)]
    pub command: LabCommand,
}

/// Options for bringing a lab up.
#[derive(Debug, Args, Clone)]
pub struct LabUpOptions {
    /// Number of devices.
    #[arg(long, short = 'n', default_value_t = crate::lab::DEFAULT_DEVICES)]
    pub devices: usize,
    /// SSH server backend.
    #[arg(long, value_enum, default_value_t = LabBackend::Embedded)]
    pub backend: LabBackend,
    /// Login user.
    #[arg(long, value_enum, default_value_t = LabUser::Root)]
    pub user: LabUser,
    /// Put the devices in a private network reachable only through a bastion (`ssh -J`).
    #[arg(long)]
    pub bastion: bool,
    /// Bare devices: no IoT Edge, no container engine, an empty package database (bootstrap them offline).
    #[arg(long)]
    pub bare: bool,
    /// Devices with no route out: anything that tries the internet fails (registries, IoT Hub, DPS).
    #[arg(long)]
    pub airgapped: bool,
}

/// Lab subcommands.
#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Bring up N simulated devices and write their inventory.
    Up {
        /// Lab directory.
        #[arg(long, default_value = "lab")]
        dir: PathBuf,
        /// Options.
        #[command(flatten)]
        opts: LabUpOptions,
    },
    /// Show the lab's devices and whether they answer.
    Status {
        /// Lab directory.
        #[arg(long, default_value = "lab")]
        dir: PathBuf,
    },
    /// Stop every device and remove every process, mount and address the lab made.
    Down {
        /// Lab directory.
        #[arg(long, default_value = "lab")]
        dir: PathBuf,
    },
    /// Bring a lab up, run playbooks against it, print the verify report, and take it down.
    Run {
        /// Playbooks to run (default: the shipped playbooks/provision.yml).
        #[arg(value_name = "PLAYBOOK")]
        playbooks: Vec<PathBuf>,
        /// Lab directory.
        #[arg(long, default_value = "lab")]
        dir: PathBuf,
        /// Options.
        #[command(flatten)]
        opts: LabUpOptions,
        /// Leave the lab running afterwards.
        #[arg(long)]
        keep: bool,
        /// Extra variables for the play.
        #[arg(short = 'e', long = "extra-vars", value_name = "VARS")]
        extra_vars: Vec<String>,
        /// Output options.
        #[command(flatten)]
        out: OutputOptions,
    },
    /// Inject a fault into a device (or clear it with `none`).
    Fault {
        /// Device name.
        device: String,
        /// The fault.
        #[arg(value_enum)]
        kind: FaultKind,
        /// Lab directory.
        #[arg(long, default_value = "lab")]
        dir: PathBuf,
        /// For slow-link: added latency per round trip, in ms (default 200). For reboot: downtime in ms
        /// (default 2000). For clock-skew: how far ahead the device clock is, in ms (default 3 years).
        #[arg(long, value_name = "MS")]
        ms: Option<u64>,
        /// For unreachable-after-dns: the IP address that cuts the device off once its dockerd uses it as a
        /// DNS server or proxy.
        #[arg(long, value_name = "VALUE")]
        value: Option<String>,
    },
    /// (internal) Serve lab devices in the foreground.
    #[command(hide = true)]
    Serve {
        /// Lab directory.
        #[arg(long, default_value = "lab")]
        dir: PathBuf,
    },
}

/// `edgefleet vault`.
#[derive(Debug, Args)]
#[command(after_help = "\
Files are ASCII-armored age files: `age -d` decrypts them, and files from `age -e` work here.
Recipients: -r/-R, else the `.age-recipients` file in the file's directory or the nearest one above
(one `age1...`, `ssh-ed25519 ...` or `ssh-rsa ...` public key per line, `#` comments).
Identities: --identity FILE (repeatable), else $EDGEFLEET_AGE_IDENTITY (paths separated by `:`), else
~/.ssh/id_ed25519 and ~/.ssh/id_rsa. Protected identities (age-encrypted identity files, SSH keys with a
passphrase) take their passphrase from $EDGEFLEET_AGE_PASSPHRASE_FILE (a file holding it), then
$EDGEFLEET_AGE_PASSPHRASE, then a prompt on the terminal (asked once per run).")]
pub struct VaultArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: VaultCommand,
}

/// Options naming who can decrypt.
#[derive(Debug, Args, Clone, Default)]
pub struct RecipientOptions {
    /// Recipient (`age1...`, `ssh-ed25519 ...`, `ssh-rsa ...`), repeatable. Default: `.age-recipients` found
    /// upwards from the file.
    #[arg(short = 'r', long = "recipient", value_name = "RECIPIENT")]
    pub recipient: Vec<String>,
    /// File of recipients, one per line (repeatable).
    #[arg(short = 'R', long = "recipients-file", value_name = "FILE")]
    pub recipients_file: Vec<PathBuf>,
}

/// Options naming what can decrypt.
#[derive(Debug, Args, Clone, Default)]
pub struct IdentityOptions {
    /// Identity file (age or SSH private key), repeatable. Default: $EDGEFLEET_AGE_IDENTITY, then ~/.ssh keys.
    #[arg(long = "identity", value_name = "FILE")]
    pub identity: Vec<PathBuf>,
}

/// Vault subcommands.
#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// Encrypt files (FILE becomes FILE.age unless --output; `-` reads stdin and needs --output).
    Encrypt {
        /// Files (`-`: standard input).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Recipients.
        #[command(flatten)]
        rcpt: RecipientOptions,
        /// Write here instead (single file only).
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
        /// Keep the plaintext file (default: it is overwritten and removed).
        #[arg(long)]
        keep: bool,
    },
    /// Decrypt files (FILE.age becomes FILE, mode 0600, never overwriting; unless --output).
    Decrypt {
        /// Files (`-`: standard input).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Identities.
        #[command(flatten)]
        id: IdentityOptions,
        /// Write here instead (`-` for stdout; single file only).
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
    },
    /// Print decrypted files to stdout.
    View {
        /// Files (`-`: standard input).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Identities.
        #[command(flatten)]
        id: IdentityOptions,
    },
    /// Decrypt into memory, edit in $EDITOR (a private temp file, removed afterwards), re-encrypt.
    ///
    /// Re-encrypts to the `.age-recipients` found upwards from the file (age files do not list their
    /// recipients), or to `-r`/`-R` when given; without either it refuses before opening the editor.
    Edit {
        /// File.
        file: PathBuf,
        /// Identities.
        #[command(flatten)]
        id: IdentityOptions,
        /// Recipients to re-encrypt to (default: `.age-recipients` found upwards from the file).
        #[command(flatten)]
        rcpt: RecipientOptions,
    },
    /// Re-encrypt files to a new set of recipients.
    Rekey {
        /// Files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Identities (to decrypt).
        #[command(flatten)]
        id: IdentityOptions,
        /// New recipients.
        #[command(flatten)]
        rcpt: RecipientOptions,
    },
    /// Generate a new age identity (prints its public key on stderr).
    Keygen {
        /// Write the identity here (mode 0600, never overwritten) instead of stdout.
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
        /// Protect the identity with a passphrase (an age-encrypted identity file, like `age -p`). The passphrase
        /// is read from $EDGEFLEET_AGE_PASSPHRASE_FILE, $EDGEFLEET_AGE_PASSPHRASE, or asked twice on the terminal.
        #[arg(long)]
        passphrase: bool,
    },
}

/// `edgefleet certs`.
#[derive(Debug, Args)]
#[command(after_help = "\
Exit codes of `certs report` (for monitoring): 0 every certificate has more than --warn-days left;
10 (warning) some certificate has --warn-days or fewer left, or a device's clock is off by more than 5
minutes; 11 (critical) some certificate has --critical-days or fewer left, or has expired. A device that
could not be reached or read makes it 3 (unreachable) or 2 (failed) unless a certificate is critical;
4 and 5 are bad inventory and bad options, as for every command.")]
pub struct CertsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: CertsCommand,
}

/// Certs subcommands.
#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Sign a new Edge CA for each device from your issuing CA; writes each chain and age-encrypted key where
    /// the device's `edge_ca_cert` / `edge_ca_key` variables point (roles/edge_ca), or under --out-dir.
    ///
    /// A device whose current Edge CA file has more than --renew-before days left is skipped (unless
    /// --force), so re-running renews nothing twice. The previous files are kept as `*.prev`.
    Issue(CertsIssueArgs),
    /// Fleet-wide certificate expiry: Edge CA, device identity, trust bundle and aziot-certd's certificates,
    /// read on each device in one round trip, sorted by days left.
    Report(CertsReportArgs),
}

/// `edgefleet certs issue`.
#[derive(Debug, Args)]
pub struct CertsIssueArgs {
    /// Inventory and --limit.
    #[command(flatten)]
    pub inv: InventorySource,
    /// The issuing CA's certificate (PEM; the chain above it may follow).
    #[arg(long, value_name = "FILE", required = true)]
    pub ca_cert: PathBuf,
    /// The issuing CA's private key, age-encrypted (`edgefleet vault encrypt KEY`); decrypted in memory only.
    #[arg(long, value_name = "FILE.age", required = true)]
    pub ca_key: PathBuf,
    /// Key of the new Edge CAs.
    #[arg(long, value_name = "TYPE", default_value = "ec-p256",
          value_parser = ["ec-p256", "rsa-2048", "rsa-3072", "rsa-4096"])]
    pub key_type: String,
    /// Validity of the new Edge CAs, in days.
    #[arg(long, value_name = "DAYS", default_value_t = DEFAULT_VALIDITY_DAYS.to_string())]
    pub days: String,
    /// Renew only Edge CAs with this many days left or fewer (or none yet).
    #[arg(long, value_name = "DAYS", default_value_t = DEFAULT_RENEW_BEFORE_DAYS.to_string())]
    pub renew_before: String,
    /// Issue for every selected device, whatever its current Edge CA.
    #[arg(long)]
    pub force: bool,
    /// Write DIR/HOST/edge-ca.cert.pem and DIR/HOST/edge-ca.key.pem.age instead of the inventory's paths.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Who can decrypt the new keys (default: the `.age-recipients` found upwards from each key file).
    #[command(flatten)]
    pub rcpt: RecipientOptions,
    /// Identity to decrypt the issuing CA's key and the inventory's encrypted vars.
    #[arg(long = "identity", value_name = "FILE")]
    pub identity: Vec<PathBuf>,
}

/// `edgefleet certs report`.
#[derive(Debug, Args)]
pub struct CertsReportArgs {
    /// Inventory and --limit.
    #[command(flatten)]
    pub inv: InventorySource,
    /// Output: a table sorted by days left, one JSON document, or CSV.
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json", "csv"])]
    pub format: String,
    /// Warn about certificates with this many days left or fewer.
    #[arg(long, value_name = "DAYS", default_value_t = DEFAULT_WARN_DAYS.to_string())]
    pub warn_days: String,
    /// Critical: certificates with this many days left or fewer (and expired ones).
    #[arg(long, value_name = "DAYS", default_value_t = DEFAULT_CRITICAL_DAYS.to_string())]
    pub critical_days: String,
    /// Identity to decrypt the inventory's encrypted vars.
    #[arg(long = "identity", value_name = "FILE")]
    pub identity: Vec<PathBuf>,
    /// Connection options.
    #[command(flatten)]
    pub conn: ConnectOptions,
}

/// Offers an enum owned by another layer to clap: the values it takes on the command line, with their help.
macro_rules! choices {
    ($ty:ty { $($variant:ident => $name:literal: $help:literal),+ $(,)? }) => {
        impl ValueEnum for $ty {
            fn value_variants<'a>() -> &'a [Self] {
                &[$(<$ty>::$variant),+]
            }
            fn to_possible_value(&self) -> Option<PossibleValue> {
                match self {
                    $(<$ty>::$variant => Some(PossibleValue::new($name).help($help)),)+
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }
        }
    };
}

choices!(OutputFormat {
    Text => "text": "Human-readable",
    Json => "json": "One JSON document at the end",
    Jsonl => "jsonl": "One JSON event per line as they happen",
});
choices!(ProgressMode {
    Auto => "auto": "Bars on a terminal, plain lines otherwise",
    Bars => "bars": "Always bars",
    Plain => "plain": "Never bars",
});
choices!(ColorMode {
    Auto => "auto": "On a terminal without NO_COLOR",
    Always => "always": "Always",
    Never => "never": "Never",
});
choices!(HostKeyPolicy {
    Strict => "strict": "Refuse unknown hosts",
    AcceptNew => "accept-new": "Record unknown hosts once; refuse changed keys",
});
choices!(LabBackend {
    Embedded => "embedded": "An SSH server built into edgefleet (russh), for large N and machines without sshd",
    Openssh => "openssh": "A real OpenSSH sshd per device",
});
choices!(LabUser {
    Root => "root": "Log in as root",
    Admin => "admin": "Log in as `admin` and use sudo (become)",
});
choices!(FaultKind {
    None => "none": "Clear every fault",
    Unreachable => "unreachable": "Nothing listens",
    BlackHole => "black-hole": "Accepts TCP, never answers",
    SlowLink => "slow-link": "Added latency per round trip",
    WrongHostKey => "wrong-host-key": "Presents a different host key",
    ApplyFails => "apply-fails": "`iotedge config apply` fails",
    CheckError => "check-error": "`iotedge check` reports an error",
    DiskFull => "disk-full": "Writes under /etc fail with \"No space left on device\"",
    StoreFull => "store-full": "The bundle store /var/lib/edgefleet/blobs has room for 1 MiB (`none` keeps its files)",
    Reboot => "reboot": "The SSH server dies and comes back after a delay",
    EdgeCaExpiring => "edge-ca-expiring": "The installed Edge CA expires in 10 days (same key; `none` restores it)",
    EdgeCaExpired => "edge-ca-expired": "The installed Edge CA expired 5 days ago (same key; `none` restores it)",
    ClockSkew => "clock-skew": "The device clock is ahead (default 3 years; --ms)",
    Locked => "locked": "Another run holds the device's run lock (owner record: run lab-fault-locked)",
    EdgeCaRejected => "edge-ca-rejected": "`iotedge check` rejects any Edge CA but the one installed now (a renewal fails verification)",
    DanglingImages => "dangling-images": "Two untagged images no container uses (80 MB)",
    UnusedVolumes => "unused-volumes": "Two volumes no container mounts (4 MiB of data), one a stopped container mounts, and edgeHub's store",
    LowDisk => "low-disk": "The Docker root is a 32 MiB file system with 32 KiB free",
    OldRuntime => "old-runtime": "aziot-edge 1.4, identity service 1.4 and Moby 20.10 installed",
    ContainerListFails => "container-list-fails": "The engine answers everything but listing containers",
    DnsFails => "dns-fails": "No host name resolves on the device (its reachability probes fail at DNS)",
    PortsBlocked => "ports-blocked": "A firewall drops direct connections to ports 5671 and 8883 (AMQP, MQTT)",
    BehindProxy => "behind-proxy": "Only the lab site proxy http://proxy.edgefleet.lab:3128 gets out (CONNECT to 443 only)",
    UnreachableAfterDns => "unreachable-after-dns": "New connections are refused while the running dockerd uses the --value IP as DNS server or proxy (embedded backend)",
    ModuleUnpinned => "module-unpinned": "edgeHub runs a rolling tag (1.5); `none` has it recreated from the deployment",
    ModuleNoLogLimits => "module-no-log-limits": "A custom module (or edgeHub) logs with json-file and no limits",
    ModulePrivileged => "module-privileged": "A custom module (or edgeHub) runs privileged",
    ModuleNoMemoryLimit => "module-no-memory-limit": "A custom module runs without a memory limit",
    EdgehubNoStorageBind => "edgehub-no-storage-bind": "edgeHub's storageFolder is not bound to a host directory",
    CrashloopAfterChange => "crashloop-after-change": "edgeHub crash-loops (restart count rising every second) once the next config change is applied",
});

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
        CompleteHostsArgs::command().debug_assert();
    }
}

/// `edgefleet bundle`.
#[derive(Debug, Args)]
#[command(after_help = "\
Exit codes: 0 ok; 1 an I/O error; 4 an unusable input file (a .deb whose control file does not parse, a bad
key, base-system list or allowed-signers file); 5 bad options; 20 signature: unsigned, not signed by an
allowed signer, or the manifest changed after signing; 21 integrity: an entry's size or SHA-256 differs from
the manifest, an entry is missing or extra, or the bundle is truncated; 22 dependencies: a Depends or
Pre-Depends is satisfied neither inside the bundle nor by the base system; 23 format: not a bundle, a
manifest that does not parse, or a bundle from a newer format version.")]
pub struct BundleArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: BundleCommand,
}

/// Bundle subcommands.
#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Make a signed bundle from .deb files, `docker save` archives and config templates. Refuses a set whose
    /// dependencies are not closed (every Depends/Pre-Depends satisfied by the bundle or --base-system).
    Create(BundleCreateArgs),
    /// Check a bundle: its signature against an allowed-signers file, every entry's size and SHA-256, and the
    /// dependency closure. Reads the file once, in constant memory.
    Verify(BundleVerifyArgs),
    /// Show what a bundle holds (its manifest; reads only the head of the file, checks nothing).
    Inspect(BundleInspectArgs),
}

/// Output of `bundle verify` and `bundle inspect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum BundleOutput {
    /// Human-readable.
    #[default]
    Text,
    /// One JSON document.
    Json,
}

/// `edgefleet bundle create`.
#[derive(Debug, Args)]
pub struct BundleCreateArgs {
    /// The bundle file to write (written to FILE.partial, then renamed).
    #[arg(short = 'o', long = "output", value_name = "FILE.tar", required = true)]
    pub output: PathBuf,
    /// A .deb package to include (repeatable).
    #[arg(long = "deb", value_name = "FILE")]
    pub debs: Vec<PathBuf>,
    /// A container image archive in `docker save` format to include (repeatable).
    #[arg(long = "image-tar", value_name = "FILE")]
    pub image_tars: Vec<PathBuf>,
    /// A configuration template to include (repeatable).
    #[arg(long = "config-template", value_name = "FILE")]
    pub templates: Vec<PathBuf>,
    /// Download NAME=VERSION with `apt-get download` on this machine and include it (repeatable; needs apt
    /// sources that have it).
    #[arg(long = "apt", value_name = "NAME=VERSION")]
    pub apt: Vec<String>,
    /// Export IMAGE with `docker save` on this machine and include it (repeatable; needs a Docker engine).
    #[arg(long = "docker", value_name = "IMAGE")]
    pub docker: Vec<String>,
    /// OpenSSH private key that signs the manifest (`ssh-keygen -t ed25519`). An encrypted key is opened with
    /// the passphrase in $EDGEFLEET_BUNDLE_KEY_PASSPHRASE.
    #[arg(long, value_name = "KEY", required = true)]
    pub sign_key: PathBuf,
    /// The packages the devices already have, one `NAME [VERSION [PROVIDES]]` a line, e.g. from a reference
    /// device: dpkg-query -W -f='${Package} ${Version} ${Provides}\n'. Recorded in the signed manifest.
    #[arg(long, value_name = "FILE")]
    pub base_system: Option<PathBuf>,
}

/// `edgefleet bundle verify`.
#[derive(Debug, Args)]
pub struct BundleVerifyArgs {
    /// The bundle.
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    /// Who may sign bundles: an OpenSSH allowed-signers file (`ssh-keygen(1)`, ALLOWED SIGNERS).
    #[arg(long, value_name = "FILE", required = true)]
    pub allowed_signers: PathBuf,
    /// Check the dependency closure against this base-system list instead of the one in the manifest.
    #[arg(long, value_name = "FILE")]
    pub base_system: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = BundleOutput::Text)]
    pub output: BundleOutput,
}

/// `edgefleet bundle inspect`.
#[derive(Debug, Args)]
pub struct BundleInspectArgs {
    /// The bundle.
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = BundleOutput::Text)]
    pub output: BundleOutput,
}

/// `edgefleet lint`.
#[derive(Debug, Args)]
#[command(
    after_help = "Files are recognised by content: deployment manifests (deployment.json, layered \
deployments, deployment.template.json with comments and ${VAR} placeholders), daemon.json and config.toml. A \
directory stands for its *.json and *.toml files. Waivers: .edgefleet-lint.yml next to the files, or an inline \
`// edgefleet-lint: waive RULE -- reason` comment in template files.

Exit codes: 0 no finding at deny level (errors; warnings too with --deny warnings; waived findings never \
count); 30 findings at deny level; 4 a file cannot be read; 5 bad options (e.g. --explain of an unknown rule)."
)]
pub struct LintArgs {
    /// Files or directories to lint, together (cross-file rules compare them).
    #[arg(value_name = "PATH", required_unless_present = "explain")]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = LintFormat::Text)]
    pub format: LintFormat,
    /// Also fail (exit 30) on warnings.
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub deny: Option<LintDeny>,
    /// Print what a rule checks and why (by id, e.g. EF101, or name), then exit.
    #[arg(long, value_name = "RULE", conflicts_with = "paths")]
    pub explain: Option<String>,
}

/// Output of `edgefleet lint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LintFormat {
    /// rustc-like text with the source line and a caret.
    Text,
    /// One JSON document.
    Json,
    /// SARIF 2.1.0, for code-scanning UIs.
    Sarif,
}

/// What `--deny` makes fail besides errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LintDeny {
    /// Warnings fail the run too.
    Warnings,
}

/// `edgefleet report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ReportCommand,
}

/// `edgefleet report` subcommands.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Merge the JSON reports of one playbook run in shards (`--shard K/N`) into one fleet report: totals,
    /// verify matrix, findings, warnings and every device. Refuses reports of different playbooks, check and
    /// changing runs mixed, or a device in two reports. Exits with the merged run's exit code.
    Merge(ReportMergeArgs),
}

/// `edgefleet report merge`.
#[derive(Debug, Args)]
pub struct ReportMergeArgs {
    /// The shard reports (`--report FILE` of each run).
    #[arg(required = true, value_name = "REPORT")]
    pub reports: Vec<PathBuf>,
    /// Write the merged report here (default: stdout).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The inventory the shards ran against (with the runs' --limit, if any): a host no report covers (its
    /// controller never finished) is added to the merged report as failed, so a lost shard cannot pass.
    #[command(flatten)]
    pub inv: InventorySource,
}
