//! `lookup()`, `query()`/`q()` and the `omit` placeholder.
//!
//! Owns the lookup plugins templates can call on the controller: `file` (read a controller file), `env`
//! (an environment variable; unset gives `''` like Ansible, or the `default=` given), `vars` (a variable by
//! computed name), and the loop helpers `items`, `list`, `dict`, `indexed_items` (what `with_<name>:` uses).
//! Also owns `omit`: a per-process unique marker string the executor drops from module arguments. With
//! `errors='warn'`, a failed lookup's warning goes to the rendering context's collector
//! ([`super::context::warn`]), never to a terminal.
//!
//! **Search path.** `lookup('file', 'x')` resolves relative names through the render-context variable
//! [`SEARCH_PATH_VAR`] (`__ef_search_path`): a list of directories, most specific first. For each directory `d`
//! it tries `d/files/x`, then `d/x` (Ansible's order for role and playbook directories). Without that
//! variable, relative names are resolved from the current directory. The executor sets it per task (role dir,
//! playbook dir) with [`search_path_value`]. Errors name the file, never its content. The other plugins
//! (`template`, `pipe`, `lines`, `fileglob`, `first_found`, `sequence`, `nested`, `together`, `subelements`)
//! live in [`super::lookup_plugins`]; this module runs no commands itself and must not touch devices.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use minijinja::value::{Kwargs, Rest};
use minijinja::{Error, ErrorKind, State, Value};

/// The render-context variable holding the lookup search path (a list of directory strings).
pub const SEARCH_PATH_VAR: &str = "__ef_search_path";

/// The value to store under [`SEARCH_PATH_VAR`] in a task's variables.
pub fn search_path_value(dirs: &[PathBuf]) -> serde_json::Value {
    serde_json::Value::Array(
        dirs.iter()
            .map(|d| serde_json::Value::String(d.display().to_string()))
            .collect(),
    )
}

/// The `omit` placeholder for this process: `__omit_place_holder__` followed by 40 random hex digits, like
/// Ansible's. A module argument whose rendered value equals it must be dropped.
pub fn omit_marker() -> &'static str {
    static OMIT: OnceLock<String> = OnceLock::new();
    OMIT.get_or_init(|| {
        use rand::RngCore;
        let mut b = [0u8; 20];
        rand::thread_rng().fill_bytes(&mut b);
        format!("__omit_place_holder__{}", hex::encode(b))
    })
}

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// `lookup(name, *terms, wantlist=False, errors='strict', **options)`.
pub fn lookup(
    state: &State,
    name: String,
    terms: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let wantlist = kwargs.get::<Option<bool>>("wantlist")?.unwrap_or(false);
    let results = run_guarded(state, &name, &terms, &kwargs)?;
    let Some(results) = results else {
        return Ok(if wantlist {
            Value::from(Vec::<Value>::new())
        } else {
            Value::from(())
        });
    };
    if wantlist {
        return Ok(Value::from(results));
    }
    // Ansible's munging for `lookup()`: one result is returned as is, several strings are joined with ",".
    Ok(match results.len() {
        0 => Value::from(results),
        1 => results.into_iter().next().unwrap_or_default(),
        _ if results.iter().all(|v| v.as_str().is_some()) => Value::from(
            results
                .iter()
                .map(|v| v.as_str().unwrap_or_default().to_string())
                .collect::<Vec<_>>()
                .join(","),
        ),
        _ => Value::from(results),
    })
}

/// `query(name, *terms, **options)` / `q(...)`: always a list.
pub fn query(
    state: &State,
    name: String,
    terms: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    // `wantlist` is implied; accept it anyway.
    let _ = kwargs.get::<Option<bool>>("wantlist")?;
    Ok(Value::from(
        run_guarded(state, &name, &terms, &kwargs)?.unwrap_or_default(),
    ))
}

