//! The rule table: one row per lint rule (stable id, short name, default severity, the production-checklist item
//! it comes from, and the explanation `edgefleet lint --explain` prints). The README's rule list and the SARIF
//! `rules` array are made from this table; a rule that is not here cannot be reported.
//!
//! Ids are `EF` + three digits, grouped by hundreds (0xx the files themselves and waivers, 1xx runtime images,
//! 2xx upstream protocol, 3xx edgeHub, 4xx storage, 5xx per-module limits and privileges, 6xx sizes, 7xx update
//! mode, 8xx credentials and secrets, 9xx config.toml and daemon.json). An id is never reused for another
//! meaning. It must not hold checks. Pure: no I/O.

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Advice that depends on the device (e.g. small devices).
    Note,
    /// Breaks the production checklist.
    Warning,
    /// IoT Edge would refuse it, or it does not do what it says.
    Error,
}

impl Severity {
    /// The lowercase name (`error`, `warning`, `note`), as text output and SARIF `level` use it.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Stable id, e.g. `EF101`.
    pub id: &'static str,
    /// Short kebab-case name, e.g. `runtime-image-unpinned`.
    pub name: &'static str,
    /// Severity of its findings.
    pub severity: Severity,
    /// The production-checklist item (or file-format requirement) it comes from.
    pub checklist: &'static str,
    /// What it checks, why, and what to do.
    pub explain: &'static str,
}

const FORMAT: &str = "Deployment manifests are valid JSON";
const PIN: &str = "Use tags to manage versions / Pin runtime and module versions";
const DEBUG: &str = "Do not use debug images or debugger ports in production";
const PROTO: &str = "Set UpstreamProtocol consistently (configure upstream protocol)";
const HUB: &str = "Tune edgeHub for the device (performance, protocol heads, time-to-live)";
const STORE: &str = "Set up host storage for system modules";
const LIMITS: &str = "Limit the resources and log size of each module";
const PRIV: &str = "Run modules with least privilege";
const SIZE: &str = "Keep module twins and createOptions within IoT Edge limits";
const UPDATE: &str = "Manage module update order (ModuleUpdateMode)";
const CREDS: &str = "Use least-privilege registry credentials and keep secrets out of manifests";
const CONFIG: &str = "config.toml is valid for IoT Edge 1.5";
const LOGS: &str = "Set up logs and diagnostics (container engine log rotation)";
const WAIVE: &str = "Waivers are deliberate and documented";

