//! Templates: the minijinja environment, configured like Ansible's templar.
//!
//! Owns template rendering for task arguments, `when`/`changed_when`/`failed_when`/`until` conditions and the
//! `template` module's files: strict undefined (printing or testing an undefined value is an error; `default`
//! and `is defined` work), `trim_blocks`, and the Ansible filters and tests minijinja lacks (in `filters`).
//! Errors name the template (file or task location), the line and the undefined name, and never print variable
//! values (minijinja's debug dump would leak secrets). It must not read inventories or talk to devices.
//!
//! Before compiling, every source goes through [`rewrite`] (chainable undefined for `x.y | default(..)` and
//! `x.y is defined`; Ansible's verbatim backslashes in task-argument expressions). Rendering prints `none` as
//! an empty string and floats like Python (Ansible 2.19). Lookups and `omit`: see [`lookup`]; the executor
//! sets the search path in the task variables under [`lookup::SEARCH_PATH_VAR`]. Per-render settings
//! (`#jinja2:` lines, the `template` module's delimiters and `trim_blocks`/`lstrip_blocks`): [`overrides`];
//! each distinct setting gets its own environment, built once ([`Templar::env_for`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::{Environment, UndefinedBehavior, Value as JValue};
use serde_json::Value;

use crate::vars::Vars;

pub mod context;
pub mod datetime;
pub mod filters;
pub mod lookup;
mod lookup_plugins;
pub mod methods;
pub mod overrides;
pub mod predicates;
pub mod pyops;
pub mod pyre;
pub mod pyyaml;
pub mod rewrite;
pub mod search;
mod values;
pub mod version;

pub use lookup::{omit_marker, search_path_value, SEARCH_PATH_VAR};
pub use overrides::Overrides;

/// The function a `with_<lookup>:` loop keyword is rewritten to call: `__ef_with(lookup, value, module)`.
pub const WITH_LOOP_FN: &str = "__ef_with";

/// A template failed to compile or render.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    /// Human-readable, with the template name, line and undefined name where known. Never contains values.
    pub message: String,
    /// Line in the template (1-based), when known.
    pub line: Option<usize>,
    /// Is this an undefined-variable error? (The loader uses this to defer validation of tasks that depend on
    /// registered variables.)
    pub undefined: bool,
}

/// Where file lookups (`lookup('file', ...)`, the `template` module's `src`) are resolved from.
#[derive(Debug, Clone, Default)]
pub struct SearchPath(pub Vec<PathBuf>);

impl SearchPath {
    /// Find `name` in the search path (absolute paths are returned as they are).
    pub fn find(&self, name: &str) -> Option<PathBuf> {
        let p = Path::new(name);
        if p.is_absolute() {
            return Some(p.to_path_buf());
        }
        self.0.iter().map(|d| d.join(p)).find(|c| c.exists())
    }
}

/// The templating engine. Cheap to clone; one per run.
#[derive(Clone)]
pub struct Templar {
    env: Arc<Environment<'static>>,
}

impl Default for Templar {
    fn default() -> Self {
        Self::new()
    }
}

