//! Template contexts with Ansible's lazy variables.
//!
//! Owns variable lookup during rendering: a context is a stack of variable layers (precedence order, highest
//! last) that is never flattened or copied. A variable whose value is itself a template (`image:
//! "{{ registry }}/agent:1.5.3"`) is rendered when, and only when, a template uses it, against the same
//! context, with loop detection, and the result is cached for the context's lifetime. Errors inside such a
//! variable surface where it is used, naming the variable. It must not know where layers come from.
//!
//! Template strings and files are prepared as Ansible 2.19 does (`#jinja2:` line, newlines, one trailing
//! newline dropped, see overrides.rs): a source that is then exactly one `{{ expression }}` keeps the
//! expression's type (`"{{ n | int }}\n"` is a number), and text gets back the trailing newlines it lacks.
//!
//! A context also carries a [`Warnings`] collector: what a render wants to tell the operator (a
//! `lookup(..., errors='warn')` that failed) is collected there, never printed; the caller drains it
//! ([`Context::take_warnings`]) and reports it. Contexts made with [`Context::with_layer`] share their parent's
//! collector; [`Context::collecting`] makes a context that collects into a given one.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use minijinja::value::{Enumerator, Object, ObjectRepr, Value as JValue};
use minijinja::{Error, ErrorKind};
use serde_json::Value;

use crate::template::overrides::Overrides;
use crate::template::rewrite::{rewrite_expression, rewrite_template, rewrite_template_with};
use crate::template::{single_expression, single_expression_with, truthy, Templar, TemplateError};
use crate::vars::Vars;

/// Warnings raised while rendering, collected for the caller to report (templates never print).
#[derive(Debug, Default)]
pub struct Warnings(Mutex<Vec<String>>);

impl Warnings {
    /// Add one.
    pub fn push(&self, message: String) {
        if let Ok(mut w) = self.0.lock() {
            w.push(message);
        }
    }

    /// Take every warning collected so far, in order.
    pub fn take(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default()
    }
}

impl Object for Warnings {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<warnings>")
    }
}

/// The name under which a render reaches its context's [`Warnings`] (not a variable: never enumerated).
const WARNINGS_KEY: &str = "__ef_warnings";

/// From inside a render (a template function or filter): hand a warning to the collector of the context being
/// rendered. Every render through a [`Context`] has one; a render without (a bare environment, in tests) drops
/// the warning and gets `false`.
pub fn warn(state: &minijinja::State, message: String) -> bool {
    match state
        .lookup(WARNINGS_KEY)
        .as_ref()
        .and_then(|v| v.downcast_object_ref::<Warnings>())
    {
        Some(w) => {
            w.push(message);
            true
        }
        None => false,
    }
}

/// A rendering context: variable layers (lowest precedence first).
#[derive(Clone)]
pub struct Context {
    inner: Arc<Lazy>,
}

struct Lazy {
    templar: Templar,
    layers: Vec<Arc<Vars>>,
    cache: Mutex<HashMap<String, JValue>>,
    resolving: Mutex<HashSet<String>>,
    /// Variables whose value failed to render because something inside is undefined: they count as
    /// undefined themselves (as in Ansible), and this says why.
    undefined_because: Mutex<HashMap<String, String>>,
    /// Where renders put their warnings.
    warnings: Arc<Warnings>,
}

impl std::fmt::Debug for Lazy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print values (secrets).
        write!(f, "<variables>")
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print values (secrets).
        write!(f, "Context({} layers)", self.inner.layers.len())
    }
}

fn has_template(v: &Value) -> bool {
    match v {
        Value::String(s) => Templar::is_template(s),
        Value::Array(a) => a.iter().any(has_template),
        Value::Object(o) => o
            .iter()
            .any(|(k, v)| Templar::is_template(k) || has_template(v)),
        _ => false,
    }
}

impl Lazy {
    fn raw(&self, key: &str) -> Option<&Value> {
        self.layers.iter().rev().find_map(|l| l.get(key))
    }

