//! The keyword tables: one row per play keyword and per task keyword, saying how its value is read and
//! validated and which field of the `Play` or `Task` it fills. Adding a keyword is adding a row.
//!
//! Owns the tables, applying a row to a play or task (every per-keyword message), the "unknown play keyword
//! (did you mean ...)" check, and which names count as task keywords (versus the module key). It must not
//! decide what a task does (module, block, include, role: see `action.rs` and `tasks.rs`) nor load files.

use serde_json::Value;

use super::ctx::LoadCtx;
use super::model::{Cond, LoopControl, Play, Task};
use super::values::{
    bool_of, cond_of, is_identifier, parse_rollout, parse_serial, scalar_text, str_list, vars_of,
};
use crate::template::Templar;
use crate::vars::Vars;
use crate::yaml::{Node, NodeValue};

/// One keyword: its name, how its value is read and where it goes.
pub(super) struct Keyword<T: 'static> {
    /// The keyword as written.
    pub name: &'static str,
    /// How its value is read, validated and stored.
    pub read: Read<T>,
    /// Offered in "did you mean" (`with_*` loops and refused keywords are not).
    pub suggest: bool,
}

/// How a keyword's value is read, and the setter that stores it in `T` (`Task` or `Play`).
pub(super) enum Read<T: 'static> {
    /// Read by the loader itself, not here (`block`, `args`, `roles`, `tasks`, ...).
    Elsewhere,
    /// Accepted for compatibility and ignored.
    Ignored,
    /// Refused with this message.
    Unsupported(&'static str),
    /// A boolean (Ansible's spellings).
    Bool(fn(&mut T, bool)),
    /// A scalar as text, checked by the first function, stored by the second.
    Text(fn(&str) -> Result<(), String>, fn(&mut T, String)),
    /// A scalar as text that may be a template: its template syntax is checked.
    Template(fn(&mut T, String)),
    /// A string or a list of strings (a string split on commas when `split_commas`).
    List {
        split_commas: bool,
        set: fn(&mut T, Vec<String>),
    },
    /// Conditions: a boolean, or expressions (a string or a list) whose syntax is checked.
    Exprs(fn(&mut T, Vec<String>)),
    /// A fixed boolean or expressions, unchecked (`changed_when: false`).
    Condition(fn(&mut T, Cond)),
    /// A YAML integer of at least `min`; `err` otherwise.
    Int {
        min: i64,
        err: &'static str,
        set: fn(&mut T, i64),
    },
    /// A number from `min` to `max`; `err` otherwise.
    Number {
        min: f64,
        max: f64,
        err: &'static str,
        set: fn(&mut T, f64),
    },
    /// A mapping of variables.
    VarMap(fn(&mut T, Vars)),
    /// Any value, kept as JSON.
    Json(fn(&mut T, Value)),
    /// A loop over items of this shape; the setter gets the items and whether to flatten them one level, and
    /// refuses a second loop.
    Loop(LoopShape, fn(&mut T, Value, bool) -> Result<(), String>),
    /// A value with a reader of its own.
    Custom(fn(&mut T, &Node) -> Result<(), String>),
    /// Applied after every other keyword, without messages (so `remote_user` wins over `vars:`).
    Late(fn(&mut T, &Node)),
}

/// The items a loop keyword gives.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum LoopShape {
    /// The value as written (a list, or a template producing one).
    AsIs,
    /// The value, flattened one level when run (`with_items`).
    Flattened,
    /// A mapping's `{key, value}` pairs (`with_dict`).
    DictItems,
}

const fn kw<T>(name: &'static str, read: Read<T>) -> Keyword<T> {
    Keyword {
        name,
        read,
        suggest: true,
    }
}

const fn hidden<T>(name: &'static str, read: Read<T>) -> Keyword<T> {
    Keyword {
        name,
        read,
        suggest: false,
    }
}

use Read::*;