impl Templar {
    /// A templar with Ansible-compatible settings and filters.
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Debug info gives "`x` is undefined" in messages; we only ever print the short form of errors
        // (never `{:#}`), which does not include variable values.
        env.set_debug(true);
        env.set_syntax(syntax());
        env.set_recursion_limit(200);
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(methods::unknown_method);
        env.add_function("dict", methods::dict);
        filters::register(&mut env);
        predicates::register(&mut env);
        env.add_function("lookup", lookup::lookup);
        env.add_function("query", lookup::query);
        env.add_function("q", lookup::query);
        env.add_function(WITH_LOOP_FN, lookup::with_loop);
        // Python semantics for `%` (string formatting) and date arithmetic, which the rewriter routes here.
        env.add_function(pyops::MOD_FN, pyops::py_mod);
        env.add_function(pyops::SUB_FN, pyops::py_sub);
        for name in ["to_datetime", "ansible.builtin.to_datetime"] {
            env.add_filter(name, |v: JValue, format: Option<String>| {
                datetime::to_datetime(&v, format.as_deref())
            });
        }
        env.add_function("now", datetime::now);
        env.add_global("omit", JValue::from(lookup::omit_marker()));
        env.set_formatter(format_value);
        // `{% include %}` / `{% import %}` in a template file: names are resolved beside the including file
        // (Ansible puts the template's own directory first on its search path) and loaded from disk.
        env.set_path_join_callback(|name, parent| {
            let p = Path::new(parent);
            if Path::new(name).is_absolute() || !p.is_absolute() {
                return std::borrow::Cow::Borrowed(name);
            }
            match p.parent() {
                Some(dir) => std::borrow::Cow::Owned(dir.join(name).display().to_string()),
                None => std::borrow::Cow::Borrowed(name),
            }
        });
        env.set_loader(loader(Overrides::default()));
        // Ansible never auto-escapes; minijinja would JSON/HTML-escape `*.json.j2`, `*.yml.j2`, `*.html.j2`.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        Templar { env: Arc::new(env) }
    }

    /// Does this string contain template syntax at all? (A `#jinja2:` first line makes it one too.)
    pub fn is_template(s: &str) -> bool {
        s.contains("{{") || s.contains("{%") || s.contains("{#") || s.starts_with(overrides::HEADER)
    }

    /// The environment for a render with these settings: the shared one for Ansible's defaults; others are
    /// built once per distinct setting and kept (there are few: the ones templates and tasks spell out).
    pub fn env_for(&self, ov: &Overrides) -> Result<Arc<Environment<'static>>, String> {
        if *ov == Overrides::default() {
            return Ok(self.env.clone());
        }
        variant_env(ov, || (*self.env).clone())
    }

    /// Check a template's syntax without rendering it.
    pub fn check_syntax(&self, source: &str, name: &str) -> Result<(), TemplateError> {
        // Parsing needs no filters, so a throwaway environment with the same syntax is enough (the shared
        // one only accepts 'static sources).
        let mut env = Environment::new();
        env.set_syntax(syntax());
        env.template_from_named_str(name, &rewrite::rewrite_template(source, true))
            .map(|_| ())
            .map_err(|e| convert(&e, name))
    }

    /// Check an expression's syntax (a `when:` condition).
    pub fn check_expr(&self, expr: &str, name: &str) -> Result<(), TemplateError> {
        self.env
            .compile_expression_owned(
                rewrite::rewrite_expression(strip_braces(expr), false).into_owned(),
            )
            .map(|_| ())
            .map_err(|e| convert(&e, name))
    }

    /// A context over one layer of variables.
    fn ctx(&self, vars: &Vars) -> context::Context {
        context::Context::new(self, vec![Arc::new(vars.clone())])
    }

    /// Render a template string to text (task-argument semantics: backslashes kept as written).
    pub fn render_str(
        &self,
        source: &str,
        vars: &Vars,
        name: &str,
    ) -> Result<String, TemplateError> {
        if !Self::is_template(source) {
            return Ok(source.to_string());
        }
        self.ctx(vars).render_str(source, name)
    }

    /// Render a template file (the `template` module). Errors name the file and line.
    pub fn render_file(&self, path: &Path, vars: &Vars) -> Result<String, TemplateError> {
        self.ctx(vars).render_file(path)
    }

    /// Evaluate an expression (no braces) to a value, as the inside of a task argument's `{{ }}`.
    pub fn eval_expr(&self, expr: &str, vars: &Vars, name: &str) -> Result<Value, TemplateError> {
        self.ctx(vars).eval_expr(expr, name)
    }

    /// Evaluate a condition (`when`, `failed_when`, ...). Like Ansible, a bare expression without braces.
    pub fn eval_condition(
        &self,
        expr: &str,
        vars: &Vars,
        name: &str,
    ) -> Result<bool, TemplateError> {
        self.ctx(vars).eval_condition(expr, name)
    }

    /// Render every string inside a value. A string that is exactly one `{{ expression }}` keeps the
    /// expression's native type (a list stays a list), as Ansible does.
    pub fn render_value(&self, v: &Value, vars: &Vars, name: &str) -> Result<Value, TemplateError> {
        self.ctx(vars).render_value(v, name)
    }

    /// The underlying environment (for the filters' own tests).
    pub fn env(&self) -> &Environment<'static> {
        &self.env
    }
}