/// Run a lookup honouring `errors=strict|warn|ignore` (`None` = failed but ignored).
fn run_guarded(
    state: &State,
    name: &str,
    terms: &[Value],
    kwargs: &Kwargs,
) -> Result<Option<Vec<Value>>, Error> {
    let errors = kwargs
        .get::<Option<String>>("errors")?
        .unwrap_or_else(|| "strict".into());
    if !matches!(errors.as_str(), "strict" | "warn" | "ignore") {
        return Err(err(format!(
            "lookup: errors must be strict, warn or ignore, not {errors:?}"
        )));
    }
    match run(state, name, terms, kwargs) {
        Ok(v) => {
            kwargs.assert_all_used()?;
            Ok(Some(v))
        }
        Err(e) if errors == "strict" => Err(e),
        Err(e) => {
            if errors == "warn" {
                // Collected by the context being rendered; the caller reports it (templates never print).
                super::context::warn(
                    state,
                    format!(
                        "lookup('{name}') failed: {}",
                        crate::redact::redact(&e.to_string())
                    ),
                );
            }
            Ok(None)
        }
    }
}

fn run(state: &State, name: &str, terms: &[Value], kwargs: &Kwargs) -> Result<Vec<Value>, Error> {
    let name = name.strip_prefix("ansible.builtin.").unwrap_or(name);
    match name {
        "file" => {
            let lstrip = kwargs.get::<Option<bool>>("lstrip")?.unwrap_or(false);
            let rstrip = kwargs.get::<Option<bool>>("rstrip")?.unwrap_or(true);
            let search = search_path(state);
            terms
                .iter()
                .map(|t| {
                    let term = term_str(t, "file")?;
                    let path = find_file(&search, &term).ok_or_else(|| {
                        err(format!(
                            "lookup('file'): file {term:?} not found (searched {})",
                            describe_search(&search, &term)
                        ))
                    })?;
                    let text = std::fs::read_to_string(&path).map_err(|e| {
                        err(format!("lookup('file'): cannot read {}: {e}", path.display()))
                    })?;
                    let mut s = text.as_str();
                    if lstrip {
                        s = s.trim_start();
                    }
                    if rstrip {
                        s = s.trim_end();
                    }
                    Ok(Value::from(s))
                })
                .collect()
        }
        "env" => {
            let default = kwargs.get::<Option<Value>>("default")?.unwrap_or(Value::from(""));
            terms
                .iter()
                .map(|t| {
                    let term = term_str(t, "env")?;
                    let var = term.split_whitespace().next().unwrap_or("");
                    Ok(std::env::var(var).map(Value::from).unwrap_or_else(|_| default.clone()))
                })
                .collect()
        }
        "vars" => {
            let default = kwargs.get::<Option<Value>>("default")?;
            terms
                .iter()
                .map(|t| {
                    let term = term_str(t, "vars")?;
                    match state.lookup(&term).filter(|v| !v.is_undefined()) {
                        Some(v) => Ok(v),
                        None => default.clone().ok_or_else(|| {
                            Error::new(
                                ErrorKind::UndefinedError,
                                format!("lookup('vars'): no variable named {} was found", shown_name(&term)),
                            )
                        }),
                    }
                })
                .collect()
        }
        "items" => {
            // `with_items`: flatten one level.
            let mut out = Vec::new();
            for t in terms {
                if t.as_str().is_none() && t.try_iter().is_ok() && !t.is_none() && t.len().is_some() {
                    out.extend(t.try_iter()?);
                } else {
                    out.push(t.clone());
                }
            }
            Ok(out)
        }
        "list" => Ok(terms.to_vec()),
        "indexed_items" => {
            let items = flat_terms(terms)?;
            Ok(items
                .into_iter()
                .enumerate()
                .map(|(i, v)| Value::from(vec![Value::from(i), v]))
                .collect())
        }
        "dict" => {
            let mut out = Vec::new();
            for t in terms {
                let Some(obj) = t.as_object().filter(|_| t.kind() == minijinja::value::ValueKind::Map) else {
                    return Err(err(format!("lookup('dict') expects a dict, got {}", t.kind())));
                };
                for k in obj.try_iter().into_iter().flatten() {
                    let v = t.get_item(&k)?;
                    out.push(Value::from_pairs([("key", k), ("value", v)]));
                }
            }
            Ok(out)
        }
        other => match super::lookup_plugins::run(state, other, terms, kwargs, &search_path(state)) {
            Some(r) => r,
            None => Err(err(format!(
                "lookup plugin {} is not available (edgefleet provides file, env, vars, items, list, dict, \
                 indexed_items, template, pipe, lines, fileglob, first_found, sequence, nested, together, \
                 subelements)",
                shown_name(other)
            ))),
        },
    }
}