    fn resolve_value(self: &Arc<Self>, v: &Value, name: &str) -> Result<JValue, Error> {
        match v {
            Value::String(s) if Templar::is_template(s) => {
                let ctx = JValue::from_dyn_object(self.clone());
                let env = self.templar.env();
                let p = Prepared::new(s, &Overrides::default()).map_err(|e| {
                    Error::new(
                        ErrorKind::SyntaxError,
                        format!("{e} (in variable `{name}`)"),
                    )
                })?;
                if let Some(expr) = p.single() {
                    let e =
                        env.compile_expression_owned(rewrite_expression(expr, true).into_owned())?;
                    let out = e.eval(ctx)?;
                    if out.is_undefined() {
                        return Err(Error::new(
                            ErrorKind::UndefinedError,
                            format!("`{expr}` is undefined (in variable `{name}`)"),
                        ));
                    }
                    Ok(match out.as_str() {
                        Some(text) => JValue::from(p.ov.restore_newlines(p.body, text.to_string())),
                        None => out,
                    })
                } else {
                    let text = self
                        .templar
                        .env_for(&p.ov)
                        .map_err(|e| Error::new(ErrorKind::SyntaxError, e))?
                        .render_named_str(name, &p.rewritten(true), ctx)?;
                    Ok(JValue::from(p.ov.restore_newlines(p.body, text)))
                }
            }
            Value::Array(a) if has_template(v) => a
                .iter()
                .map(|x| self.resolve_value(x, name))
                .collect::<Result<Vec<_>, _>>()
                .map(JValue::from),
            Value::Object(o) if has_template(v) => {
                let mut pairs = Vec::with_capacity(o.len());
                for (k, x) in o {
                    let key = if Templar::is_template(k) {
                        let ctx = JValue::from_dyn_object(self.clone());
                        self.templar.env().render_named_str(
                            name,
                            &rewrite_template(k, true),
                            ctx,
                        )?
                    } else {
                        k.clone()
                    };
                    pairs.push((key, self.resolve_value(x, name)?));
                }
                Ok(JValue::from_pairs(pairs))
            }
            other => Ok(JValue::from(minijinja::value::Serde(other))),
        }
    }
}

/// A template string made ready for minijinja the way Ansible does it (see overrides.rs): `#jinja2:` line
/// applied, newlines normalized, one trailing newline dropped.
pub(crate) struct Prepared<'a> {
    /// The source after its `#jinja2:` line (what the result's trailing newlines are counted against).
    pub body: &'a str,
    /// What minijinja compiles.
    pub source: std::borrow::Cow<'a, str>,
    /// The settings in force.
    pub ov: Overrides,
}

impl<'a> Prepared<'a> {
    pub fn new(src: &'a str, base: &Overrides) -> Result<Self, String> {
        let (body, ov) = base.with_header(src)?;
        let source = ov.prepare(body);
        Ok(Prepared { body, source, ov })
    }

    /// The expression, when the whole source is one `{{ expr }}` (its value keeps its type, as in Ansible).
    pub fn single(&self) -> Option<&str> {
        single_expression_with(&self.source, &self.ov.delims())
    }

    /// The source through the rewriter.
    pub fn rewritten(&self, escape_backslashes: bool) -> String {
        rewrite_template_with(&self.source, escape_backslashes, &self.ov.delims()).into_owned()
    }
}