/// The environment for non-default settings, built once (from `base()`, a default environment) and kept.
pub(crate) fn variant_env(
    ov: &Overrides,
    base: impl FnOnce() -> Environment<'static>,
) -> Result<Arc<Environment<'static>>, String> {
    type Variants =
        std::sync::Mutex<std::collections::HashMap<Overrides, Arc<Environment<'static>>>>;
    static VARIANTS: std::sync::OnceLock<Variants> = std::sync::OnceLock::new();
    let variants = VARIANTS.get_or_init(Default::default);
    if let Some(e) = variants.lock().ok().and_then(|v| v.get(ov).cloned()) {
        return Ok(e);
    }
    ov.check()?;
    let mut env = base();
    env.set_syntax(ov.syntax()?);
    env.set_loader(loader(ov.clone()));
    let env = Arc::new(env);
    if let Ok(mut v) = variants.lock() {
        v.insert(ov.clone(), env.clone());
    }
    Ok(env)
}

/// How `{% include %}` / `{% import %}` load a template: from disk by absolute path (the path join callback
/// puts names beside the including file), prepared like the including template (newlines; Jinja drops an
/// included file's trailing newline unless `keep_trailing_newline`).
fn loader(
    ov: Overrides,
) -> impl Fn(&str) -> Result<Option<String>, minijinja::Error> + Send + Sync + 'static {
    move |name| {
        let p = Path::new(name);
        if !p.is_absolute() || !p.is_file() {
            return Ok(None);
        }
        let src = std::fs::read_to_string(p).map_err(|e| {
            minijinja::Error::new(
                minijinja::ErrorKind::TemplateNotFound,
                format!("cannot read {name}: {e}"),
            )
        })?;
        let src = ov.prepare(&src);
        Ok(Some(
            rewrite::rewrite_template_with(&src, false, &ov.delims()).into_owned(),
        ))
    }
}

/// How values print: `none` as nothing (Ansible 2.19), floats like Python, an undefined chain is an error.
fn format_value(
    out: &mut minijinja::Output,
    state: &mut minijinja::State,
    value: &JValue,
) -> Result<(), minijinja::Error> {
    if value.is_none() {
        return Ok(());
    }
    if let Some(m) = value.downcast_object_ref::<values::Missing>() {
        return Err(minijinja::Error::new(
            minijinja::ErrorKind::UndefinedError,
            format!("`{}` is undefined", m.path),
        ));
    }
    if value.kind() == minijinja::value::ValueKind::Number && !value.is_integer() {
        if let Ok(f) = f64::try_from(value.clone()) {
            let s = if f.is_finite() {
                crate::pycompat::float_repr(f)
            } else if f.is_nan() {
                "nan".into()
            } else if f > 0.0 {
                "inf".into()
            } else {
                "-inf".into()
            };
            return out
                .write_str(&s)
                .map_err(|_| minijinja::Error::from(minijinja::ErrorKind::WriteFailure));
        }
    }
    minijinja::escape_formatter(out, state, value)
}

/// Ansible's template settings: `trim_blocks`, trailing newline kept.
fn syntax() -> minijinja::syntax::SyntaxConfig {
    minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .keep_trailing_newline(true)
        .build()
        .unwrap_or_default()
}

/// Python-style truthiness of a JSON value (what `when:` uses).
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().map(|f| f != 0.0).unwrap_or(true),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// `when: "{{ x }}"` is accepted (with a warning in Ansible): strip one pair of outer braces.
fn strip_braces(expr: &str) -> &str {
    let t = expr.trim();
    single_expression(t).unwrap_or(t)
}

/// If `s` is exactly `{{ expr }}` (one expression, nothing around it), return `expr`.
pub fn single_expression(s: &str) -> Option<&str> {
    single_expression_with(s, &rewrite::Delims::DEFAULT)
}