/// Every rule, in id order.
pub const RULES: &[Rule] = &[
    Rule { id: "EF001", name: "not-parseable", severity: Severity::Error, checklist: FORMAT,
        explain: "The file is not valid JSON (or, for config.toml, not TOML 1.0 as IoT Edge 1.5 parses it). IoT Hub, `az iot edge set-modules` and the device refuse it. Fix the syntax at the position shown." },
    Rule { id: "EF002", name: "duplicate-key", severity: Severity::Error, checklist: FORMAT,
        explain: "A key appears twice in one JSON object. JSON parsers keep only one of them (usually the last) without a word, so half of what you wrote is silently dropped. Merge the two entries." },
    Rule { id: "EF003", name: "byte-order-mark", severity: Severity::Warning, checklist: FORMAT,
        explain: "The file starts with a UTF-8 byte-order mark. Strict JSON readers (Python's json, used by the az CLI) refuse it. Save the file as UTF-8 without BOM." },
    Rule { id: "EF004", name: "comment-in-json", severity: Severity::Error, checklist: FORMAT,
        explain: "A `//` or `/* */` comment in a deployment manifest. Comments are allowed only in `*.template.json` files, which the IoT Edge tools turn into a deployment; a deployment itself must be plain JSON. Remove the comment or rename the file to `deployment.template.json`." },
    Rule { id: "EF005", name: "unknown-file", severity: Severity::Error, checklist: FORMAT,
        explain: "edgefleet lint could not tell what the file is. It recognises deployment manifests (an object with `modulesContent`, `content.modulesContent` or `$edgeAgent`), layered deployments, daemon.json (Docker daemon keys) and config.toml (TOML). Pass only those." },
    Rule { id: "EF010", name: "no-edge-agent", severity: Severity::Error, checklist: FORMAT,
        explain: "A deployment manifest without `modulesContent.$edgeAgent.properties.desired` (or, for a layered deployment, `properties.desired.*` paths under `$edgeAgent`). Without it IoT Edge has nothing to deploy. Add the `$edgeAgent` section." },
    Rule { id: "EF011", name: "no-edge-hub", severity: Severity::Error, checklist: FORMAT,
        explain: "A complete (non-layered) deployment without `$edgeHub.properties.desired` or without `systemModules.edgeAgent`/`edgeHub`. IoT Hub refuses a base deployment that lacks them. Add them." },
    Rule { id: "EF020", name: "waiver-without-reason", severity: Severity::Error, checklist: WAIVE,
        explain: "A waiver must say why the rule does not apply (`reason:` in .edgefleet-lint.yml, or text after `--` in an inline `edgefleet-lint: waive` comment). Add the reason; it is printed with every finding it waives." },
    Rule { id: "EF021", name: "waiver-unused", severity: Severity::Warning, checklist: WAIVE,
        explain: "A waiver matched no finding: the problem was fixed, or the waiver names the wrong rule, module or file. Remove or correct it so waivers stay honest." },
    Rule { id: "EF022", name: "waiver-invalid", severity: Severity::Error, checklist: WAIVE,
        explain: "A waiver file or inline waiver that cannot be read: not YAML, an unknown key, or a rule id that does not exist. Fix it as the message says." },
    Rule { id: "EF101", name: "runtime-image-unpinned", severity: Severity::Warning, checklist: PIN,
        explain: "An image uses a rolling tag (`1.5`, `latest`, no tag) instead of a full version (`1.5.21`). Devices that pull at different times then run different code, and a new upstream release lands without testing. Pin a full version (or a digest) for edgeAgent and edgeHub in every deployment and for `[agent.config] image` in config.toml." },
    Rule { id: "EF102", name: "image-invalid", severity: Severity::Error, checklist: PIN,
        explain: "A module's `settings.image` is missing, empty, or not a Docker image reference (spaces, upper-case repository, empty tag). The module can never start. Give a valid `registry/repository:tag`." },
    Rule { id: "EF103", name: "debug-image", severity: Severity::Warning, checklist: DEBUG,
        explain: "An image tag ends in `.debug` or `-debug`: a debug build, larger and slower, meant for development. Use the release image in production." },
    Rule { id: "EF104", name: "debugger-port-published", severity: Severity::Warning, checklist: DEBUG,
        explain: "`createOptions.HostConfig.PortBindings` or `ExposedPorts` publishes a port that debuggers use (5678 debugpy, 9229/9230 and 5858 Node inspector, 4020-4024 vsdbg, 2345 delve, 5005 JDWP). Remove the binding for production." },
    Rule { id: "EF201", name: "upstream-protocol-missing", severity: Severity::Warning, checklist: PROTO,
        explain: "edgeAgent or edgeHub has no `env.UpstreamProtocol`. Each then falls back to its own default and probing, which is slow behind firewalls and differs between the two. Set `UpstreamProtocol` (Amqp, AmqpWs, Mqtt or MqttWs) on both, the same value as config.toml's `[agent.env]`." },
    Rule { id: "EF202", name: "upstream-protocol-invalid", severity: Severity::Error, checklist: PROTO,
        explain: "`UpstreamProtocol` is not one of Amqp, AmqpWs, Mqtt, MqttWs (case-sensitive). The runtime module fails to connect. Use one of the four." },
    Rule { id: "EF203", name: "upstream-protocol-mismatch", severity: Severity::Error, checklist: PROTO,
        explain: "edgeAgent and edgeHub (or the manifest and config.toml `[agent.env]`, when linted together) set different `UpstreamProtocol` values. edgeAgent starts with config.toml's value and switches to the deployment's, so a mismatch means the device connects one way before its first deployment and another after. Use one value everywhere." },
    Rule { id: "EF301", name: "optimize-for-performance", severity: Severity::Note, checklist: HUB,
        explain: "edgeHub's `OptimizeForPerformance` is not set to \"false\". On small devices (under about 1 GB of RAM, 32-bit ARM) edgeHub's default performance mode takes more memory than the device can give. Set `env.OptimizeForPerformance.value` to \"false\" on constrained devices; ignore this note on large ones." },
    Rule { id: "EF302", name: "protocol-heads-enabled", severity: Severity::Note, checklist: HUB,
        explain: "None of edgeHub's protocol heads is switched off (`amqpSettings__enabled`, `mqttSettings__enabled`, `httpSettings__enabled`). Every head listens on a port and takes memory. Set the ones your downstream devices and modules do not use to \"false\"." },
    Rule { id: "EF303", name: "time-to-live-implicit", severity: Severity::Note, checklist: HUB,
        explain: "`$edgeHub.properties.desired.storeAndForwardConfiguration.timeToLiveSecs` is not set, so messages are kept offline for the default 7200 seconds (2 hours). Decide how long your device must buffer during an outage and set it." },
    Rule { id: "EF401", name: "storage-folder-missing", severity: Severity::Warning, checklist: STORE,
        explain: "edgeAgent or edgeHub has no `env.storageFolder`. Their state (edgeHub's offline message store) then lives in the container's writable layer and is lost when the container is recreated. Set `storageFolder` (e.g. /tmp/edgeHub) and bind it to a host directory." },
    Rule { id: "EF402", name: "storage-not-bound", severity: Severity::Warning, checklist: STORE,
        explain: "edgeAgent or edgeHub sets `storageFolder` but `createOptions.HostConfig.Binds` mounts no host directory there (iotedge check: edge-agent/edge-hub-storage-mounted-from-host). Add a bind `\"/srv/edgeHub:/tmp/edgeHub\"` whose target is the storage folder." },
    Rule { id: "EF501", name: "memory-limit-missing", severity: Severity::Warning, checklist: LIMITS,
        explain: "A custom module has no `createOptions.HostConfig.Memory` limit. One leaking module can then take the memory edgeHub and edgeAgent need. Set a limit in bytes." },
    Rule { id: "EF502", name: "cpu-limit-missing", severity: Severity::Note, checklist: LIMITS,
        explain: "A custom module has no CPU limit (`HostConfig.NanoCpus`, `CpuQuota` or `CpuShares`). A busy module can starve the runtime. Set one where the device is shared." },
    Rule { id: "EF503", name: "log-limits-missing", severity: Severity::Warning, checklist: LOGS,
        explain: "A module has no `createOptions.HostConfig.LogConfig` with `max-size` and `max-file` (or the journald driver), and no daemon.json that sets log limits was linted with it. Container logs then grow until the disk is full. Set a LogConfig per module, or lint (and push) a daemon.json with `log-opts` max-size/max-file." },
    Rule { id: "EF504", name: "privileged", severity: Severity::Warning, checklist: PRIV,
        explain: "`HostConfig.Privileged` is true: the module has full access to the host, as root. Grant only the devices and capabilities it needs, or waive this with the reason." },
    Rule { id: "EF505", name: "host-namespace", severity: Severity::Warning, checklist: PRIV,
        explain: "The module shares a host namespace (`NetworkMode`, `PidMode`, `IpcMode` or `UsernsMode` = \"host\"). It can see and reach the host's network or processes, and it leaves the azure-iot-edge network. Use the default network unless the module really needs it, and say why in a waiver." },
    Rule { id: "EF506", name: "capabilities-added", severity: Severity::Warning, checklist: PRIV,
        explain: "`HostConfig.CapAdd` grants Linux capabilities (or `Devices` maps host devices). Each one widens what a compromised module can do. Keep the list minimal and waive it with the reason." },
    Rule { id: "EF601", name: "create-options-invalid", severity: Severity::Error, checklist: SIZE,
        explain: "`settings.createOptions` must be a string holding a JSON object (a stringified Docker create request); this one is not a string, not JSON, or not an object. edgeAgent cannot create the container. Fix it (`JSON.stringify` the object)." },
    Rule { id: "EF602", name: "create-options-too-long", severity: Severity::Error, checklist: SIZE,
        explain: "A createOptions value longer than 512 characters must be split into `createOptions01`, `createOptions02`, ... (edgeAgent's TwinMaxValueSize), and there can be at most 100 parts (51,200 characters in all). Split it (the IoT Edge dev tools do this from a template) or shorten it." },
    Rule { id: "EF603", name: "twin-too-large", severity: Severity::Error, checklist: SIZE,
        explain: "The `$edgeAgent` desired properties are larger than the 32 KB module-twin limit (IoT Hub refuses the deployment), or within 10% of it (warning: the next module will not fit). Move module settings to module twins, shorten createOptions, or drop unused modules." },
    Rule { id: "EF701", name: "module-update-mode", severity: Severity::Warning, checklist: UPDATE,
        explain: "Modules declare a `startupOrder`, but edgeAgent's `ModuleUpdateMode` is not `WaitForAllPulls`: edgeAgent then starts modules as their images arrive, out of the order you declared. Set edgeAgent `env.ModuleUpdateMode.value` to `WaitForAllPulls` (or an invalid value was given: use `WaitForAllPulls` or `NonBlocking`)." },
    Rule { id: "EF801", name: "registry-admin-user", severity: Severity::Warning, checklist: CREDS,
        explain: "A registry credential looks like an admin account (user name `admin`, or an Azure Container Registry's admin user, whose name is the registry's). Admin credentials can push and delete images. Use a token or service principal with pull rights only." },
    Rule { id: "EF802", name: "secret-in-clear", severity: Severity::Warning, checklist: CREDS,
        explain: "A password, key, token or connection string is written in clear in the manifest (registry credentials, module env, or createOptions Env). Anyone who can read deployments can read it. Use `${VAR}` placeholders in a template filled from a secret store at release time, or give modules their secrets another way." },
    Rule { id: "EF901", name: "config-refused", severity: Severity::Error, checklist: CONFIG,
        explain: "config.toml has a problem `iotedge config apply` refuses (or a setting the device would silently drop, as edgefleet's iotedge_config module reports it). The message is the same one the module gives. Fix the key named." },
    Rule { id: "EF902", name: "config-unknown-key", severity: Severity::Error, checklist: CONFIG,
        explain: "config.toml has a key IoT Edge 1.5 does not know. The device ignores unknown keys silently, so a typo (`hostnme`) quietly leaves the setting at its default. Fix the spelling (a suggestion is shown) or remove the key." },
    Rule { id: "EF903", name: "config-checklist", severity: Severity::Warning, checklist: CONFIG,
        explain: "config.toml breaks a production-checklist item the device accepts: a quickstart Edge CA, certificates the certificates service cannot read, elevated docker permissions. The message says what to do." },
    Rule { id: "EF951", name: "daemon-log-limits", severity: Severity::Warning, checklist: LOGS,
        explain: "daemon.json does not rotate container logs: a `log-driver` other than journald without both `log-opts.max-size` and `max-file` as strings (iotedge check: container-engine-logrotate; a number for max-file is an error there). Set `\"log-driver\": \"local\"` with `\"log-opts\": {\"max-size\": \"10m\", \"max-file\": \"3\"}`." },
];