impl Object for Lazy {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &JValue) -> Option<JValue> {
        let k = key.as_str()?;
        if k == WARNINGS_KEY {
            return Some(JValue::from_dyn_object(self.warnings.clone()));
        }
        if k == "vars" && self.raw("vars").is_none() {
            // Ansible's `vars['name']`.
            return Some(JValue::from_dyn_object(self.clone()));
        }
        if let Some(v) = self.cache.lock().ok()?.get(k) {
            return Some(v.clone());
        }
        let raw = self.raw(k)?;
        if !has_template(raw) {
            let v = JValue::from(minijinja::value::Serde(raw));
            if let Ok(mut c) = self.cache.lock() {
                c.insert(k.to_string(), v.clone());
            }
            return Some(v);
        }
        {
            let mut r = self.resolving.lock().ok()?;
            if !r.insert(k.to_string()) {
                return Some(JValue::from(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("recursive loop detected in the value of variable `{k}`"),
                )));
            }
        }
        let res = self.resolve_value(raw, k);
        if let Ok(mut r) = self.resolving.lock() {
            r.remove(k);
        }
        match res {
            Ok(v) => {
                if let Ok(mut c) = self.cache.lock() {
                    c.insert(k.to_string(), v.clone());
                }
                Some(v)
            }
            Err(e)
                if e.kind() == ErrorKind::UndefinedError || short(&e).contains("is undefined") =>
            {
                if let Ok(mut u) = self.undefined_because.lock() {
                    u.insert(k.to_string(), short(&e));
                }
                None
            }
            Err(e) => {
                let msg = format!("in variable `{k}`: {}", short(&e));
                Some(JValue::from(Error::new(e.kind(), msg)))
            }
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let mut seen = HashSet::new();
        let mut keys = Vec::new();
        for l in self.layers.iter().rev() {
            for k in l.keys() {
                if seen.insert(k.clone()) {
                    keys.push(JValue::from(k.clone()));
                }
            }
        }
        Enumerator::Values(keys)
    }
}

/// The short text of an error (never the debug form, which prints variable values).
fn short(e: &Error) -> String {
    let mut m = e.to_string();
    if let Some(d) = e.detail() {
        if !m.contains(d) {
            m = format!("{m}: {d}");
        }
    }
    m
}

/// A bad `#jinja2:` line or delimiter setting, naming the template.
fn syntax_error(e: String, name: &str) -> TemplateError {
    TemplateError {
        message: format!("{e} (in {name})"),
        line: Some(1),
        undefined: false,
    }
}

fn convert(e: &Error, name: &str) -> TemplateError {
    let mut message = short(e);
    if !message.contains(name) {
        message = match e.line() {
            Some(l) => format!("{message} (in {name}:{l})"),
            None => format!("{message} (in {name})"),
        };
    }
    TemplateError {
        message: crate::redact::redact(&message).into_owned(),
        line: e.line(),
        undefined: matches!(e.kind(), ErrorKind::UndefinedError)
            || message.contains("is undefined"),
    }
}

impl Context {
    /// A context over `layers` (lowest precedence first), with a collector of its own for warnings.
    pub fn new(templar: &Templar, layers: Vec<Arc<Vars>>) -> Self {
        Self::collecting(templar, layers, Arc::new(Warnings::default()))
    }

    /// A context over `layers` whose renders put their warnings into `warnings`.
    pub fn collecting(templar: &Templar, layers: Vec<Arc<Vars>>, warnings: Arc<Warnings>) -> Self {
        Context {
            inner: Arc::new(Lazy {
                templar: templar.clone(),
                layers,
                cache: Mutex::new(HashMap::new()),
                resolving: Mutex::new(HashSet::new()),
                undefined_because: Mutex::new(HashMap::new()),
                warnings,
            }),
        }
    }

    /// A context with one more layer on top (loop items, registered results); it shares this one's warnings.
    pub fn with_layer(&self, top: Arc<Vars>) -> Self {
        let mut layers = self.inner.layers.clone();
        layers.push(top);
        Context::collecting(&self.inner.templar, layers, self.inner.warnings.clone())
    }

    /// Take the warnings renders in this context (and those sharing its collector) raised so far.
    pub fn take_warnings(&self) -> Vec<String> {
        self.inner.warnings.take()
    }

    /// The templar.
    pub fn templar(&self) -> &Templar {
        &self.inner.templar
    }

    fn value(&self) -> JValue {
        JValue::from_dyn_object(self.inner.clone())
    }

    /// Is a variable defined (in any layer)?
    pub fn contains(&self, key: &str) -> bool {
        self.inner.raw(key).is_some()
    }

