//! What a deployment manifest says, read from the located JSON: where `$edgeAgent`'s desired properties are, its
//! runtime settings, every module (system and custom) with its env and its createOptions (the chunks
//! `createOptions01..` joined back as edgeAgent joins them, then parsed), and `$edgeHub`'s desired properties.
//!
//! Accepts the shapes operators lint: `{"modulesContent": ..}` (az iot edge set-modules), `{"content":
//! {"modulesContent": ..}}` (an IoT Hub deployment), the bare modulesContent object, and layered deployments
//! whose `$edgeAgent` holds partial paths like `properties.desired.modules.x`; in template files a createOptions
//! written as an object (as the IoT Edge dev tools expect it there) is read as that object. It must not judge anything: the
//! rule files do. Pure: no I/O.

use serde_json::Value;

use super::source::{is_placeholder, Json, Node, Pos};

/// One module of a deployment.
pub(super) struct Module<'a> {
    /// `edgeAgent`, `edgeHub` or the custom module's name.
    pub name: String,
    /// Where its key is.
    pub pos: Pos,
    /// Its definition (`settings`, `env`, ...).
    pub node: &'a Node,
    /// A runtime module (edgeAgent/edgeHub)?
    pub system: bool,
    /// Its createOptions: the joined text and where it starts, when given as strings.
    pub create_text: Option<(String, Pos)>,
    /// The parsed createOptions (None when absent, not JSON, or a template placeholder).
    pub create: Option<Value>,
}

/// A deployment manifest, as far as the rules need it.
pub(super) struct Deployment<'a> {
    /// A layered deployment (partial `properties.desired.*` paths): absent things are not findings.
    pub layered: bool,
    /// Where `$edgeAgent` is (or the top-level object, when it is missing).
    pub agent_pos: Pos,
    /// `$edgeAgent.properties.desired` (complete deployments).
    pub agent_desired: Option<&'a Node>,
    /// `runtime` (settings and registry credentials).
    pub runtime: Option<&'a Node>,
    /// Every module, runtime modules first.
    pub modules: Vec<Module<'a>>,
    /// Was `$edgeAgent` given at all?
    pub has_agent: bool,
    /// `$edgeHub.properties.desired`, or a layered deployment's `$edgeHub` object.
    pub hub: Option<&'a Node>,
    /// Where `$edgeHub` is (or the top-level object).
    pub hub_pos: Pos,
}

impl Module<'_> {
    /// `env.<name>.value`.
    pub fn env(&self, name: &str) -> Option<&Node> {
        self.node.path(&["env", name, "value"])
    }

    /// `settings.image`.
    pub fn image(&self) -> Option<&Node> {
        self.node.path(&["settings", "image"])
    }

    /// A value in the parsed createOptions, by path.
    pub fn create_at(&self, keys: &[&str]) -> Option<&Value> {
        keys.iter()
            .try_fold(self.create.as_ref()?, |v, k| v.get(*k))
    }

    /// Where to point for a createOptions finding: the createOptions string, else the module's key.
    pub fn create_pos(&self) -> Pos {
        self.create_text.as_ref().map(|c| c.1).unwrap_or(self.pos)
    }
}

/// Is `root` a deployment manifest? Returns its modulesContent when so.
pub(super) fn modules_content(root: &Node) -> Option<&Node> {
    if let Some(mc) = root.get("modulesContent") {
        return Some(mc);
    }
    if let Some(mc) = root.path(&["content", "modulesContent"]) {
        return Some(mc);
    }
    if root.get("$edgeAgent").is_some() || root.get("$edgeHub").is_some() {
        return Some(root);
    }
    None
}

/// Read a deployment from its modulesContent.
pub(super) fn read(mc: &Node, template: bool) -> Deployment<'_> {
    let agent = mc.member("$edgeAgent");
    let hub = mc.member("$edgeHub");
    let mut d = Deployment {
        layered: false,
        agent_pos: agent.map(|m| m.key_pos).unwrap_or(mc.pos),
        agent_desired: None,
        runtime: None,
        modules: Vec::new(),
        has_agent: agent.is_some(),
        hub: None,
        hub_pos: hub.map(|m| m.key_pos).unwrap_or(mc.pos),
    };
    if let Some(a) = agent {
        if let Some(desired) = a.value.get("properties.desired") {
            d.agent_desired = Some(desired);
            d.runtime = desired.get("runtime");
            for (group, system) in [("systemModules", true), ("modules", false)] {
                for m in desired.get(group).map(Node::members).unwrap_or(&[]) {
                    d.modules
                        .push(module(&m.key, m.key_pos, &m.value, system, template));
                }
            }
        } else {
            // Layered: `properties.desired.modules.<name>` (and systemModules/runtime) as flat keys.
            for m in a.value.members() {
                let Some(rest) = m.key.strip_prefix("properties.desired.") else {
                    continue;
                };
                d.layered = true;
                let parts: Vec<&str> = rest.splitn(2, '.').collect();
                match parts.as_slice() {
                    ["modules", name] if !name.contains('.') => d
                        .modules
                        .push(module(name, m.key_pos, &m.value, false, template)),
                    ["systemModules", name] if !name.contains('.') => d
                        .modules
                        .push(module(name, m.key_pos, &m.value, true, template)),
                    ["runtime"] => d.runtime = Some(&m.value),
                    _ => {}
                }
            }
        }
    }
    if let Some(h) = hub {
        d.hub = h.value.get("properties.desired").or_else(|| {
            h.value
                .members()
                .iter()
                .any(|m| m.key.starts_with("properties.desired."))
                .then_some(&h.value)
        });
    }
    d.modules.sort_by_key(|m| !m.system);
    d
}

/// A module; in template files createOptions may be written as an object (the tools stringify and split it).
fn module<'a>(name: &str, pos: Pos, node: &'a Node, system: bool, template: bool) -> Module<'a> {
    let settings = node.get("settings");
    let mut create_text = None;
    if let Some(s) = settings {
        if let Some(first) = s.get("createOptions") {
            if template && first.is_obj() {
                create_text = Some((first.to_value().to_string(), first.pos));
            } else if let Json::Str(t) = &first.val {
                let mut text = t.clone();
                for i in 1..100 {
                    match s
                        .get(&format!("createOptions{i:02}"))
                        .and_then(Node::as_str)
                    {
                        Some(more) => text.push_str(more),
                        None => break,
                    }
                }
                create_text = Some((text, first.pos));
            }
        }
    }
    let create = create_text
        .as_ref()
        .filter(|(t, _)| !is_placeholder(t))
        .and_then(|(t, _)| serde_json::from_str::<Value>(t).ok())
        .filter(Value::is_object);
    Module {
        name: name.to_string(),
        pos,
        node,
        system,
        create_text,
        create,
    }
}
