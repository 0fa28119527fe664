//! Python-compatible parsing that Ansible's inventory loading depends on.
//!
//! Owns the exact re-implementations of the Python parsers an INI inventory relies on: `shlex.split` (POSIX
//! mode, optional `#` comments) and `ast.literal_eval` (how INI values get their types). How values print
//! (`str()`/`repr()`, `json.dumps`) is [`crate::pycompat`]'s. It must not know about groups, hosts or files.

use serde_json::{Map, Number, Value};

use crate::pycompat::{complex_repr, float_repr, repr_value};

// ---------------------------------------------------------------------------------------------------------------
// shlex.split
// ---------------------------------------------------------------------------------------------------------------

/// Why a line could not be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShlexError {
    /// A quote was opened and never closed.
    #[error("No closing quotation")]
    NoClosingQuotation,
    /// A backslash ended the input.
    #[error("No escaped character")]
    NoEscapedCharacter,
}

/// `shlex.split(s, comments=comments, posix=True)`, character for character.
///
/// In Python's shlex a `#` starts a comment even in the middle of a word (`a=b#c` gives `a=b`), unlike sh.
pub fn shlex_split(s: &str, comments: bool) -> Result<Vec<String>, ShlexError> {
    #[derive(Clone, Copy, PartialEq)]
    enum St {
        Space,
        Word,
        Quote(char),
        Escape(char),
        Eof,
    }
    let is_ws = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n');
    let is_comment = |c: char| comments && c == '#';
    let chars: Vec<char> = s.chars().collect();
    let mut pos = 0usize;
    let mut out = Vec::new();
    let mut state = St::Space;
    loop {
        // One call of shlex.read_token.
        let mut token = String::new();
        let mut quoted = false;
        let mut escaped_state = St::Word;
        loop {
            let next = chars.get(pos).copied();
            if next.is_some() {
                pos += 1;
            }
            match state {
                St::Eof => break,
                St::Space => match next {
                    None => {
                        state = St::Eof;
                        break;
                    }
                    Some(c) if is_ws(c) => {
                        if !token.is_empty() || quoted {
                            break;
                        }
                    }
                    Some(c) if is_comment(c) => {
                        // readline(): the rest of the line is dropped.
                        while let Some(&c2) = chars.get(pos) {
                            pos += 1;
                            if c2 == '\n' {
                                break;
                            }
                        }
                    }
                    Some('\\') => {
                        escaped_state = St::Word;
                        state = St::Escape('\\');
                    }
                    Some(c) if c == '\'' || c == '"' => state = St::Quote(c),
                    Some(c) => {
                        token.push(c);
                        state = St::Word;
                    }
                },
                St::Quote(q) => {
                    quoted = true;
                    match next {
                        None => return Err(ShlexError::NoClosingQuotation),
                        Some(c) if c == q => state = St::Word,
                        Some('\\') if q == '"' => {
                            escaped_state = St::Quote(q);
                            state = St::Escape('\\');
                        }
                        Some(c) => token.push(c),
                    }
                }
                St::Escape(esc) => {
                    let Some(c) = next else {
                        return Err(ShlexError::NoEscapedCharacter);
                    };
                    if let St::Quote(q) = escaped_state {
                        if c != esc && c != q {
                            token.push(esc);
                        }
                    }
                    token.push(c);
                    state = escaped_state;
                }
                St::Word => match next {
                    None => {
                        state = St::Eof;
                        break;
                    }
                    Some(c) if is_ws(c) => {
                        state = St::Space;
                        if !token.is_empty() || quoted {
                            break;
                        }
                    }
                    Some(c) if is_comment(c) => {
                        while let Some(&c2) = chars.get(pos) {
                            pos += 1;
                            if c2 == '\n' {
                                break;
                            }
                        }
                        state = St::Space;
                        if !token.is_empty() || quoted {
                            break;
                        }
                    }
                    Some(c) if c == '\'' || c == '"' => state = St::Quote(c),
                    Some('\\') => {
                        escaped_state = St::Word;
                        state = St::Escape('\\');
                    }
                    Some(c) => token.push(c),
                },
            }
        }
        if token.is_empty() && !quoted {
            // posix eof
            if state == St::Eof {
                return Ok(out);
            }
            continue;
        }
        out.push(token);
        if state == St::Eof {
            return Ok(out);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// ast.literal_eval
// ---------------------------------------------------------------------------------------------------------------

/// A Python literal, as `ast.literal_eval` builds it (before Ansible converts it to a variable value).
#[derive(Debug, Clone, PartialEq)]
enum Py {
    None,
    Bool(bool),
    Int(i128),
    Float(f64),
    Complex(f64, f64),
    Str(String),
    Bytes(Vec<u8>),
    Ellipsis,
    List(Vec<Py>),
    Tuple(Vec<Py>),
    Set(Vec<Py>),
    Dict(Vec<(Py, Py)>),
}

/// The outcome of evaluating an INI value the way Ansible's INI plugin does.
#[derive(Debug, Clone, PartialEq)]
pub enum IniValue {
    /// A typed value (or the original text when `literal_eval` rejected it).
    Value(Value),
    /// `literal_eval` raised something other than ValueError/SyntaxError (Ansible fails the whole file).
    Error(String),
}

/// Ansible's INI `_parse_value`: `ast.literal_eval(v)`, falling back to the text itself, then the result
/// converted to a variable (tuples and sets become lists, bytes and complex numbers become strings, `...` the
/// string "...").
pub fn ini_value(v: &str) -> IniValue {
    match literal_eval(v) {
        Ok(py) => IniValue::Value(py_to_value(&py)),
        Err(EvalError::Rejected) => IniValue::Value(Value::String(v.to_string())),
        Err(EvalError::Type(m)) => IniValue::Error(m),
    }
}

#[derive(Debug)]
enum EvalError {
    /// SyntaxError or ValueError: Ansible keeps the text.
    Rejected,
    /// TypeError (unhashable key): Ansible fails.
    Type(String),
}

fn literal_eval(src: &str) -> Result<Py, EvalError> {
    let src = src.trim_start_matches([' ', '\t']);
    if src.contains('\0') {
        return Err(EvalError::Rejected);
    }
    let toks = tokenize(src).ok_or(EvalError::Rejected)?;
    let mut p = Parser { toks, pos: 0 };
    let node = p.expressions()?;
    if p.pos != p.toks.len() {
        return Err(EvalError::Rejected);
    }
    check_hashable(&node)?;
    Ok(node)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(Py),
    Str(Py),
    Name(String),
    Op(&'static str),
}

fn is_id_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}
fn is_id_continue(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

fn tokenize(s: &str) -> Option<Vec<Tok>> {
    let c: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < c.len() {
        let ch = c[i];
        if matches!(ch, ' ' | '\t' | '\x0c' | '\n' | '\r') {
            i += 1;
            continue;
        }
        if ch == '#' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if ch.is_ascii_digit() || (ch == '.' && c.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            let (tok, next) = number(&c, i)?;
            if c.get(next).is_some_and(|&d| is_id_continue(d) || d == '.') {
                return None;
            }
            out.push(Tok::Num(tok));
            i = next;
            continue;
        }
        if is_id_start(ch) {
            let start = i;
            while i < c.len() && is_id_continue(c[i]) {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            if matches!(c.get(i), Some('\'') | Some('"')) {
                let lower = word.to_ascii_lowercase();
                if matches!(lower.as_str(), "r" | "u" | "b" | "br" | "rb") {
                    let (lit, next) = string(&c, i, &lower)?;
                    out.push(Tok::Str(lit));
                    i = next;
                    continue;
                }
                if matches!(lower.as_str(), "f" | "fr" | "rf") {
                    // f-strings are not literals: literal_eval rejects them.
                    return None;
                }
            }
            out.push(Tok::Name(word));
            continue;
        }
        if ch == '\'' || ch == '"' {
            let (lit, next) = string(&c, i, "")?;
            out.push(Tok::Str(lit));
            i = next;
            continue;
        }
        if ch == '.' && c.get(i + 1) == Some(&'.') && c.get(i + 2) == Some(&'.') {
            out.push(Tok::Op("..."));
            i += 3;
            continue;
        }
        let op = match ch {
            '(' => "(",
            ')' => ")",
            '[' => "[",
            ']' => "]",
            '{' => "{",
            '}' => "}",
            ',' => ",",
            ':' => ":",
            '+' => "+",
            '-' => "-",
            _ => "?",
        };
        out.push(Tok::Op(op));
        i += 1;
    }
    Some(out)
}

/// Digits with single underscores between them, per Python's grammar; returns the digits without underscores.
fn digit_part(c: &[char], mut i: usize, ok: impl Fn(char) -> bool) -> Option<(String, usize)> {
    let mut out = String::new();
    if !c.get(i).is_some_and(|&d| ok(d)) {
        return None;
    }
    while i < c.len() {
        if ok(c[i]) {
            out.push(c[i]);
            i += 1;
        } else if c[i] == '_' && c.get(i + 1).is_some_and(|&d| ok(d)) {
            i += 1;
        } else {
            break;
        }
    }
    Some((out, i))
}

fn number(c: &[char], start: usize) -> Option<(Py, usize)> {
    let lower = |i: usize| c.get(i).map(|x| x.to_ascii_lowercase());
    if c[start] == '0' && matches!(lower(start + 1), Some('x') | Some('o') | Some('b')) {
        let (radix, ok): (u32, fn(char) -> bool) = match lower(start + 1) {
            Some('x') => (16, |d: char| d.is_ascii_hexdigit()),
            Some('o') => (8, |d: char| ('0'..='7').contains(&d)),
            _ => (2, |d: char| d == '0' || d == '1'),
        };
        let mut i = start + 2;
        if c.get(i) == Some(&'_') {
            i += 1;
        }
        let (digits, next) = digit_part(c, i, ok)?;
        let v = i128::from_str_radix(&digits, radix).ok()?;
        return Some((Py::Int(v), next));
    }
    let dec = |d: char| d.is_ascii_digit();
    let mut i = start;
    let mut int_part = String::new();
    if c[i] != '.' {
        let (d, n) = digit_part(c, i, dec)?;
        int_part = d;
        i = n;
    }
    let mut is_float = false;
    let mut text = int_part.clone();
    if c.get(i) == Some(&'.') {
        is_float = true;
        i += 1;
        text.push('.');
        if c.get(i).is_some_and(|d| d.is_ascii_digit()) {
            let (d, n) = digit_part(c, i, dec)?;
            text.push_str(&d);
            i = n;
        }
    }
    if matches!(lower(i), Some('e')) {
        let mut j = i + 1;
        let mut exp = String::from("e");
        if matches!(c.get(j), Some('+') | Some('-')) {
            exp.push(c[j]);
            j += 1;
        }
        if let Some((d, n)) = digit_part(c, j, dec) {
            exp.push_str(&d);
            text.push_str(&exp);
            is_float = true;
            i = n;
        } else {
            return None;
        }
    }
    if matches!(lower(i), Some('j')) {
        let f = parse_f64(&text)?;
        return Some((Py::Complex(0.0, f), i + 1));
    }
    if is_float {
        return Some((Py::Float(parse_f64(&text)?), i));
    }
    // Decimal integers: no leading zeros except for zero itself.
    if int_part.len() > 1 && int_part.starts_with('0') && int_part.chars().any(|d| d != '0') {
        return None;
    }
    let v: i128 = int_part.parse().ok()?;
    Some((Py::Int(v), i))
}

fn parse_f64(text: &str) -> Option<f64> {
    let t = if text.starts_with('.') {
        format!("0{text}")
    } else {
        text.to_string()
    };
    let t = t.replace(".e", ".0e");
    let t = if t.ends_with('.') { format!("{t}0") } else { t };
    t.parse::<f64>().ok()
}

/// One string literal starting at the quote at `i`, with prefix `prefix` (lowercase, without the quote).
fn string(c: &[char], i: usize, prefix: &str) -> Option<(Py, usize)> {
    let raw = prefix.contains('r');
    let bytes = prefix.contains('b');
    let q = c[i];
    let triple = c.get(i + 1) == Some(&q) && c.get(i + 2) == Some(&q);
    let mut j = if triple { i + 3 } else { i + 1 };
    let mut s = String::new();
    loop {
        let ch = *c.get(j)?;
        if triple {
            if ch == q && c.get(j + 1) == Some(&q) && c.get(j + 2) == Some(&q) {
                j += 3;
                break;
            }
        } else if ch == q {
            j += 1;
            break;
        } else if ch == '\n' {
            return None;
        }
        if ch == '\\' {
            let nx = *c.get(j + 1)?;
            if raw {
                s.push('\\');
                s.push(nx);
                j += 2;
                continue;
            }
            j += 2;
            match nx {
                '\n' => {}
                '\\' => s.push('\\'),
                '\'' => s.push('\''),
                '"' => s.push('"'),
                'a' => s.push('\x07'),
                'b' => s.push('\x08'),
                'f' => s.push('\x0c'),
                'n' => s.push('\n'),
                'r' => s.push('\r'),
                't' => s.push('\t'),
                'v' => s.push('\x0b'),
                '0'..='7' => {
                    let mut v = nx.to_digit(8)?;
                    for _ in 0..2 {
                        match c.get(j).and_then(|d| d.to_digit(8)) {
                            Some(d) => {
                                v = v * 8 + d;
                                j += 1;
                            }
                            None => break,
                        }
                    }
                    if bytes {
                        s.push(char::from_u32(v & 0xff)?);
                    } else {
                        s.push(char::from_u32(v)?);
                    }
                }
                'x' => {
                    let h: String = c.get(j..j + 2)?.iter().collect();
                    let v = u32::from_str_radix(&h, 16).ok()?;
                    if h.len() != 2 || !h.chars().all(|d| d.is_ascii_hexdigit()) {
                        return None;
                    }
                    s.push(char::from_u32(v)?);
                    j += 2;
                }
                'u' | 'U' if !bytes => {
                    let n = if nx == 'u' { 4 } else { 8 };
                    let h: String = c.get(j..j + n)?.iter().collect();
                    if !h.chars().all(|d| d.is_ascii_hexdigit()) {
                        return None;
                    }
                    s.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
                    j += n;
                }
                'N' if !bytes => return None,
                other => {
                    s.push('\\');
                    s.push(other);
                }
            }
            continue;
        }
        if bytes && !ch.is_ascii() {
            return None;
        }
        s.push(ch);
        j += 1;
    }
    if bytes {
        // Each char is one byte value (escapes produced 0..=255).
        let b: Vec<u8> = s.chars().map(|ch| ch as u32 as u8).collect();
        Some((Py::Bytes(b), j))
    } else {
        Some((Py::Str(s), j))
    }
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Some(Tok::Op(o)) if *o == op)
    }
    fn eat(&mut self, op: &str) -> bool {
        if self.is_op(op) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn starts_expr(&self) -> bool {
        match self.peek() {
            Some(Tok::Op(o)) => matches!(*o, "(" | "[" | "{" | "+" | "-" | "..."),
            Some(_) => true,
            None => false,
        }
    }

    /// Top level of eval mode: `a`, or a bare tuple `a, b,`.
    fn expressions(&mut self) -> Result<Py, EvalError> {
        let (first, _) = self.expr()?;
        if !self.is_op(",") {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat(",") {
            if !self.starts_expr() {
                break;
            }
            items.push(self.expr()?.0);
        }
        Ok(Py::Tuple(items))
    }

    /// An expression: an optionally signed operand, optionally `+`/`-` a complex constant (what literal_eval
    /// accepts of Python's arithmetic).
    fn expr(&mut self) -> Result<(Py, Kind), EvalError> {
        let (left, lkind) = self.unary()?;
        if self.is_op("+") || self.is_op("-") {
            let add = self.is_op("+");
            self.pos += 1;
            let (right, rkind) = self.unary()?;
            // literal_eval: left must be a (signed) int/float constant, right an unsigned complex constant.
            let l = match (left, lkind) {
                (Py::Int(i), Kind::Const | Kind::Signed) => i as f64,
                (Py::Float(f), Kind::Const | Kind::Signed) => f,
                _ => return Err(EvalError::Rejected),
            };
            let (re, im) = match (right, rkind) {
                (Py::Complex(re, im), Kind::Const) => (re, im),
                _ => return Err(EvalError::Rejected),
            };
            let v = if add {
                Py::Complex(l + re, im)
            } else {
                Py::Complex(l - re, -im)
            };
            return Ok((v, Kind::BinOp));
        }
        Ok((left, lkind))
    }

    fn unary(&mut self) -> Result<(Py, Kind), EvalError> {
        if self.is_op("+") || self.is_op("-") {
            let neg = self.is_op("-");
            self.pos += 1;
            let (operand, kind) = self.atom()?;
            if kind != Kind::Const {
                return Err(EvalError::Rejected);
            }
            let v = match operand {
                Py::Int(i) => Py::Int(if neg { -i } else { i }),
                Py::Float(f) => Py::Float(if neg { -f } else { f }),
                Py::Complex(re, im) if neg => Py::Complex(-re, -im),
                c @ Py::Complex(..) => c,
                _ => return Err(EvalError::Rejected),
            };
            return Ok((v, Kind::Signed));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<(Py, Kind), EvalError> {
        let tok = self.peek().cloned().ok_or(EvalError::Rejected)?;
        self.pos += 1;
        let v = match tok {
            Tok::Num(n) => n,
            Tok::Str(first) => {
                // Implicit concatenation of adjacent literals (str with str, bytes with bytes).
                let mut acc = first;
                while let Some(Tok::Str(next)) = self.peek().cloned() {
                    self.pos += 1;
                    acc = match (acc, next) {
                        (Py::Str(a), Py::Str(b)) => Py::Str(a + &b),
                        (Py::Bytes(mut a), Py::Bytes(b)) => {
                            a.extend(b);
                            Py::Bytes(a)
                        }
                        _ => return Err(EvalError::Rejected),
                    };
                }
                acc
            }
            Tok::Name(n) => match n.as_str() {
                "True" => Py::Bool(true),
                "False" => Py::Bool(false),
                "None" => Py::None,
                "set"
                    if self.is_op("(")
                        && matches!(self.toks.get(self.pos + 1), Some(Tok::Op(")"))) =>
                {
                    self.pos += 2;
                    return Ok((Py::Set(Vec::new()), Kind::Container));
                }
                _ => return Err(EvalError::Rejected),
            },
            Tok::Op("...") => Py::Ellipsis,
            Tok::Op("(") => {
                if self.eat(")") {
                    return Ok((Py::Tuple(Vec::new()), Kind::Container));
                }
                let first = self.expr()?;
                if self.eat(")") {
                    // Parentheses are not nodes: `(1)` is the constant 1.
                    return Ok(first);
                }
                let mut items = vec![first.0];
                while self.eat(",") {
                    if self.is_op(")") {
                        break;
                    }
                    items.push(self.expr()?.0);
                }
                if !self.eat(")") {
                    return Err(EvalError::Rejected);
                }
                return Ok((Py::Tuple(items), Kind::Container));
            }
            Tok::Op("[") => {
                let mut items = Vec::new();
                while !self.is_op("]") {
                    items.push(self.expr()?.0);
                    if !self.eat(",") {
                        break;
                    }
                }
                if !self.eat("]") {
                    return Err(EvalError::Rejected);
                }
                return Ok((Py::List(items), Kind::Container));
            }
            Tok::Op("{") => {
                if self.eat("}") {
                    return Ok((Py::Dict(Vec::new()), Kind::Container));
                }
                let (first, _) = self.expr()?;
                if self.eat(":") {
                    let (v, _) = self.expr()?;
                    let mut items = vec![(first, v)];
                    while self.eat(",") {
                        if self.is_op("}") {
                            break;
                        }
                        let (k, _) = self.expr()?;
                        if !self.eat(":") {
                            return Err(EvalError::Rejected);
                        }
                        items.push((k, self.expr()?.0));
                    }
                    if !self.eat("}") {
                        return Err(EvalError::Rejected);
                    }
                    return Ok((Py::Dict(items), Kind::Container));
                }
                let mut items = vec![first];
                while self.eat(",") {
                    if self.is_op("}") {
                        break;
                    }
                    items.push(self.expr()?.0);
                }
                if !self.eat("}") {
                    return Err(EvalError::Rejected);
                }
                return Ok((Py::Set(items), Kind::Container));
            }
            _ => return Err(EvalError::Rejected),
        };
        Ok((v, Kind::Const))
    }
}

/// What kind of AST node a parsed value came from (literal_eval's arithmetic rules depend on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A constant (number, string, True/False/None, `...`), possibly parenthesised.
    Const,
    /// A unary `+`/`-` applied to a numeric constant.
    Signed,
    /// `real ± complex`.
    BinOp,
    /// A list, tuple, set or dict.
    Container,
}

fn check_hashable(p: &Py) -> Result<(), EvalError> {
    fn hashable(p: &Py) -> bool {
        match p {
            Py::List(_) | Py::Dict(_) | Py::Set(_) => false,
            Py::Tuple(items) => items.iter().all(hashable),
            _ => true,
        }
    }
    match p {
        Py::List(items) | Py::Tuple(items) => items.iter().try_for_each(check_hashable),
        Py::Set(items) => {
            for i in items {
                if !hashable(i) {
                    return Err(EvalError::Type(format!(
                        "unhashable type: '{}'",
                        py_type(i)
                    )));
                }
                check_hashable(i)?;
            }
            Ok(())
        }
        Py::Dict(items) => {
            for (k, v) in items {
                if !hashable(k) {
                    return Err(EvalError::Type(format!(
                        "unhashable type: '{}'",
                        py_type(k)
                    )));
                }
                check_hashable(v)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn py_type(p: &Py) -> &'static str {
    match p {
        Py::List(_) => "list",
        Py::Dict(_) => "dict",
        Py::Set(_) => "set",
        _ => "object",
    }
}

fn py_to_value(p: &Py) -> Value {
    match p {
        Py::None => Value::Null,
        Py::Bool(b) => Value::Bool(*b),
        Py::Int(i) => {
            if let Ok(v) = i64::try_from(*i) {
                Value::from(v)
            } else if let Ok(v) = u64::try_from(*i) {
                Value::from(v)
            } else {
                Value::String(i.to_string())
            }
        }
        Py::Float(f) => Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(float_repr(*f))),
        Py::Complex(re, im) => Value::String(complex_repr(*re, *im)),
        Py::Str(s) => Value::String(s.clone()),
        Py::Bytes(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
        Py::Ellipsis => Value::String("...".into()),
        Py::List(items) | Py::Tuple(items) => Value::Array(items.iter().map(py_to_value).collect()),
        Py::Set(items) => {
            let mut out: Vec<Value> = Vec::new();
            for i in items {
                let v = py_to_value(i);
                if !out.contains(&v) {
                    out.push(v);
                }
            }
            Value::Array(out)
        }
        Py::Dict(items) => {
            let mut m = Map::new();
            for (k, v) in items {
                m.insert(dict_key(k), py_to_value(v));
            }
            Value::Object(m)
        }
    }
}

/// How `json.dumps` spells a non-string dict key.
fn dict_key(k: &Py) -> String {
    match k {
        Py::Str(s) => s.clone(),
        Py::None => "null".into(),
        Py::Bool(b) => b.to_string(),
        Py::Int(i) => i.to_string(),
        Py::Float(f) => float_repr(*f),
        other => repr_value(&py_to_value(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(s: &str) -> Value {
        match ini_value(s) {
            IniValue::Value(v) => v,
            IniValue::Error(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn shlex_matches_python() {
        let cases: &[(&str, &[&str])] = &[
            ("a b  c", &["a", "b", "c"]),
            (
                "h1 x=\"hello world\" y='a b'",
                &["h1", "x=hello world", "y=a b"],
            ),
            ("h1 cm=a#b c=d", &["h1", "cm=a"]),
            ("h1 # comment", &["h1"]),
            ("a\\ b c", &["a b", "c"]),
            ("x=\"a\\\"b\\c\"", &["x=a\"b\\c"]),
            ("x='a\\b'", &["x=a\\b"]),
            ("x=\"\" y", &["x=", "y"]),
            ("''", &[""]),
            ("m=\"'03#pa33w0rd'\"", &["m='03#pa33w0rd'"]),
        ];
        for (input, want) in cases {
            let got = shlex_split(input, true).unwrap();
            assert_eq!(got, *want, "{input}");
        }
        assert_eq!(
            shlex_split("a 'b", true),
            Err(ShlexError::NoClosingQuotation)
        );
        assert_eq!(
            shlex_split("a\\", true),
            Err(ShlexError::NoEscapedCharacter)
        );
        assert_eq!(shlex_split("-o A#B", false).unwrap(), vec!["-o", "A#B"]);
    }

    #[test]
    fn literal_eval_types() {
        assert_eq!(ev("22"), json!(22));
        assert_eq!(ev("-5"), json!(-5));
        assert_eq!(ev("+5"), json!(5));
        assert_eq!(ev("0x1F"), json!(31));
        assert_eq!(ev("0o17"), json!(15));
        assert_eq!(ev("0b101"), json!(5));
        assert_eq!(ev("1_000"), json!(1000));
        assert_eq!(ev("0755"), json!("0755"));
        assert_eq!(ev("00"), json!(0));
        assert_eq!(ev("1.5"), json!(1.5));
        assert_eq!(ev("1e3"), json!(1000.0));
        assert_eq!(ev(".5"), json!(0.5));
        assert_eq!(ev("5."), json!(5.0));
        assert_eq!(ev("True"), json!(true));
        assert_eq!(ev("yes"), json!("yes"));
        assert_eq!(ev("true"), json!("true"));
        assert_eq!(ev("None"), json!(null));
        assert_eq!(ev("'0755'"), json!("0755"));
        assert_eq!(ev("\"a\" 'b'"), json!("ab"));
        assert_eq!(ev("b'x'"), json!("x"));
        assert_eq!(ev("r'a\\n'"), json!("a\\n"));
        assert_eq!(ev("'a\\n'"), json!("a\n"));
        assert_eq!(ev("[1, 'a']"), json!([1, "a"]));
        assert_eq!(ev("(1,)"), json!([1]));
        assert_eq!(ev("1,2"), json!([1, 2]));
        assert_eq!(ev("{'a': 1}"), json!({"a": 1}));
        assert_eq!(ev("{1: 2}"), json!({"1": 2}));
        assert_eq!(ev("{1, 2, 1}"), json!([1, 2]));
        assert_eq!(ev("set()"), json!([]));
        assert_eq!(ev("..."), json!("..."));
        assert_eq!(ev("1j"), json!("1j"));
        assert_eq!(ev("1+2j"), json!("(1+2j)"));
        assert_eq!(ev("-1j"), json!("(-0-1j)"));
        assert_eq!(ev("8080 # comment"), json!(8080));
        assert_eq!(ev("hello # comment"), json!("hello # comment"));
        assert_eq!(ev("  7"), json!(7));
        assert_eq!(ev("{a:1}"), json!("{a:1}"));
        assert_eq!(ev("1+2"), json!("1+2"));
        assert_eq!(ev("--1"), json!("--1"));
        assert_eq!(ev("f'x'"), json!("f'x'"));
        assert_eq!(ev("-(-1)"), json!("-(-1)"));
        assert_eq!(ev("-(1)"), json!(-1));
        assert_eq!(ev("1+(-2j)"), json!("1+(-2j)"));
        assert_eq!(ev("[1+2j]"), json!(["(1+2j)"]));
        assert_eq!(ev("-True"), json!("-True"));
        assert_eq!(ev(""), json!(""));
        assert_eq!(ev("1abc"), json!("1abc"));
        assert_eq!(ev("1.2.3.4"), json!("1.2.3.4"));
        assert_eq!(ev("10.0.0.1"), json!("10.0.0.1"));
        assert_eq!(ev("/usr/bin/python3"), json!("/usr/bin/python3"));
        assert!(matches!(ini_value("{[1]: 2}"), IniValue::Error(_)));
    }
}