    /// A variable's raw value (templates not rendered).
    pub fn raw(&self, key: &str) -> Option<&Value> {
        self.inner.raw(key)
    }

    /// A variable's value, rendered.
    pub fn get(&self, key: &str) -> Result<Option<Value>, TemplateError> {
        let Some(v) = self.inner.get_value(&JValue::from(key)) else {
            return Ok(None);
        };
        to_json_checked(&v, key).map(Some)
    }

    /// All variables flattened (raw values, highest precedence wins).
    pub fn flatten(&self) -> Vars {
        let mut out = Vars::new();
        for l in &self.inner.layers {
            for (k, v) in l.iter() {
                out.insert(k.clone(), v.clone());
            }
        }
        out
    }

    /// Add why a nested variable was undefined ("`image` is undefined" because "`registry` is undefined").
    fn explain(&self, mut e: TemplateError) -> TemplateError {
        if let Ok(u) = self.inner.undefined_because.lock() {
            let mut why: Vec<String> = u
                .iter()
                .filter(|(k, _)| e.message.contains(&format!("`{k}`")))
                .map(|(k, m)| format!("`{k}` uses something undefined: {m}"))
                .collect();
            why.sort();
            if !why.is_empty() {
                e.message = format!("{} ({})", e.message, why.join("; "));
            }
        }
        e
    }

    /// Render a template string to text (a single expression's value printed as text).
    pub fn render_str(&self, source: &str, name: &str) -> Result<String, TemplateError> {
        if !Templar::is_template(source) {
            return Ok(source.to_string());
        }
        let p = Prepared::new(source, &Overrides::default()).map_err(|e| syntax_error(e, name))?;
        self.render_text(&p, name, true)
    }

    /// Render a prepared template as text, its trailing newlines given back.
    fn render_text(
        &self,
        p: &Prepared<'_>,
        name: &str,
        escape_backslashes: bool,
    ) -> Result<String, TemplateError> {
        let env = self
            .inner
            .templar
            .env_for(&p.ov)
            .map_err(|e| syntax_error(e, name))?;
        let text = env
            .render_named_str(name, &p.rewritten(escape_backslashes), self.value())
            .map_err(|e| self.explain(convert(&e, name)))?;
        Ok(p.ov.restore_newlines(p.body, text))
    }

    /// Render a template string as Ansible does a task argument: exactly one `{{ expression }}` (after the
    /// one trailing newline Jinja drops) keeps the expression's type; anything else is text.
    pub fn render_string(&self, source: &str, name: &str) -> Result<Value, TemplateError> {
        let p = Prepared::new(source, &Overrides::default()).map_err(|e| syntax_error(e, name))?;
        match p.single() {
            Some(expr) => match self.eval_expr(expr, name)? {
                Value::String(text) => Ok(Value::String(p.ov.restore_newlines(p.body, text))),
                other => Ok(other),
            },
            None => self.render_text(&p, name, true).map(Value::String),
        }
    }

    /// Render a template file (the `template` module) with Ansible's default settings.
    pub fn render_file(&self, path: &std::path::Path) -> Result<String, TemplateError> {
        self.render_file_with(path, &Overrides::default())
    }

    /// Render a template file with the `template` module's settings (its `#jinja2:` line overrides them). A
    /// file that is one `{{ expression }}` prints its value as Python's `str()` would, as Ansible writes it.
    pub fn render_file_with(
        &self,
        path: &std::path::Path,
        ov: &Overrides,
    ) -> Result<String, TemplateError> {
        let src = std::fs::read_to_string(path).map_err(|e| TemplateError {
            message: format!("cannot read template {}: {e}", path.display()),
            line: None,
            undefined: false,
        })?;
        let name = crate::diag::display_path(path);
        let p = Prepared::new(&src, ov).map_err(|e| syntax_error(e, &name))?;
        // What Ansible's template action adds for the file being rendered.
        let full = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let mut extra = Vars::new();
        extra.insert(
            "ansible_managed".into(),
            Value::String("Ansible managed".into()),
        );
        extra.insert(
            "template_path".into(),
            Value::String(full.display().to_string()),
        );
        extra.insert(
            "template_fullpath".into(),
            Value::String(full.display().to_string()),
        );
        extra.insert("template_host".into(), Value::String(controller_hostname()));
        extra.insert("template_uid".into(), Value::String(file_owner(path)));
        let cx = self.with_layer(Arc::new(extra));
        if let Some(expr) = p.single() {
            return Ok(match cx.eval_expr_with(expr, &name, false)? {
                Value::String(text) => p.ov.restore_newlines(p.body, text),
                Value::Null => String::new(),
                other => crate::pycompat::str_value(&other),
            });
        }
        cx.render_text(&p, &name, false)
    }

