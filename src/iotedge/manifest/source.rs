//! A JSON source model that keeps where every value is: [`parse`] reads a deployment manifest (or daemon.json)
//! into [`Node`]s carrying 1-based `line:col`, and reports what a plain JSON parser hides or refuses without a
//! location: duplicate keys (the device keeps only one, silently), a UTF-8 byte-order mark, and comments.
//!
//! Template files (`deployment.template.json`, which the IoT Edge tools turn into a deployment) may hold `//` and
//! `/* */` comments and `${VAR}` placeholders; `allow_comments` accepts comments (returned with their text and
//! line so inline waivers can be read from them). Placeholders inside strings are ordinary string text; callers
//! ask [`is_placeholder`] before judging a value. A bare `${VAR}` where a value belongs is kept as a
//! [`Json::Placeholder`].
//!
//! It must not know IoT Edge: no rule lives here. Pure: no I/O.

/// A position in the source: 1-based line and column (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column (characters).
    pub col: u32,
}

/// A JSON value with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the value starts.
    pub pos: Pos,
    /// Just past where the value ends.
    pub end: Pos,
    /// The value.
    pub val: Json,
}

/// One member of an object: the key (with its position) and the value.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// The key text.
    pub key: String,
    /// Where the key starts.
    pub key_pos: Pos,
    /// The value.
    pub value: Node,
}

/// A JSON value whose children keep their positions; objects keep their members in source order.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number, as written.
    Num(String),
    /// A string (unescaped).
    Str(String),
    /// An array.
    Arr(Vec<Node>),
    /// An object (on duplicate keys the last wins, like serde_json and the IoT Hub service; both are kept here).
    Obj(Vec<Member>),
    /// A bare `${VAR}` in a template file.
    Placeholder(String),
}

/// A comment in a template file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// Where it starts.
    pub pos: Pos,
    /// Its text without the `//` or `/* */`.
    pub text: String,
}

/// Something about the source that is not a parse error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remark {
    /// A key given twice in one object: the second position, the first position, the key.
    DuplicateKey(Pos, Pos, String),
    /// The file starts with a UTF-8 byte-order mark.
    Bom,
    /// A comment in a file that does not allow comments (it is not JSON).
    Comment(Pos),
}

/// A parsed file.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The top-level value.
    pub root: Node,
    /// Comments (template files), in order.
    pub comments: Vec<Comment>,
    /// Duplicate keys, BOM, comments where none are allowed.
    pub remarks: Vec<Remark>,
}

/// A syntax error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// Where.
    pub pos: Pos,
    /// What.
    pub message: String,
}

impl Node {
    /// The member `key` of an object (the last one when the key is duplicated).
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.member(key).map(|m| &m.value)
    }

    /// The member `key` of an object, with its key position.
    pub fn member(&self, key: &str) -> Option<&Member> {
        match &self.val {
            Json::Obj(ms) => ms.iter().rev().find(|m| m.key == key),
            _ => None,
        }
    }

    /// Follow a path of keys.
    pub fn path(&self, keys: &[&str]) -> Option<&Node> {
        keys.iter().try_fold(self, |n, k| n.get(k))
    }

    /// The string value, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.val {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The members, if this is an object.
    pub fn members(&self) -> &[Member] {
        match &self.val {
            Json::Obj(ms) => ms,
            _ => &[],
        }
    }

    /// The items, if this is an array.
    pub fn items(&self) -> &[Node] {
        match &self.val {
            Json::Arr(v) => v,
            _ => &[],
        }
    }

    /// Is this an object?
    pub fn is_obj(&self) -> bool {
        matches!(self.val, Json::Obj(_))
    }

    /// A short name of the value's type, for messages.
    pub fn kind(&self) -> &'static str {
        match self.val {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Num(_) => "a number",
            Json::Str(_) => "a string",
            Json::Arr(_) => "an array",
            Json::Obj(_) => "an object",
            Json::Placeholder(_) => "a placeholder",
        }
    }

    /// The value as serde_json data (placeholders become their `${..}` text), for sizes and reparsing.
    pub fn to_value(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.val {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Num(n) => serde_json::from_str(n).unwrap_or(Value::String(n.clone())),
            Json::Str(s) => Value::String(s.clone()),
            Json::Placeholder(p) => Value::String(p.clone()),
            Json::Arr(v) => Value::Array(v.iter().map(Node::to_value).collect()),
            Json::Obj(ms) => {
                let mut m = serde_json::Map::new();
                for x in ms {
                    m.insert(x.key.clone(), x.value.to_value());
                }
                Value::Object(m)
            }
        }
    }
}