/// A computed name in an error message: shown only if it looks like a variable/plugin name, since it may come
/// from a variable holding anything (a secret, say).
fn shown_name(name: &str) -> String {
    let ident = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    if ident {
        format!("{name:?}")
    } else {
        "(a computed name that is not a valid identifier)".to_string()
    }
}

fn flat_terms(terms: &[Value]) -> Result<Vec<Value>, Error> {
    let mut out = Vec::new();
    for t in terms {
        if t.kind() == minijinja::value::ValueKind::Seq {
            out.extend(t.try_iter()?);
        } else {
            out.push(t.clone());
        }
    }
    Ok(out)
}

fn term_str(t: &Value, plugin: &str) -> Result<String, Error> {
    match t.as_str() {
        Some(s) => Ok(s.to_string()),
        None if t.is_undefined() => Err(Error::new(
            ErrorKind::UndefinedError,
            format!("lookup('{plugin}'): a term is undefined"),
        )),
        None => Ok(t.to_string()),
    }
}

/// The lookup search path of the render in progress (empty: the current directory).
fn search_path(state: &State) -> Vec<PathBuf> {
    state
        .lookup(SEARCH_PATH_VAR)
        .filter(|v| v.kind() == minijinja::value::ValueKind::Seq)
        .and_then(|v| v.try_iter().ok())
        .map(|it| it.filter_map(|d| d.as_str().map(PathBuf::from)).collect())
        .unwrap_or_default()
}

/// Resolve `name` against the search path (see the module docs).
pub fn find_file(search: &[PathBuf], name: &str) -> Option<PathBuf> {
    super::search::find(search, "files", name).ok()
}

fn describe_search(search: &[PathBuf], name: &str) -> String {
    if Path::new(name).is_absolute() {
        return "absolute path".into();
    }
    if search.is_empty() {
        return format!(
            "the current directory {}",
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default()
        );
    }
    search
        .iter()
        .map(|d| format!("{0}/files, {0}", d.display()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `with_<name>: value` as a loop: the value's items are the terms (a string is one term), and the lookup's
/// results are the loop items. `module` is the task's action (it decides `first_found`'s subdirectory).
pub fn with_loop(
    state: &State,
    name: String,
    value: Value,
    module: Option<String>,
) -> Result<Value, Error> {
    let terms: Vec<Value> = if value.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            format!("with_{name}: the value is undefined"),
        ));
    } else if value.as_str().is_some() || value.kind() != minijinja::value::ValueKind::Seq {
        vec![value]
    } else {
        value.try_iter()?.collect()
    };
    let search = search_path(state);
    if name == "first_found" {
        let module = module.unwrap_or_default();
        let subdir = ["template", "var", "file"]
            .into_iter()
            .find(|s| module.contains(s))
            .unwrap_or("file");
        let kw = Kwargs::from_iter(std::iter::empty::<(&str, Value)>());
        return super::lookup_plugins::first_found(
            &terms,
            &kw,
            &search,
            Some(&format!("{subdir}s")),
        )
        .map(Value::from);
    }
    let kw = Kwargs::from_iter(std::iter::empty::<(&str, Value)>());
    query(state, name, minijinja::value::Rest(terms), kw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn omit_is_stable_and_unique_looking() {
        let a = omit_marker();
        assert_eq!(a, omit_marker());
        assert!(a.starts_with("__omit_place_holder__"));
        assert_eq!(a.len(), "__omit_place_holder__".len() + 40);
    }

    #[test]
    fn find_file_order() {
        let dir = tempfile::tempdir().unwrap();
        let role = dir.path().join("role");
        std::fs::create_dir_all(role.join("files")).unwrap();
        std::fs::write(role.join("files/a.txt"), "files").unwrap();
        std::fs::write(role.join("a.txt"), "plain").unwrap();
        std::fs::write(dir.path().join("b.txt"), "b").unwrap();
        let sp = vec![role.clone(), dir.path().to_path_buf()];
        assert_eq!(find_file(&sp, "a.txt").unwrap(), role.join("files/a.txt"));
        assert_eq!(find_file(&sp, "b.txt").unwrap(), dir.path().join("b.txt"));
        assert!(find_file(&sp, "c.txt").is_none());
        let abs = dir.path().join("b.txt");
        assert_eq!(find_file(&[], abs.to_str().unwrap()).unwrap(), abs);
    }
}