/// Task keywords (besides the module key), in the order "did you mean" considers them.
#[rustfmt::skip]
pub(super) static TASK_KEYWORDS: &[Keyword<Task>] = &[
    kw("name",               Template(|t, s| t.name = Some(s))),
    kw("when",               Exprs(|t, l| t.when = l)),
    kw("loop",               Loop(LoopShape::AsIs, set_loop)),
    hidden("with_items",     Loop(LoopShape::Flattened, set_loop)),
    hidden("with_list",      Loop(LoopShape::AsIs, set_loop)),
    hidden("with_dict",      Loop(LoopShape::DictItems, set_loop)),
    hidden("with_indexed_items", Loop(LoopShape::AsIs, set_loop)),
    kw("loop_control",       Custom(loop_control)),
    kw("register",           Text(var_name, |t, s| t.register = Some(s))),
    kw("notify",             List { split_commas: false, set: |t, l| t.notify = l }),
    kw("listen",             List { split_commas: false, set: |t, l| t.listen = l }),
    kw("changed_when",       Condition(|t, c| t.changed_when = Some(c))),
    kw("failed_when",        Condition(|t, c| t.failed_when = Some(c))),
    kw("ignore_errors",      Bool(|t, b| t.ignore_errors = b)),
    kw("ignore_unreachable", Bool(|t, b| t.ignore_unreachable = b)),
    kw("tags",               List { split_commas: true, set: |t, l| t.tags = l }),
    kw("become",             Bool(|t, b| t.become_ = Some(b))),
    kw("become_user",        Text(any, |t, s| t.become_user = Some(s))),
    kw("become_method",      Text(sudo_only, |_, _| {})),
    kw("become_flags",       Ignored),
    kw("no_log",             Bool(|t, b| t.no_log = b)),
    kw("retries",            Int { min: 0, err: "retries must be a non-negative integer", set: |t, i| t.retries = Some(i as u32) }),
    kw("until",              List { split_commas: false, set: |t, l| t.until = Some(l) }),
    kw("delay",              Number { min: 0.0, max: f64::INFINITY, err: "delay must be a number of seconds", set: |t, d| t.delay = Some(d) }),
    kw("timeout",            Int { min: 1, err: "timeout must be a positive number of seconds", set: |t, i| t.timeout = Some(i as u64) }),
    kw("run_once",           Bool(|t, b| t.run_once = b)),
    kw("delegate_to",        Text(localhost_only, |t, s| t.delegate_to = Some(s))),
    kw("vars",               VarMap(|t, m| t.vars = m)),
    kw("args",               Elsewhere),
    kw("check_mode",         Bool(|t, b| t.check_mode = Some(b))),
    kw("diff",               Bool(|t, b| t.diff = Some(b))),
    kw("environment",        Json(|t, v| t.environment = Some(v))),
    kw("any_errors_fatal",   Bool(|t, b| t.any_errors_fatal = b)),
    kw("block",              Elsewhere),
    kw("rescue",             Elsewhere),
    kw("always",             Elsewhere),
    kw("collections",        Ignored),
    kw("debugger",           Ignored),
    kw("throttle",           Ignored),
    kw("delegate_facts",     Ignored),
    kw("local_action",       Unsupported("local_action is not supported: use `delegate_to: localhost`")),
];

/// Play keywords, in the order "did you mean" considers them.
#[rustfmt::skip]
pub(super) static PLAY_KEYWORDS: &[Keyword<Play>] = &[
    kw("name",                Text(any, |p, s| p.name = s)),
    kw("hosts",               List { split_commas: false, set: |p, l| p.hosts = l.join(",") }),
    kw("vars",                VarMap(|p, m| p.vars = m)),
    kw("vars_files",          List { split_commas: false, set: |p, l| p.vars_files = l }),
    kw("roles",               Elsewhere),
    kw("pre_tasks",           Elsewhere),
    kw("tasks",               Elsewhere),
    kw("post_tasks",          Elsewhere),
    kw("handlers",            Elsewhere),
    kw("serial",              Custom(|p, v| parse_serial(v).map(|s| p.serial = s))),
    kw("rollout",             Custom(|p, v| parse_rollout(v).map(|r| p.rollout = r))),
    kw("max_fail_percentage", Number { min: 0.0, max: 100.0, err: "max_fail_percentage must be a number from 0 to 100", set: |p, x| p.max_fail_percentage = Some(x) }),
    kw("any_errors_fatal",    Bool(|p, b| p.any_errors_fatal = b)),
    kw("become",              Bool(|p, b| p.become_ = Some(b))),
    kw("become_user",         Text(any, |p, s| p.become_user = Some(s))),
    kw("become_method",       Custom(play_become_method)),
    kw("gather_facts",        Bool(|p, b| p.gather_facts = b)),
    kw("tags",                List { split_commas: true, set: |p, l| p.tags = l }),
    kw("ignore_unreachable",  Bool(|p, b| p.ignore_unreachable = b)),
    kw("ignore_errors",       Ignored),
    kw("strategy",            Text(known_strategy, |_, _| {})),
    kw("collections",         Ignored),
    kw("connection",          Late(|p, v| if let Some(c) = v.as_str() { p.vars.insert("ansible_connection".into(), Value::String(c.into())); })),
    kw("remote_user",         Late(|p, v| { p.vars.insert("ansible_user".into(), Value::String(scalar_text(v))); })),
    kw("order",               Ignored),
    kw("force_handlers",      Ignored),
    kw("check_mode",          Ignored),
    kw("diff",                Ignored),
    kw("no_log",              Ignored),
    kw("environment",         Ignored),
    kw("module_defaults",     Ignored),
    kw("timeout",             Ignored),
    hidden("vars_prompt",     Unsupported("vars_prompt is not supported: pass values with -e or vars files")),
];