/// Does a string hold a `${VAR}` placeholder (a value the template tools fill in later)?
pub fn is_placeholder(s: &str) -> bool {
    s.find("${").is_some_and(|i| s[i..].contains('}'))
}

/// Parse `text` as JSON with positions. `allow_comments` accepts `//` and `/* */` comments and bare `${VAR}`
/// values (template files); otherwise a comment is parsed past but remarked.
pub fn parse(text: &str, allow_comments: bool) -> Result<Parsed, SyntaxError> {
    let mut remarks = Vec::new();
    let body = match text.strip_prefix('\u{feff}') {
        Some(rest) => {
            remarks.push(Remark::Bom);
            rest
        }
        None => text,
    };
    let mut p = Parser {
        chars: body.chars().collect(),
        i: 0,
        line: 1,
        // An editor shows no column for the BOM: columns count from the first visible character.
        col: 1,
        allow_comments,
        comments: Vec::new(),
        remarks,
        depth: 0,
    };
    p.ws()?;
    let root = p.value()?;
    p.ws()?;
    if p.i < p.chars.len() {
        return Err(p.err("unexpected text after the JSON value"));
    }
    Ok(Parsed {
        root,
        comments: p.comments,
        remarks: p.remarks,
    })
}

struct Parser {
    chars: Vec<char>,
    i: usize,
    line: u32,
    col: u32,
    allow_comments: bool,
    comments: Vec<Comment>,
    remarks: Vec<Remark>,
    depth: usize,
}

/// Deeper nesting than this is refused (no manifest nests this deep; it keeps the recursion bounded).
const MAX_DEPTH: usize = 256;

