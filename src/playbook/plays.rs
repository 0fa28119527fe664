//! Playbooks and plays: a playbook file or text into plays (following `import_playbook`), one play from its
//! mapping (keywords through the play table, `hosts:` required, `roles:`, the task sections and handlers,
//! play tags pushed into tasks, handlers of roles and of `import_role`).
//!
//! It must not read task keywords or load task files itself (see `tasks.rs`) nor execute anything.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Map;

use super::ctx::{absolute, loc, LoadCtx};
use super::keywords::read_play_keywords;
use super::model::{Play, Playbook, Task};
use super::tasks::{parse_role_use, parse_task_list, push_tag};
use crate::template::Templar;
use crate::yaml::Node;

/// Load a playbook file (and everything it imports). Problems are collected in `ctx.diags`.
pub fn load_playbook(path: &Path, ctx: &mut LoadCtx<'_>) -> Option<Playbook> {
    let path = absolute(path);
    let root = ctx.read_yaml(&path)?;
    playbook_from_node(root, path, ctx)
}

/// Load a playbook from text (built-in playbooks such as `edgefleet ping`); `path` names it in messages and
/// anchors relative paths.
pub fn load_playbook_text(text: &str, path: &Path, ctx: &mut LoadCtx<'_>) -> Option<Playbook> {
    let path = absolute(path);
    match crate::yaml::parse_str(text, &path) {
        Ok(root) => playbook_from_node(root, path, ctx),
        Err(d) => {
            ctx.diags.push(d);
            None
        }
    }
}

fn playbook_from_node(root: Node, path: PathBuf, ctx: &mut LoadCtx<'_>) -> Option<Playbook> {
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let file = Arc::new(path.clone());
    let Some(items) = root.as_seq() else {
        if root.is_null() {
            ctx.err(
                &path,
                &root,
                "the playbook is empty: expected a list of plays",
            );
        } else {
            ctx.err(
                &path,
                &root,
                format!(
                    "a playbook must be a list of plays, found {}",
                    root.type_name()
                ),
            );
        }
        return None;
    };
    let mut plays = Vec::new();
    for item in items {
        if let Some(imp) = item
            .get("import_playbook")
            .or_else(|| item.get("ansible.builtin.import_playbook"))
        {
            match imp.as_str() {
                Some(p) if !Templar::is_template(p) => {
                    let target = dir.join(p);
                    if ctx.import_stack.contains(&target) {
                        ctx.err(&path, imp, format!("import_playbook cycle through {p}"));
                        continue;
                    }
                    if !target.exists() {
                        ctx.err(
                            &path,
                            imp,
                            format!("imported playbook not found: {}", target.display()),
                        );
                        continue;
                    }
                    ctx.import_stack.push(target.clone());
                    if let Some(pb) = load_playbook(&target, ctx) {
                        plays.extend(pb.plays);
                    }
                    ctx.import_stack.pop();
                }
                _ => ctx.err(&path, imp, "import_playbook needs a plain file name"),
            }
            continue;
        }
        if let Some(play) = parse_play(item, &file, &dir, ctx) {
            plays.push(play);
        }
    }
    Some(Playbook { path, plays })
}

/// One play. It is returned even when it has problems (they are in `ctx.diags`), so later plays are checked
/// too; the caller stops on any diagnostic.
fn parse_play(node: &Node, file: &Arc<PathBuf>, dir: &Path, ctx: &mut LoadCtx<'_>) -> Option<Play> {
    let Some(map) = node.as_map() else {
        ctx.err(
            file,
            node,
            format!("a play must be a mapping, found {}", node.type_name()),
        );
        return None;
    };
    let mut play = Play {
        name: String::new(),
        hosts: String::new(),
        vars: Map::new(),
        vars_files: vec![],
        roles: vec![],
        imported_roles: vec![],
        pre_tasks: vec![],
        tasks: vec![],
        post_tasks: vec![],
        handlers: vec![],
        serial: vec![],
        max_fail_percentage: None,
        rollout: None,
        any_errors_fatal: false,
        become_: None,
        become_user: None,
        gather_facts: true,
        tags: vec![],
        ignore_unreachable: false,
        dir: dir.to_path_buf(),
        loc: loc(file, node),
    };
    ctx.extra_handlers.clear();
    ctx.extra_roles.clear();
    read_play_keywords(map, &mut play, file, ctx);
    if node.get("hosts").is_none() {
        ctx.err(
            file,
            node,
            "this play has no `hosts:` (which hosts should it run on?)",
        );
    }
    if play.name.is_empty() {
        play.name = play.hosts.clone();
    }
    // Roles.
    if let Some(roles) = node.get("roles") {
        match roles.as_seq() {
            Some(items) => {
                for r in items {
                    if let Some(uses) = parse_role_use(r, file, dir, ctx) {
                        play.roles.extend(uses);
                    }
                }
            }
            None if roles.is_null() => {}
            None => ctx.err(file, roles, "roles must be a list"),
        }
    }
    play.roles = super::role::without_repeats(std::mem::take(&mut play.roles));
    let base = dir.to_path_buf();
    let sections: [(&str, &mut Vec<Task>); 4] = [
        ("pre_tasks", &mut play.pre_tasks),
        ("tasks", &mut play.tasks),
        ("post_tasks", &mut play.post_tasks),
        ("handlers", &mut play.handlers),
    ];
    for (name, target) in sections {
        if let Some(n) = node.get(name) {
            *target = parse_task_list(n, file, &base, None, ctx, name == "handlers");
        }
    }
    for t in play
        .pre_tasks
        .iter_mut()
        .chain(play.tasks.iter_mut())
        .chain(play.post_tasks.iter_mut())
    {
        for tag in &play.tags {
            push_tag(t, tag);
        }
    }
    // An empty role is legal (Ansible allows it).
    // A role used twice (with other parameters) brings its handlers once.
    for r in &play.roles {
        for h in &r.role.handlers {
            if !play.handlers.iter().any(|x| x.loc == h.loc) {
                play.handlers.push(h.clone());
            }
        }
    }
    play.handlers.append(&mut ctx.extra_handlers);
    play.imported_roles.append(&mut ctx.extra_roles);
    Some(play)
}

/// Names of all handlers and their `listen` topics in a play (for notify checks).
pub fn handler_names(play: &Play) -> HashSet<String> {
    let mut s = HashSet::new();
    for h in &play.handlers {
        if let Some(n) = &h.name {
            s.insert(n.clone());
        }
        for l in &h.listen {
            s.insert(l.clone());
        }
    }
    s
}