/// The rule with this id (or kebab-case name).
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES
        .iter()
        .find(|r| r.id.eq_ignore_ascii_case(id) || r.name == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_are_unique_and_sorted() {
        for w in RULES.windows(2) {
            assert!(w[0].id < w[1].id, "{} before {}", w[0].id, w[1].id);
        }
        let mut names: Vec<&str> = RULES.iter().map(|r| r.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), RULES.len());
        assert_eq!(
            rule("ef101").map(|r| r.name),
            Some("runtime-image-unpinned")
        );
        assert_eq!(rule("duplicate-key").map(|r| r.id), Some("EF002"));
        assert!(rule("EF999").is_none());
    }
}

#[cfg(test)]
mod ids_in_use {
    use super::rule;

    /// Every rule id the rule files report is in the table (a typo would otherwise report an unknown rule).
    #[test]
    fn every_reported_id_is_in_the_table() {
        let sources = [
            include_str!("config.rs"),
            include_str!("edgehub.rs"),
            include_str!("hostconfig.rs"),
            include_str!("lint.rs"),
            include_str!("modules.rs"),
            include_str!("runtime.rs"),
            include_str!("secrets.rs"),
            include_str!("size.rs"),
            include_str!("storage.rs"),
            include_str!("update.rs"),
            include_str!("waivers.rs"),
        ];
        let re = regex::Regex::new(r#""(EF\d{3})""#).unwrap();
        let mut n = 0;
        for s in sources {
            for c in re.captures_iter(s) {
                assert!(
                    rule(&c[1]).is_some(),
                    "{} is reported but not in RULES",
                    &c[1]
                );
                n += 1;
            }
        }
        assert!(n > 40, "{n}");
    }
}