impl Parser {
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.col,
        }
    }

    fn err(&self, message: &str) -> SyntaxError {
        let found = match self.peek() {
            None => "the end of the file".to_string(),
            Some(c) => format!("`{}`", c.escape_default()),
        };
        SyntaxError {
            pos: self.pos(),
            message: format!("{message} (found {found})"),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn ws(&mut self) -> Result<(), SyntaxError> {
        loop {
            match self.peek() {
                Some(' ' | '\t' | '\n' | '\r') => {
                    self.bump();
                }
                Some('/') => self.comment()?,
                _ => return Ok(()),
            }
        }
    }

    fn comment(&mut self) -> Result<(), SyntaxError> {
        let pos = self.pos();
        let block = match self.chars.get(self.i + 1) {
            Some('/') => false,
            Some('*') => true,
            _ => return Err(self.err("expected a value")),
        };
        self.bump();
        self.bump();
        let mut text = String::new();
        if block {
            loop {
                match self.bump() {
                    None => {
                        return Err(SyntaxError {
                            pos,
                            message: "a `/*` comment is never closed with `*/`".into(),
                        })
                    }
                    Some('*') if self.peek() == Some('/') => {
                        self.bump();
                        break;
                    }
                    Some(c) => text.push(c),
                }
            }
        } else {
            while let Some(c) = self.peek() {
                if c == '\n' {
                    break;
                }
                text.push(c);
                self.bump();
            }
        }
        if self.allow_comments {
            self.comments.push(Comment {
                pos,
                text: text.trim().to_string(),
            });
        } else {
            self.remarks.push(Remark::Comment(pos));
        }
        Ok(())
    }

    fn expect_word(&mut self, w: &str, v: Json, pos: Pos) -> Result<Node, SyntaxError> {
        for want in w.chars() {
            if self.peek() != Some(want) {
                return Err(self.err(&format!("expected `{w}`")));
            }
            self.bump();
        }
        Ok(Node {
            pos,
            end: pos,
            val: v,
        })
    }

    fn value(&mut self) -> Result<Node, SyntaxError> {
        let mut n = self.value_inner()?;
        n.end = self.pos();
        Ok(n)
    }

    fn value_inner(&mut self) -> Result<Node, SyntaxError> {
        let pos = self.pos();
        match self.peek() {
            Some('{') => self.nested(|p| p.object(pos)),
            Some('[') => self.nested(|p| p.array(pos)),
            Some('"') => Ok(Node {
                pos,
                end: pos,
                val: Json::Str(self.string()?),
            }),
            Some('t') => self.expect_word("true", Json::Bool(true), pos),
            Some('f') => self.expect_word("false", Json::Bool(false), pos),
            Some('n') => self.expect_word("null", Json::Null, pos),
            Some('-' | '0'..='9') => self.number(pos),
            Some('$') if self.allow_comments && self.chars.get(self.i + 1) == Some(&'{') => {
                let mut s = String::new();
                while let Some(c) = self.bump() {
                    s.push(c);
                    if c == '}' {
                        return Ok(Node {
                            pos,
                            end: pos,
                            val: Json::Placeholder(s),
                        });
                    }
                }
                Err(SyntaxError {
                    pos,
                    message: "a `${` placeholder is never closed with `}`".into(),
                })
            }
            _ => Err(self.err("expected a JSON value")),
        }
    }

    fn nested(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<Node, SyntaxError>,
    ) -> Result<Node, SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(&format!("nested deeper than {MAX_DEPTH} levels")));
        }
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn object(&mut self, pos: Pos) -> Result<Node, SyntaxError> {
        self.bump();
        let mut members: Vec<Member> = Vec::new();
        let mut seen: std::collections::HashMap<String, Pos> = std::collections::HashMap::new();
        self.ws()?;
        if self.peek() == Some('}') {
            self.bump();
            return Ok(Node {
                pos,
                end: pos,
                val: Json::Obj(members),
            });
        }
        loop {
            self.ws()?;
            if self.peek() != Some('"') {
                return Err(self.err("expected a key in double quotes"));
            }
            let key_pos = self.pos();
            let key = self.string()?;
            self.ws()?;
            if self.peek() != Some(':') {
                return Err(self.err("expected `:` after the key"));
            }
            self.bump();
            self.ws()?;
            let value = self.value()?;
            if let Some(first) = seen.insert(key.clone(), key_pos) {
                self.remarks
                    .push(Remark::DuplicateKey(key_pos, first, key.clone()));
            }
            members.push(Member {
                key,
                key_pos,
                value,
            });
            self.ws()?;
            match self.peek() {
                Some(',') => {
                    self.bump();
                }
                Some('}') => {
                    self.bump();
                    return Ok(Node {
                        pos,
                        end: pos,
                        val: Json::Obj(members),
                    });
                }
                _ => return Err(self.err("expected `,` or `}`")),
            }
        }
    }

    fn array(&mut self, pos: Pos) -> Result<Node, SyntaxError> {
        self.bump();
        let mut items = Vec::new();
        self.ws()?;
        if self.peek() == Some(']') {
            self.bump();
            return Ok(Node {
                pos,
                end: pos,
                val: Json::Arr(items),
            });
        }
        loop {
            self.ws()?;
            items.push(self.value()?);
            self.ws()?;
            match self.peek() {
                Some(',') => {
                    self.bump();
                }
                Some(']') => {
                    self.bump();
                    return Ok(Node {
                        pos,
                        end: pos,
                        val: Json::Arr(items),
                    });
                }
                _ => return Err(self.err("expected `,` or `]`")),
            }
        }
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        let start = self.pos();
        self.bump();
        let mut s = String::new();
        loop {
            match self.bump() {
                None => {
                    return Err(SyntaxError {
                        pos: start,
                        message: "a string is never closed with `\"`".into(),
                    })
                }
                Some('"') => return Ok(s),
                Some('\\') => {
                    let c = self
                        .bump()
                        .ok_or_else(|| self.err("expected an escape"))?;
                    match c {
                        '"' => s.push('"'),
                        '\\' => s.push('\\'),
                        '/' => s.push('/'),
                        'b' => s.push('\u{8}'),
                        'f' => s.push('\u{c}'),
                        'n' => s.push('\n'),
                        'r' => s.push('\r'),
                        't' => s.push('\t'),
                        'u' => {
                            let hi = self.hex4()?;
                            let c = if (0xD800..0xDC00).contains(&hi) {
                                if self.peek() == Some('\\') && self.chars.get(self.i + 1) == Some(&'u')
                                {
                                    self.bump();
                                    self.bump();
                                    let lo = self.hex4()?;
                                    char::from_u32(
                                        0x10000 + ((hi - 0xD800) << 10) + (lo.wrapping_sub(0xDC00)),
                                    )
                                } else {
                                    None
                                }
                            } else {
                                char::from_u32(hi)
                            };
                            s.push(c.unwrap_or('\u{fffd}'));
                        }
                        _ => return Err(self.err("unknown escape in a string")),
                    }
                }
                Some(c) if (c as u32) < 0x20 => {
                    return Err(SyntaxError {
                        pos: Pos {
                            line: self.line,
                            col: self.col.saturating_sub(1).max(1),
                        },
                        message: "a control character (e.g. a line break) inside a string: write it as an escape like `\\n`".into(),
                    })
                }
                Some(c) => s.push(c),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = self
                .peek()
                .and_then(|c| c.to_digit(16))
                .ok_or_else(|| self.err("expected 4 hex digits after `\\u`"))?;
            self.bump();
            v = v * 16 + d;
        }
        Ok(v)
    }

    fn number(&mut self, pos: Pos) -> Result<Node, SyntaxError> {
        let mut s = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E') {
                s.push(c);
                self.bump();
            } else {
                break;
            }
        }
        if serde_json::from_str::<serde_json::Number>(&s).is_err() {
            return Err(SyntaxError {
                pos,
                message: format!("`{s}` is not a JSON number"),
            });
        }
        Ok(Node {
            pos,
            end: pos,
            val: Json::Num(s),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_duplicates_bom_and_comments() {
        let p = parse(
            "{\n  \"a\": {\"b\": 1},\n  \"a\": [true, null, \"x\\u00e9\"]\n}",
            false,
        )
        .unwrap();
        assert_eq!(p.root.get("a").unwrap().pos, Pos { line: 3, col: 8 });
        assert_eq!(p.root.get("a").unwrap().items()[2].as_str(), Some("xé"));
        assert_eq!(
            p.remarks,
            vec![Remark::DuplicateKey(
                Pos { line: 3, col: 3 },
                Pos { line: 2, col: 3 },
                "a".into()
            )]
        );
        let p = parse("\u{feff}{\"a\": 1}", false).unwrap();
        assert_eq!(p.remarks, vec![Remark::Bom]);
        assert_eq!(p.root.get("a").unwrap().pos, Pos { line: 1, col: 7 });
        let t = "{\n // waive EF101\n \"a\": ${X} /* c */\n}";
        let p = parse(t, true).unwrap();
        assert_eq!(p.comments.len(), 2);
        assert_eq!(p.comments[0].text, "waive EF101");
        assert_eq!(
            p.root.get("a").unwrap().val,
            Json::Placeholder("${X}".into())
        );
        let p = parse("{\"a\": 1 // c\n}", false).unwrap();
        assert_eq!(p.remarks, vec![Remark::Comment(Pos { line: 1, col: 9 })]);
        assert!(parse("{\"a\": ${X}}", false).is_err());
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("{\n  \"a\": 1,\n}", false).unwrap_err();
        assert_eq!(e.pos, Pos { line: 3, col: 1 });
        assert!(e.message.contains("expected a key"), "{}", e.message);
        let e = parse("modules:\n  x: 1\n", false).unwrap_err();
        assert_eq!(e.pos, Pos { line: 1, col: 1 });
        assert!(parse("[1, 2", false).is_err());
        assert!(parse("\"abc", false).is_err());
        assert!(parse("01x", false).is_err());
        assert!(parse(&"[".repeat(300), false).is_err());
    }
}