    /// Evaluate an expression (braces optional), as the inside of a task argument's `{{ }}` (string literals
    /// keep their backslashes, like Ansible's templar).
    pub fn eval_expr(&self, expr: &str, name: &str) -> Result<Value, TemplateError> {
        self.eval_expr_with(expr, name, true)
    }

    fn eval_expr_with(
        &self,
        expr: &str,
        name: &str,
        escape_backslashes: bool,
    ) -> Result<Value, TemplateError> {
        let t = expr.trim();
        let inner = single_expression(t).unwrap_or(t);
        let env = self.inner.templar.env();
        let e = env
            .compile_expression_owned(rewrite_expression(inner, escape_backslashes).into_owned())
            .map_err(|e| convert(&e, name))?;
        let v = e
            .eval(self.value())
            .map_err(|e| self.explain(convert(&e, name)))?;
        if v.is_undefined() {
            let mut missing: Vec<String> = e
                .undeclared_variables(false)
                .into_iter()
                .filter(|n| !self.contains(n) && !n.starts_with("__ef_"))
                .collect();
            missing.sort();
            let what = if missing.is_empty() {
                format!("`{inner}` is undefined")
            } else {
                format!("`{}` is undefined", missing.join("`, `"))
            };
            return Err(self.explain(TemplateError {
                message: format!("undefined value: {what} (in {name})"),
                line: None,
                undefined: true,
            }));
        }
        to_json_checked(&v, name)
    }

    /// Evaluate a condition (`when`, `failed_when`, ...): Jinja's normal string escapes, like Ansible.
    pub fn eval_condition(&self, expr: &str, name: &str) -> Result<bool, TemplateError> {
        Ok(truthy(&self.eval_expr_with(expr, name, false)?))
    }

    /// Render every string in a value; `"{{ expr }}"` keeps the expression's type.
    pub fn render_value(&self, v: &Value, name: &str) -> Result<Value, TemplateError> {
        match v {
            Value::String(s) if Templar::is_template(s) => self.render_string(s, name),
            Value::Array(a) => a
                .iter()
                .map(|x| self.render_value(x, name))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::Object(o) => {
                let mut out = serde_json::Map::with_capacity(o.len());
                for (k, x) in o {
                    out.insert(self.render_str(k, name)?, self.render_value(x, name)?);
                }
                Ok(Value::Object(out))
            }
            _ => Ok(v.clone()),
        }
    }
}

/// The controller's host name (`template_host`).
fn controller_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// The name of a file's owner (`template_uid`), or its numeric id when it has no name.
fn file_owner(path: &std::path::Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(uid) = std::fs::metadata(path).map(|m| m.uid()) else {
        return String::new();
    };
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| uid.to_string())
}

