//! A small Go `text/template` evaluator for `docker ... --format` (the forms verifiers actually use).
//!
//! Supports literal text, `{{.A.B}}` field paths (missing keys print `<no value>` as for decoded JSON),
//! `{{.}}`, `{{json .X}}`, `{{join .X ","}}`, `{{upper .X}}`, `{{lower .X}}`, `{{index .M "key"}}`, docker's
//! `table` prefix and `\t` escapes. Values print the way Go prints decoded JSON (`map[k:v]`, `[a b]`, `<nil>`).
//! It must not support anything that executes code or touches files.

use serde_json::Value;

/// A template error, with docker's wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(pub String);

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Action(Vec<String>),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<Part>,
    /// Whether docker's `table` prefix was used.
    pub table: bool,
}

fn tokenize(action: &str) -> Result<Vec<String>, TemplateError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = action.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let mut s = String::new();
                let mut closed = false;
                while let Some(c2) = chars.next() {
                    match c2 {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                s.push(match n {
                                    'n' => '\n',
                                    't' => '\t',
                                    other => other,
                                });
                            }
                        }
                        '"' => {
                            closed = true;
                            break;
                        }
                        other => s.push(other),
                    }
                }
                if !closed {
                    return Err(TemplateError(
                        "template parsing error: template: :1: unterminated quoted string".into(),
                    ));
                }
                out.push(format!("\"{s}"));
            }
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

impl Template {
    /// Parse a `--format` string.
    pub fn parse(format: &str) -> Result<Template, TemplateError> {
        let mut f = format.replace("\\t", "\t").replace("\\n", "\n");
        let mut table = false;
        if let Some(rest) = f.strip_prefix("table") {
            if rest.is_empty() || rest.starts_with(char::is_whitespace) {
                table = true;
                f = rest.trim_start().to_string();
            }
        }
        let mut parts = Vec::new();
        let mut rest = f.as_str();
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or_else(|| {
                TemplateError("template parsing error: template: :1: unclosed action".into())
            })?;
            let inner = after[..end]
                .trim()
                .trim_start_matches('-')
                .trim_end_matches('-')
                .trim();
            let toks = tokenize(inner)?;
            if toks.is_empty() {
                return Err(TemplateError(
                    "template parsing error: template: :1: missing value for command".into(),
                ));
            }
            let head = &toks[0];
            if !head.starts_with('.')
                && !matches!(
                    head.as_str(),
                    "json" | "join" | "upper" | "lower" | "index" | "title"
                )
            {
                return Err(TemplateError(format!(
                    "template parsing error: template: :1: function \"{head}\" not defined"
                )));
            }
            parts.push(Part::Action(toks));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { parts, table })
    }

    /// The header row for `table` formats (`.ID` -> `CONTAINER ID`, `.Names` -> `NAMES`).
    pub fn header(&self, id_header: &str) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Action(toks) => {
                    let field = toks
                        .iter()
                        .rev()
                        .find(|t| t.starts_with('.'))
                        .cloned()
                        .unwrap_or_default();
                    let last = field.rsplit('.').next().unwrap_or("");
                    let h = match last {
                        "ID" => id_header.to_string(),
                        "CreatedSince" => "CREATED".to_string(),
                        "RunningFor" => "CREATED".to_string(),
                        other => other.to_uppercase(),
                    };
                    out.push_str(&h);
                }
            }
        }
        out
    }

    /// Render against a value.
    pub fn render(&self, data: &Value) -> Result<String, TemplateError> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Action(toks) => out.push_str(&eval(toks, data)?),
            }
        }
        Ok(out)
    }
}

fn lookup<'a>(data: &'a Value, path: &str) -> Option<&'a Value> {
    if path == "." {
        return Some(data);
    }
    let mut cur = data;
    for seg in path.trim_start_matches('.').split('.') {
        cur = cur.get(seg)?;
    }
    Some(cur)
}

fn arg(tok: &str, data: &Value) -> Value {
    if let Some(s) = tok.strip_prefix('"') {
        return Value::String(s.to_string());
    }
    if tok.starts_with('.') {
        return lookup(data, tok).cloned().unwrap_or(Value::Null);
    }
    Value::String(tok.to_string())
}