/// [`single_expression`] for templates written with other delimiters. No trimming: a string template's one
/// trailing newline is dropped before this is asked ([`Overrides::prepare`]), other whitespace is text.
pub fn single_expression_with<'s>(s: &'s str, d: &rewrite::Delims<'_>) -> Option<&'s str> {
    let inner = s.strip_prefix(d.var.0)?.strip_suffix(d.var.1)?;
    if inner.contains(d.block.0) || inner.contains(d.comment.0) {
        return None;
    }
    if !inner.contains(d.var.0) && !inner.contains(d.var.1) {
        return Some(inner.trim());
    }
    // Braces inside may belong to dict literals (`{{ {'a': {'b': 1}} }}`) or close one expression and open
    // another (`{{ a }}-{{ b }}`): it is one expression exactly when the inside parses as one.
    let env = Environment::new();
    env.compile_expression(inner.trim())
        .ok()
        .map(|_| inner.trim())
}

/// Convert a minijinja value to JSON (undefined/none become null).
pub fn to_json(v: &JValue) -> Result<Value, String> {
    if v.is_undefined() || v.is_none() {
        return Ok(Value::Null);
    }
    serde_json::to_value(v).map_err(|e| format!("value cannot be represented: {e}"))
}

/// Turn a minijinja error into ours: short form only (the alternate form dumps variable values).
fn convert(e: &minijinja::Error, name: &str) -> TemplateError {
    let undefined = matches!(e.kind(), minijinja::ErrorKind::UndefinedError);
    let line = e.line();
    // `Display` (not `{:#}`) gives e.g. "undefined value: `x` is undefined (in tpl:3)".
    let mut message = e.to_string();
    if let Some(d) = e.detail() {
        if !message.contains(d) {
            message = format!("{message}: {d}");
        }
    }
    if !message.contains(name) {
        message = match line {
            Some(l) => format!("{message} (in {name}:{l})"),
            None => format!("{message} (in {name})"),
        };
    }
    TemplateError {
        message: crate::redact::redact(&message).into_owned(),
        line,
        undefined,
    }
}

/// Remove arguments whose value is the `omit` placeholder.
pub fn drop_omit(v: Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .filter(|(_, x)| x.as_str() != Some(omit_marker()))
                .map(|(k, x)| (k, drop_omit(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.into_iter()
                .filter(|x| x.as_str() != Some(omit_marker()))
                .map(drop_omit)
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(v: Value) -> Vars {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn strict_undefined_like_ansible() {
        let t = Templar::new();
        let v = vars(json!({"a": 1}));
        let e = t.render_str("x={{ missing }}", &v, "task").unwrap_err();
        assert!(e.undefined);
        assert!(e.message.contains("missing"), "{}", e.message);
        assert_eq!(
            t.render_str("{{ missing | default('d') }}", &v, "t")
                .unwrap(),
            "d"
        );
        assert!(!t.eval_condition("missing is defined", &v, "t").unwrap());
        assert!(t.eval_condition("missing", &v, "t").is_err());
    }

    #[test]
    fn single_expression_keeps_type() {
        let t = Templar::new();
        let v = vars(json!({"l": [1, 2], "n": 5}));
        assert_eq!(
            t.render_value(&json!("{{ l }}"), &v, "t").unwrap(),
            json!([1, 2])
        );
        assert_eq!(
            t.render_value(&json!("n={{ n }}"), &v, "t").unwrap(),
            json!("n=5")
        );
        assert_eq!(
            t.render_value(&json!({"a": ["{{ n + 1 }}"]}), &v, "t")
                .unwrap(),
            json!({"a": [6]})
        );
    }

    #[test]
    fn error_names_file_and_line() {
        let t = Templar::new();
        let e = t
            .render_str("line1\n{{ nope.x }}\n", &Vars::new(), "aziot.toml.j2")
            .unwrap_err();
        assert!(e.message.contains("aziot.toml.j2"), "{}", e.message);
        assert_eq!(e.line, Some(2));
    }
}