/// The row for `name`.
pub(super) fn find<T>(table: &'static [Keyword<T>], name: &str) -> Option<&'static Keyword<T>> {
    table.iter().find(|k| k.name == name)
}

/// The names "did you mean" may offer, in table order.
pub(super) fn suggestions<T>(table: &'static [Keyword<T>]) -> impl Iterator<Item = &'static str> {
    table.iter().filter(|k| k.suggest).map(|k| k.name)
}

/// Is `key` a task keyword (rather than the task's module or action)? Every `with_*` is (supported or not).
pub(super) fn is_task_keyword(key: &str) -> bool {
    find(TASK_KEYWORDS, key).is_some() || key.starts_with("with_")
}

/// Read every task keyword of `map` into `task`, reporting each problem at its key. The module key and the
/// keywords read elsewhere are left alone.
pub(super) fn read_task_keywords(
    map: &[(Node, Node)],
    task: &mut Task,
    file: &std::path::Path,
    ctx: &mut LoadCtx<'_>,
) {
    for (k, v) in map {
        let key = k.as_str().unwrap_or_default();
        let r = match find(TASK_KEYWORDS, key) {
            Some(row) => apply(row, task, v, ctx.templar),
            None if key.starts_with("with_") => {
                let module = map
                    .iter()
                    .filter_map(|(k, _)| k.as_str())
                    .find(|k| !is_task_keyword(k) && !matches!(*k, "args" | "vars"));
                super::loops::with_lookup(&key[5..], &v.to_json(), module)
                    .and_then(|l| set_loop(task, l, false))
            }
            None => Ok(()),
        };
        if let Err(m) = r {
            ctx.err(file, k, m);
        }
    }
}

/// Read every play keyword of `map` into `play`, reporting each problem (and each unknown keyword, with
/// "did you mean") at its key; then apply the late keywords.
pub(super) fn read_play_keywords(
    map: &[(Node, Node)],
    play: &mut Play,
    file: &std::path::Path,
    ctx: &mut LoadCtx<'_>,
) {
    for (k, v) in map {
        let key = k.as_str().unwrap_or_default();
        let r = match find(PLAY_KEYWORDS, key) {
            Some(row) => apply(row, play, v, ctx.templar),
            None => Err(
                match crate::diag::did_you_mean(key, suggestions(PLAY_KEYWORDS)) {
                    Some(s) => format!("unknown play keyword `{key}` (did you mean `{s}`?)"),
                    None => format!("unknown play keyword `{key}`"),
                },
            ),
        };
        if let Err(m) = r {
            ctx.err(file, k, m);
        }
    }
    for (k, v) in map {
        if let Some(Keyword {
            read: Late(set), ..
        }) = find(PLAY_KEYWORDS, k.as_str().unwrap_or_default())
        {
            set(play, v);
        }
    }
}

/// Read `v` as `row` says and store it in `target`; the message says what is wrong (placed at the key).
/// Late rows do nothing here.
fn apply<T>(row: &Keyword<T>, target: &mut T, v: &Node, templar: &Templar) -> Result<(), String> {
    let name = row.name;
    match &row.read {
        Elsewhere | Ignored | Late(_) => Ok(()),
        Unsupported(msg) => Err((*msg).to_string()),
        Bool(set) => bool_of(v).map(|b| set(target, b)),
        Text(check, set) => {
            let s = scalar_text(v);
            check(&s)?;
            set(target, s);
            Ok(())
        }
        Template(set) => {
            let s = scalar_text(v);
            if Templar::is_template(&s) {
                if let Err(e) = templar.check_syntax(&s, name) {
                    return Err(format!("{name}: {}", e.message));
                }
            }
            set(target, s);
            Ok(())
        }
        List { split_commas, set } => str_list(v, *split_commas).map(|l| set(target, l)),
        Exprs(set) => {
            let l = match &v.value {
                NodeValue::Bool(b) => vec![if *b { "True".into() } else { "False".into() }],
                _ => {
                    let l = str_list(v, false)?;
                    for w in &l {
                        templar.check_expr(w, name).map_err(|e| {
                            format!("{name}: `{w}` is not a valid expression: {}", e.message)
                        })?;
                    }
                    l
                }
            };
            set(target, l);
            Ok(())
        }
        Condition(set) => cond_of(v).map(|c| set(target, c)),
        Int { min, err, set } => match &v.value {
            NodeValue::Int(i) if *i >= *min => {
                set(target, *i);
                Ok(())
            }
            _ => Err((*err).to_string()),
        },
        Number { min, max, err, set } => match v.to_json().as_f64() {
            Some(x) if x >= *min && x <= *max => {
                set(target, x);
                Ok(())
            }
            _ => Err((*err).to_string()),
        },
        VarMap(set) => vars_of(v).map(|m| set(target, m)),
        Json(set) => {
            set(target, v.to_json());
            Ok(())
        }
        Loop(items, set) => {
            let val = v.to_json();
            let val = match (items, val) {
                (LoopShape::DictItems, Value::String(s)) => Value::String(format!(
                    "{{{{ ({}) | dict2items }}}}",
                    crate::template::single_expression(&s).unwrap_or(&s)
                )),
                (LoopShape::DictItems, Value::Object(o)) => Value::Array(
                    o.into_iter()
                        .map(|(k, v)| serde_json::json!({"key": k, "value": v}))
                        .collect(),
                ),
                (_, other) => other,
            };
            set(target, val, *items == LoopShape::Flattened)
        }
        Custom(read) => read(target, v),
    }
}

fn set_loop(t: &mut Task, items: Value, flatten: bool) -> Result<(), String> {
    if t.loop_.is_some() {
        return Err("a task can have only one loop".into());
    }
    t.loop_flatten = flatten;
    t.loop_ = Some(items);
    Ok(())
}

fn loop_control(t: &mut Task, v: &Node) -> Result<(), String> {
    let Some(m) = v.as_map() else {
        return Err("loop_control must be a mapping".into());
    };
    let mut lc = LoopControl {
        extended_allitems: true,
        ..LoopControl::default()
    };
    let mut bad = None;
    for (lk, lv) in m {
        match lk.as_str().unwrap_or_default() {
            "loop_var" => lc.loop_var = Some(scalar_text(lv)),
            "index_var" => lc.index_var = Some(scalar_text(lv)),
            "label" => lc.label = Some(scalar_text(lv)),
            "pause" => lc.pause = lv.to_json().as_f64(),
            "extended" => match bool_of(lv) {
                Ok(b) => lc.extended = b,
                Err(e) => bad = Some(format!("loop_control.extended: {e}")),
            },
            "extended_allitems" => match bool_of(lv) {
                Ok(b) => lc.extended_allitems = b,
                Err(e) => bad = Some(format!("loop_control.extended_allitems: {e}")),
            },
            other => bad = Some(format!("unknown loop_control key `{other}`")),
        }
    }
    match bad {
        Some(b) => Err(b),
        None => {
            t.loop_control = lc;
            Ok(())
        }
    }
}

fn any(_: &str) -> Result<(), String> {
    Ok(())
}

fn var_name(s: &str) -> Result<(), String> {
    if is_identifier(s) {
        Ok(())
    } else {
        Err(format!("register: `{s}` is not a valid variable name"))
    }
}

fn sudo_only(s: &str) -> Result<(), String> {
    match s {
        "sudo" => Ok(()),
        _ => Err("become_method: only sudo is supported".into()),
    }
}

fn localhost_only(s: &str) -> Result<(), String> {
    match s {
        "localhost" | "127.0.0.1" | "::1" => Ok(()),
        _ => Err(format!(
            "delegate_to: only `localhost` is supported, not `{s}`"
        )),
    }
}

fn known_strategy(s: &str) -> Result<(), String> {
    match s {
        "linear" | "free" | "host_pinned" => Ok(()),
        _ => Err("strategy: edgefleet runs every host independently (like `free`); use linear, free or host_pinned".into()),
    }
}

/// A play's `become_method`: only sudo (a value that is not a string is accepted).
fn play_become_method(_: &mut Play, v: &Node) -> Result<(), String> {
    match v.as_str() {
        Some("sudo") | None => Ok(()),
        Some(m) => Err(format!(
            "become_method '{m}' is not supported; edgefleet uses sudo"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn one_row_per_keyword() {
        let mut seen = HashSet::new();
        assert!(TASK_KEYWORDS.iter().all(|k| seen.insert(k.name)));
        let mut seen = HashSet::new();
        assert!(PLAY_KEYWORDS.iter().all(|k| seen.insert(k.name)));
    }

    #[test]
    fn loops_and_refusals_are_not_suggested() {
        let offered: Vec<_> = suggestions(TASK_KEYWORDS).collect();
        assert!(offered.contains(&"loop") && offered.contains(&"local_action"));
        assert!(!offered.iter().any(|k| k.starts_with("with_")));
        assert!(!suggestions(PLAY_KEYWORDS).any(|k| k == "vars_prompt"));
        assert!(is_task_keyword("with_fileglob") && is_task_keyword("args"));
        assert!(!is_task_keyword("copy"));
    }

    #[test]
    fn text_checks() {
        assert!(var_name("out_1").is_ok() && var_name("1out").is_err());
        assert!(localhost_only("::1").is_ok());
        assert!(localhost_only("edge1").unwrap_err().contains("`edge1`"));
        assert!(sudo_only("su").is_err() && known_strategy("free").is_ok());
    }
}