fn eval(toks: &[String], data: &Value) -> Result<String, TemplateError> {
    let head = toks[0].as_str();
    if head.starts_with('.') {
        return Ok(match lookup(data, head) {
            Some(v) => go_print(v),
            None => "<no value>".into(),
        });
    }
    let args: Vec<Value> = toks[1..].iter().map(|t| arg(t, data)).collect();
    let need = |n: usize| -> Result<(), TemplateError> {
        if args.len() < n {
            Err(TemplateError(format!(
                "template: :1: wrong number of args for {head}: want {n} got {}",
                args.len()
            )))
        } else {
            Ok(())
        }
    };
    match head {
        "json" => {
            need(1)?;
            Ok(serde_json::to_string(&args[0]).unwrap_or_default())
        }
        "join" => {
            need(2)?;
            let sep = args[1].as_str().unwrap_or("");
            Ok(args[0]
                .as_array()
                .map(|a| a.iter().map(go_print).collect::<Vec<_>>().join(sep))
                .unwrap_or_default())
        }
        "upper" => {
            need(1)?;
            Ok(go_print(&args[0]).to_uppercase())
        }
        "lower" => {
            need(1)?;
            Ok(go_print(&args[0]).to_lowercase())
        }
        "title" => {
            need(1)?;
            let s = go_print(&args[0]);
            let mut c = s.chars();
            Ok(match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                None => String::new(),
            })
        }
        "index" => {
            need(2)?;
            let key = &args[1];
            let v = match (&args[0], key) {
                (Value::Object(m), Value::String(k)) => m.get(k).cloned(),
                (Value::Array(a), k) => k
                    .as_str()
                    .and_then(|s| s.parse::<usize>().ok())
                    .and_then(|i| a.get(i).cloned()),
                _ => None,
            };
            Ok(v.map(|v| go_print(&v))
                .unwrap_or_else(|| "<no value>".into()))
        }
        _ => Err(TemplateError(format!(
            "template parsing error: template: :1: function \"{head}\" not defined"
        ))),
    }
}

/// Print a decoded-JSON value the way Go's `fmt` prints `interface{}` values.
pub fn go_print(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                n.as_f64().map(|f| format!("{f}")).unwrap_or_default()
            }
        }
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_print).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            format!(
                "map[{}]",
                keys.iter()
                    .map(|k| format!("{k}:{}", go_print(&m[*k])))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    }
}

/// Align tab-separated rows like Go's tabwriter (docker: min width 0, padding 3).
pub fn tabwrite(rows: &[String], padding: usize, min_width: usize) -> String {
    let split: Vec<Vec<&str>> = rows.iter().map(|r| r.split('\t').collect()).collect();
    let cols = split.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for r in &split {
        for (i, c) in r.iter().enumerate() {
            if i + 1 < r.len() {
                widths[i] = widths[i].max(c.chars().count() + padding).max(min_width);
            }
        }
    }
    let mut out = String::new();
    for r in &split {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            line.push_str(c);
            if i + 1 < r.len() {
                let pad = widths[i].saturating_sub(c.chars().count());
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Align tab-separated rows like the Rust `tabwriter` crate that `iotedge list` uses: a column is
/// `max(minwidth, widest cell) + padding` wide (unlike Go's, where `minwidth` includes the padding).
pub fn tabwrite_rust(rows: &[String], minwidth: usize, padding: usize) -> String {
    let split: Vec<Vec<&str>> = rows.iter().map(|r| r.split('\t').collect()).collect();
    let cols = split.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut widths = vec![minwidth; cols];
    for r in &split {
        for (i, c) in r.iter().enumerate() {
            if i + 1 < r.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let mut out = String::new();
    for r in &split {
        for (i, c) in r.iter().enumerate() {
            out.push_str(c);
            if i + 1 < r.len() {
                out.push_str(&" ".repeat(widths[i] - c.chars().count() + padding));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_fields_json_and_missing_values() {
        let d = json!({"Server": {"Version": "24.0.9+azure-1", "Platform": {"Name": ""}}, "Env": ["A=1", "B=2"]});
        assert_eq!(
            Template::parse("{{.Server.Version}}")
                .unwrap()
                .render(&d)
                .unwrap(),
            "24.0.9+azure-1"
        );
        assert_eq!(
            Template::parse("[{{.Server.Platform.Name}}]")
                .unwrap()
                .render(&d)
                .unwrap(),
            "[]"
        );
        assert_eq!(
            Template::parse("{{json .Env}}")
                .unwrap()
                .render(&d)
                .unwrap(),
            "[\"A=1\",\"B=2\"]"
        );
        assert_eq!(
            Template::parse("{{join .Env \",\"}}")
                .unwrap()
                .render(&d)
                .unwrap(),
            "A=1,B=2"
        );
        assert_eq!(
            Template::parse("{{.Nope.X}}").unwrap().render(&d).unwrap(),
            "<no value>"
        );
        assert_eq!(
            Template::parse("{{.Env}}").unwrap().render(&d).unwrap(),
            "[A=1 B=2]"
        );
        assert_eq!(go_print(&json!({"b": 1, "a": "x"})), "map[a:x b:1]");
        assert!(Template::parse("{{frob .X}}")
            .unwrap_err()
            .0
            .contains("function \"frob\" not defined"));
    }

    #[test]
    fn table_prefix_and_alignment() {
        let t = Template::parse("table {{.ID}}\\t{{.Names}}").unwrap();
        assert!(t.table);
        assert_eq!(t.header("CONTAINER ID"), "CONTAINER ID\tNAMES");
        let s = tabwrite(&["A\tB".into(), "LONGER\tC".into()], 3, 0);
        assert_eq!(s, "A        B\nLONGER   C\n");
        let s = tabwrite_rust(&["NAME\tSTATUS".into(), "edgeAgent\trunning".into()], 15, 2);
        assert_eq!(s, "NAME             STATUS\nedgeAgent        running\n");
    }
}