/// Convert to JSON, failing on invalid values (errors from lazy variables) and keeping them readable.
fn to_json_checked(v: &JValue, name: &str) -> Result<Value, TemplateError> {
    if v.is_undefined() || v.is_none() {
        return Ok(Value::Null);
    }
    serde_json::to_value(v).map_err(|e| TemplateError {
        message: crate::redact::redact(&format!("{e} (in {name})")).into_owned(),
        line: None,
        undefined: e.to_string().contains("undefined"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn layer(v: Value) -> Arc<Vars> {
        Arc::new(v.as_object().cloned().unwrap())
    }

    #[test]
    fn variables_are_rendered_lazily_and_recursively() {
        let t = Templar::new();
        let c = Context::new(
            &t,
            vec![
                layer(json!({"registry": "lab.azurecr.io", "tag": "1.5.3"})),
                layer(
                    json!({"image": "{{ registry }}/azureiotedge-agent:{{ tag }}", "imgs": ["{{ image }}"], "n": "{{ 2 + 3 }}"}),
                ),
            ],
        );
        assert_eq!(
            c.render_str("{{ image }}", "t").unwrap(),
            "lab.azurecr.io/azureiotedge-agent:1.5.3"
        );
        assert_eq!(
            c.render_value(&json!("{{ imgs }}"), "t").unwrap(),
            json!(["lab.azurecr.io/azureiotedge-agent:1.5.3"])
        );
        assert_eq!(c.eval_expr("n + 1", "t").unwrap(), json!(6));
        assert_eq!(c.render_str("{{ vars['tag'] }}", "t").unwrap(), "1.5.3");
    }

    #[test]
    fn higher_layers_win_and_broken_vars_fail_only_when_used() {
        let t = Templar::new();
        let c = Context::new(
            &t,
            vec![
                layer(
                    json!({"a": 1, "broken": "{{ nope }}", "loop1": "{{ loop2 }}", "loop2": "{{ loop1 }}"}),
                ),
                layer(json!({"a": 2})),
            ],
        );
        assert_eq!(c.render_str("{{ a }}", "t").unwrap(), "2");
        let e = c.render_str("x{{ broken }}", "task x").unwrap_err();
        assert!(e.message.contains("broken"), "{}", e.message);
        assert!(c
            .render_str("{{ loop1 }}", "t")
            .unwrap_err()
            .message
            .contains("recursive"));
        assert!(!c.eval_condition("missing is defined", "t").unwrap());
        assert!(c.eval_condition("missing", "t").unwrap_err().undefined);
        // Like Ansible: a variable whose template uses something undefined is itself undefined.
        assert!(!c.eval_condition("broken is defined", "t").unwrap());
        assert!(e.message.contains("nope"), "{}", e.message);
    }

    #[test]
    fn lookup_warnings_are_collected_not_printed() {
        let t = Templar::new();
        let c = Context::new(&t, vec![layer(json!({"f": "surely-missing.txt"}))]);
        let c2 = c.with_layer(layer(json!({"x": 1})));
        let v = c2
            .render_str("[{{ lookup('file', f, errors='warn') }}]", "t")
            .unwrap();
        assert_eq!(v, "[]");
        // Shared with the parent context, taken once.
        let w = c.take_warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("lookup('file')") && w[0].contains("surely-missing.txt"),
            "{w:?}"
        );
        assert!(c2.take_warnings().is_empty());
        // errors='ignore' says nothing; a collector of one's own.
        let shared = Arc::new(Warnings::default());
        let c3 = Context::collecting(&t, vec![layer(json!({}))], shared.clone());
        c3.render_str("{{ lookup('file', 'nope', errors='ignore') }}", "t")
            .unwrap();
        assert!(shared.take().is_empty());
        c3.render_str("{{ lookup('file', 'nope', errors='warn') }}", "t")
            .unwrap();
        assert_eq!(shared.take().len(), 1);
        // Not a variable.
        assert!(!c3.contains(WARNINGS_KEY));
        assert!(c3.flatten().get(WARNINGS_KEY).is_none());
    }

    #[test]
    fn with_layer_overrides() {
        let t = Templar::new();
        let c = Context::new(&t, vec![layer(json!({"item": 1, "x": "{{ item }}"}))]);
        let c2 = c.with_layer(layer(json!({"item": 5})));
        assert_eq!(c2.render_str("{{ x }}", "t").unwrap(), "5");
        assert_eq!(c.render_str("{{ x }}", "t").unwrap(), "1");
    }
}
