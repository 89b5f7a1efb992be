//! `$filter`: the OData expression language as SensorThings 1.1 uses it (comparisons,
//! logical and arithmetic operators, string, date and geospatial functions), parsed once
//! and then either evaluated on an entity in memory or planned as a DataFusion expression
//! over a dataset's released rows (Observations).

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde_json::Value;

use super::StaError;
use super::geo::Polygon;

/// Deepest nesting of parentheses, function calls and negations accepted.
const MAX_DEPTH: usize = 64;
/// Most binary operators one expression may have.
const MAX_OPERATORS: usize = 256;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Literal(Literal),
    /// A property path such as `name`, `properties/dataset` or `Thing/name`.
    Path(Vec<String>),
    Not(Box<Expr>),
    Negate(Box<Expr>),
    Binary(Box<Expr>, Op, Box<Expr>),
    Call(Function, Vec<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Null,
    Bool(bool),
    Number(f64),
    Text(String),
    Time(DateTime<Utc>),
    Geometry(Polygon),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    And,
    Or,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Function {
    SubstringOf,
    StartsWith,
    EndsWith,
    Contains,
    Length,
    IndexOf,
    ToLower,
    ToUpper,
    Trim,
    Concat,
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Now,
    Round,
    Floor,
    Ceiling,
    Intersects,
    Within,
}

impl Function {
    fn named(name: &str) -> Option<(Self, usize)> {
        Some(match name {
            "substringof" => (Self::SubstringOf, 2),
            "startswith" => (Self::StartsWith, 2),
            "endswith" => (Self::EndsWith, 2),
            "contains" => (Self::Contains, 2),
            "length" => (Self::Length, 1),
            "indexof" => (Self::IndexOf, 2),
            "tolower" => (Self::ToLower, 1),
            "toupper" => (Self::ToUpper, 1),
            "trim" => (Self::Trim, 1),
            "concat" => (Self::Concat, 2),
            "year" => (Self::Year, 1),
            "month" => (Self::Month, 1),
            "day" => (Self::Day, 1),
            "hour" => (Self::Hour, 1),
            "minute" => (Self::Minute, 1),
            "second" => (Self::Second, 1),
            "now" => (Self::Now, 0),
            "round" => (Self::Round, 1),
            "floor" => (Self::Floor, 1),
            "ceiling" => (Self::Ceiling, 1),
            "geo.intersects" | "st_intersects" => (Self::Intersects, 2),
            "st_within" => (Self::Within, 2),
            _ => return None,
        })
    }
}

/// Parses a `$filter` expression; the error names what is wrong and where.
pub(crate) fn parse(text: &str) -> Result<Expr, StaError> {
    let mut parser = Parser { tokens: tokenize(text)?, at: 0, depth: 0, operators: 0 };
    let expr = parser.or()?;
    match parser.tokens.get(parser.at) {
        None => Ok(expr),
        Some(token) => Err(bad(format!("unexpected `{}`", token.text()))),
    }
}

fn bad(reason: impl std::fmt::Display) -> StaError {
    StaError::bad_request(format!("$filter: {reason}"))
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Literal(Literal),
    Open,
    Close,
    Comma,
    Minus,
}

impl Token {
    fn text(&self) -> String {
        match self {
            Self::Word(word) => word.clone(),
            Self::Literal(literal) => format!("{literal:?}"),
            Self::Open => "(".into(),
            Self::Close => ")".into(),
            Self::Comma => ",".into(),
            Self::Minus => "-".into(),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, StaError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => (tokens.push(Token::Open), i += 1).1,
            ')' => (tokens.push(Token::Close), i += 1).1,
            ',' => (tokens.push(Token::Comma), i += 1).1,
            '-' if !chars.get(i + 1).is_some_and(char::is_ascii_digit) => (tokens.push(Token::Minus), i += 1).1,
            '\'' => {
                let (text, next) = quoted(&chars, i)?;
                tokens.push(Token::Literal(Literal::Text(text)));
                i = next;
            }
            c if c.is_ascii_digit() || c == '-' => {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || ".:+-".contains(chars[i])) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                tokens.push(Token::Literal(number_or_time(&word)?));
            }
            c if c.is_alphabetic() || c == '@' || c == '$' || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || "_./@$".contains(chars[i])) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                if chars.get(i) == Some(&'\'') && matches!(word.as_str(), "geography" | "geometry") {
                    let (text, next) = quoted(&chars, i)?;
                    tokens.push(Token::Literal(Literal::Geometry(Polygon::from_wkt(&text).map_err(bad)?)));
                    i = next;
                } else {
                    tokens.push(match word.as_str() {
                        "true" => Token::Literal(Literal::Bool(true)),
                        "false" => Token::Literal(Literal::Bool(false)),
                        "null" => Token::Literal(Literal::Null),
                        _ => Token::Word(word),
                    });
                }
            }
            other => return Err(bad(format!("unexpected character `{other}` at {i}"))),
        }
    }
    Ok(tokens)
}

/// The text of the quoted string starting at `start` (`''` is a quote), and what follows.
fn quoted(chars: &[char], start: usize) -> Result<(String, usize), StaError> {
    let mut text = String::new();
    let mut i = start + 1;
    loop {
        match chars.get(i) {
            None => return Err(bad(format!("the string starting at {start} does not end"))),
            Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                text.push('\'');
                i += 2;
            }
            Some('\'') => return Ok((text, i + 1)),
            Some(c) => {
                text.push(*c);
                i += 1;
            }
        }
    }
}

fn number_or_time(word: &str) -> Result<Literal, StaError> {
    if let Ok(number) = word.parse::<f64>() {
        return Ok(Literal::Number(number));
    }
    DateTime::parse_from_rfc3339(word)
        .map(|t| Literal::Time(t.with_timezone(&Utc)))
        .map_err(|_| bad(format!("`{word}` is neither a number nor an ISO 8601 time such as 2026-03-01T00:00:00Z")))
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    /// Nesting at the current token.
    depth: usize,
    /// Binary operators so far.
    operators: usize,
}

impl Parser {
    fn peek_word(&self) -> Option<&str> {
        match self.tokens.get(self.at) {
            Some(Token::Word(word)) => Some(word.as_str()),
            _ => None,
        }
    }

    /// Parses one level deeper with `inner`.
    fn nested(&mut self, inner: fn(&mut Self) -> Result<Expr, StaError>) -> Result<Expr, StaError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(bad(format!("nested deeper than {MAX_DEPTH}")));
        }
        let parsed = inner(self);
        self.depth -= 1;
        parsed
    }

    fn operator(&mut self) -> Result<(), StaError> {
        self.operators += 1;
        if self.operators > MAX_OPERATORS { Err(bad(format!("more than {MAX_OPERATORS} operators"))) } else { Ok(()) }
    }

    fn binary(&mut self, ops: &[(&str, Op)], next: fn(&mut Self) -> Result<Expr, StaError>) -> Result<Expr, StaError> {
        let mut left = next(self)?;
        while let Some(op) = self.peek_word().and_then(|w| ops.iter().find(|(name, _)| *name == w)).map(|(_, op)| *op) {
            self.at += 1;
            self.operator()?;
            left = Expr::Binary(Box::new(left), op, Box::new(next(self)?));
        }
        Ok(left)
    }

    fn or(&mut self) -> Result<Expr, StaError> {
        self.binary(&[("or", Op::Or)], Self::and)
    }

    fn and(&mut self) -> Result<Expr, StaError> {
        self.binary(&[("and", Op::And)], Self::not)
    }

    fn not(&mut self) -> Result<Expr, StaError> {
        if self.peek_word() == Some("not") {
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.nested(Self::not)?)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, StaError> {
        const OPS: [(&str, Op); 6] =
            [("eq", Op::Eq), ("ne", Op::Ne), ("gt", Op::Gt), ("ge", Op::Ge), ("lt", Op::Lt), ("le", Op::Le)];
        let left = self.additive()?;
        match self.peek_word().and_then(|w| OPS.iter().find(|(name, _)| *name == w)) {
            Some((_, op)) => {
                self.at += 1;
                self.operator()?;
                Ok(Expr::Binary(Box::new(left), *op, Box::new(self.additive()?)))
            }
            None => Ok(left),
        }
    }

    fn additive(&mut self) -> Result<Expr, StaError> {
        self.binary(&[("add", Op::Add), ("sub", Op::Sub)], Self::multiplicative)
    }

    fn multiplicative(&mut self) -> Result<Expr, StaError> {
        self.binary(&[("mul", Op::Mul), ("div", Op::Div), ("mod", Op::Mod)], Self::unary)
    }

    fn unary(&mut self) -> Result<Expr, StaError> {
        if self.tokens.get(self.at) == Some(&Token::Minus) {
            self.at += 1;
            return Ok(Expr::Negate(Box::new(self.nested(Self::unary)?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, StaError> {
        let token = self.tokens.get(self.at).cloned().ok_or_else(|| bad("the expression ends too early"))?;
        self.at += 1;
        match token {
            Token::Open => {
                let inner = self.nested(Self::or)?;
                self.expect(&Token::Close)?;
                Ok(inner)
            }
            Token::Literal(literal) => Ok(Expr::Literal(literal)),
            Token::Word(word) if self.tokens.get(self.at) == Some(&Token::Open) => {
                let (function, arity) =
                    Function::named(&word).ok_or_else(|| bad(format!("unknown function `{word}`")))?;
                self.at += 1;
                let mut arguments = Vec::new();
                if self.tokens.get(self.at) == Some(&Token::Close) {
                    self.at += 1;
                } else {
                    loop {
                        arguments.push(self.nested(Self::or)?);
                        match self.tokens.get(self.at) {
                            Some(Token::Comma) => self.at += 1,
                            Some(Token::Close) => {
                                self.at += 1;
                                break;
                            }
                            _ => return Err(bad(format!("`{word}(` is not closed"))),
                        }
                    }
                }
                if arguments.len() != arity {
                    return Err(bad(format!("`{word}` takes {arity} arguments, not {}", arguments.len())));
                }
                Ok(Expr::Call(function, arguments))
            }
            Token::Word(word) => Ok(Expr::Path(word.split('/').map(str::to_owned).collect())),
            other => Err(bad(format!("unexpected `{}`", other.text()))),
        }
    }

    fn expect(&mut self, token: &Token) -> Result<(), StaError> {
        if self.tokens.get(self.at) == Some(token) {
            self.at += 1;
            Ok(())
        } else {
            Err(bad(format!("expected `{}`", token.text())))
        }
    }
}

/// A value while an expression is evaluated in memory.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    Null,
    Bool(bool),
    Number(f64),
    Text(String),
    Time(DateTime<Utc>),
    /// A GeoJSON geometry (a point is what entities carry).
    Point(f64, f64),
    Polygon(Polygon),
}

impl Scalar {
    /// A property's JSON value as a scalar: a GeoJSON point as a point, and text that reads
    /// as a time stays text until it is compared with a time.
    pub(crate) fn of_json(value: &Value) -> Self {
        match value {
            Value::Null => Self::Null,
            Value::Bool(b) => Self::Bool(*b),
            Value::Number(n) => n.as_f64().map_or(Self::Null, Self::Number),
            Value::String(s) => Self::Text(s.clone()),
            Value::Object(object) => match (object.get("type").and_then(Value::as_str), object.get("coordinates")) {
                (Some("Point"), Some(Value::Array(xy))) => {
                    match (xy.first().and_then(Value::as_f64), xy.get(1).and_then(Value::as_f64)) {
                        (Some(x), Some(y)) => Self::Point(x, y),
                        _ => Self::Null,
                    }
                }
                _ => Self::Null,
            },
            Value::Array(_) => Self::Null,
        }
    }

    fn time(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::Time(t) => Some(*t),
            // An interval `start/end` compares by its start, as FROST does.
            Self::Text(s) => {
                DateTime::parse_from_rfc3339(s.split('/').next().unwrap_or(s)).ok().map(|t| t.with_timezone(&Utc))
            }
            _ => None,
        }
    }

    fn number(&self) -> Option<f64> {
        match self {
            Self::Number(n) => Some(*n),
            _ => None,
        }
    }

    fn text(&self) -> Option<&str> {
        match self {
            Self::Text(s) => Some(s),
            _ => None,
        }
    }

    fn truthy(&self) -> bool {
        matches!(self, Self::Bool(true))
    }
}

/// Where a path's value comes from while evaluating in memory.
pub(crate) trait Properties {
    fn property(&self, path: &[String]) -> Scalar;
}

impl Expr {
    /// Whether the entity whose properties `entity` gives matches.
    pub(crate) fn matches(&self, entity: &dyn Properties) -> bool {
        self.eval(entity).truthy()
    }

    fn eval(&self, entity: &dyn Properties) -> Scalar {
        match self {
            Self::Literal(literal) => literal.scalar(),
            Self::Path(path) => entity.property(path),
            Self::Not(inner) => match inner.eval(entity) {
                Scalar::Bool(b) => Scalar::Bool(!b),
                _ => Scalar::Null,
            },
            Self::Negate(inner) => inner.eval(entity).number().map_or(Scalar::Null, |n| Scalar::Number(-n)),
            Self::Binary(left, op, right) => binary(left.eval(entity), *op, right.eval(entity)),
            Self::Call(function, arguments) => {
                let values: Vec<Scalar> = arguments.iter().map(|a| a.eval(entity)).collect();
                call(*function, &values)
            }
        }
    }
}

impl Literal {
    fn scalar(&self) -> Scalar {
        match self {
            Self::Null => Scalar::Null,
            Self::Bool(b) => Scalar::Bool(*b),
            Self::Number(n) => Scalar::Number(*n),
            Self::Text(s) => Scalar::Text(s.clone()),
            Self::Time(t) => Scalar::Time(*t),
            Self::Geometry(polygon) => Scalar::Polygon(polygon.clone()),
        }
    }
}

fn binary(left: Scalar, op: Op, right: Scalar) -> Scalar {
    use std::cmp::Ordering;
    match op {
        Op::And => Scalar::Bool(left.truthy() && right.truthy()),
        Op::Or => Scalar::Bool(left.truthy() || right.truthy()),
        Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Mod => match (left.number(), right.number()) {
            (Some(a), Some(b)) => Scalar::Number(match op {
                Op::Add => a + b,
                Op::Sub => a - b,
                Op::Mul => a * b,
                Op::Div => a / b,
                _ => a % b,
            }),
            _ => Scalar::Null,
        },
        Op::Eq | Op::Ne | Op::Gt | Op::Ge | Op::Lt | Op::Le => {
            let ordering: Option<Ordering> = match (&left, &right) {
                (Scalar::Null, Scalar::Null) => Some(Ordering::Equal),
                (Scalar::Null, _) | (_, Scalar::Null) => None,
                (Scalar::Time(_), _) | (_, Scalar::Time(_)) => left.time().zip(right.time()).map(|(a, b)| a.cmp(&b)),
                (Scalar::Number(a), Scalar::Number(b)) => a.partial_cmp(b),
                (Scalar::Text(a), Scalar::Text(b)) => Some(a.cmp(b)),
                (Scalar::Bool(a), Scalar::Bool(b)) => Some(a.cmp(b)),
                _ => None,
            };
            let holds = match (op, ordering) {
                (Op::Ne, None) => {
                    !(left == Scalar::Null && right == Scalar::Null) && (left == Scalar::Null || right == Scalar::Null)
                }
                (_, None) => false,
                (Op::Eq, Some(o)) => o == Ordering::Equal,
                (Op::Ne, Some(o)) => o != Ordering::Equal,
                (Op::Gt, Some(o)) => o == Ordering::Greater,
                (Op::Ge, Some(o)) => o != Ordering::Less,
                (Op::Lt, Some(o)) => o == Ordering::Less,
                (_, Some(o)) => o != Ordering::Greater,
            };
            Scalar::Bool(holds)
        }
    }
}

fn call(function: Function, values: &[Scalar]) -> Scalar {
    let text = |i: usize| values.get(i).and_then(Scalar::text);
    let both = || text(0).zip(text(1));
    let time = || values.first().and_then(Scalar::time);
    let number = || values.first().and_then(Scalar::number);
    let int = |n: u32| Scalar::Number(f64::from(n));
    match function {
        Function::SubstringOf => both().map_or(Scalar::Null, |(needle, hay)| Scalar::Bool(hay.contains(needle))),
        Function::Contains => both().map_or(Scalar::Null, |(hay, needle)| Scalar::Bool(hay.contains(needle))),
        Function::StartsWith => both().map_or(Scalar::Null, |(hay, prefix)| Scalar::Bool(hay.starts_with(prefix))),
        Function::EndsWith => both().map_or(Scalar::Null, |(hay, suffix)| Scalar::Bool(hay.ends_with(suffix))),
        Function::Length => text(0).map_or(Scalar::Null, |s| Scalar::Number(s.chars().count() as f64)),
        Function::IndexOf => both().map_or(Scalar::Null, |(hay, needle)| {
            Scalar::Number(hay.find(needle).map_or(-1.0, |at| hay[..at].chars().count() as f64))
        }),
        Function::ToLower => text(0).map_or(Scalar::Null, |s| Scalar::Text(s.to_lowercase())),
        Function::ToUpper => text(0).map_or(Scalar::Null, |s| Scalar::Text(s.to_uppercase())),
        Function::Trim => text(0).map_or(Scalar::Null, |s| Scalar::Text(s.trim().to_owned())),
        Function::Concat => both().map_or(Scalar::Null, |(a, b)| Scalar::Text(format!("{a}{b}"))),
        Function::Year => time().map_or(Scalar::Null, |t| Scalar::Number(f64::from(t.year()))),
        Function::Month => time().map_or(Scalar::Null, |t| int(t.month())),
        Function::Day => time().map_or(Scalar::Null, |t| int(t.day())),
        Function::Hour => time().map_or(Scalar::Null, |t| int(t.hour())),
        Function::Minute => time().map_or(Scalar::Null, |t| int(t.minute())),
        Function::Second => time().map_or(Scalar::Null, |t| int(t.second())),
        Function::Now => Scalar::Time(Utc::now()),
        Function::Round => number().map_or(Scalar::Null, |n| Scalar::Number(n.round())),
        Function::Floor => number().map_or(Scalar::Null, |n| Scalar::Number(n.floor())),
        Function::Ceiling => number().map_or(Scalar::Null, |n| Scalar::Number(n.ceil())),
        Function::Intersects | Function::Within => match (values.first(), values.get(1)) {
            (Some(Scalar::Point(x, y)), Some(Scalar::Polygon(polygon)))
            | (Some(Scalar::Polygon(polygon)), Some(Scalar::Point(x, y))) => Scalar::Bool(polygon.contains(*x, *y)),
            _ => Scalar::Null,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Entity(HashMap<&'static str, Value>);

    impl Properties for Entity {
        fn property(&self, path: &[String]) -> Scalar {
            self.0.get(path.join("/").as_str()).map_or(Scalar::Null, Scalar::of_json)
        }
    }

    fn entity() -> Entity {
        Entity(HashMap::from([
            ("name", Value::from("Detmold Werre")),
            ("result", Value::from(87.5)),
            ("phenomenonTime", Value::from("2026-03-01T12:00:00Z")),
            ("location", serde_json::json!({"type": "Point", "coordinates": [8.88, 51.94]})),
            ("Thing/name", Value::from("Pegel")),
        ]))
    }

    fn holds(filter: &str) -> bool {
        parse(filter).unwrap_or_else(|e| panic!("{filter}: {e}")).matches(&entity())
    }

    #[test]
    fn the_standards_examples_evaluate() {
        assert!(holds("result gt 80 and result le 87.5"));
        assert!(holds("not (result lt 10) or name eq 'x'"));
        assert!(holds("result add 2.5 eq 90 and result mul 2 gt 170 and result mod 2 eq 1.5"));
        assert!(holds(
            "phenomenonTime gt 2026-03-01T11:00:00Z and not (phenomenonTime lt 2026-03-01T13:00:00.000+01:00)"
        ));
        assert!(holds("year(phenomenonTime) eq 2026 and month(phenomenonTime) eq 3 and hour(phenomenonTime) eq 12"));
        assert!(holds("substringof('Werre', name) and startswith(name, 'Det') and endswith(name, 'rre')"));
        assert!(holds("contains(name, 'mold') and length(name) eq 13 and indexof(name, 'Werre') eq 8"));
        assert!(holds("tolower(name) eq 'detmold werre' and toupper(Thing/name) eq 'PEGEL'"));
        assert!(holds("geo.intersects(location, geography'POLYGON((8 51, 9 51, 9 52, 8 52, 8 51))')"));
        assert!(!holds("st_within(location, geography'POLYGON((7 51, 8 51, 8 52, 7 52, 7 51))')"));
        assert!(holds("missing eq null and name ne null and -result lt 0"));
        assert!(holds("name eq 'Detmold Werre' and 'it''s' ne name"));
    }

    #[test]
    fn bad_filters_say_what_is_wrong() {
        for (filter, says) in [
            ("result gt", "ends too early"),
            ("result gt 1 1", "unexpected"),
            ("frobnicate(name)", "unknown function `frobnicate`"),
            ("startswith(name)", "takes 2 arguments"),
            ("name eq 'open", "does not end"),
            ("result gt 2026-13-01", "neither a number"),
            ("name # 1", "unexpected character `#`"),
            ("geo.intersects(location, geography'LINESTRING(1 2, 3 4)')", "POLYGON"),
        ] {
            let error = parse(filter).expect_err(filter).to_string();
            assert!(error.contains("$filter") && error.contains(says), "{filter}: {error}");
        }
        let deep = format!("{}result{}", "(".repeat(500), ")".repeat(500));
        assert!(parse(&deep).expect_err("deep").to_string().contains("nested deeper"));
        let long = vec!["name eq 'a'"; 300].join(" or ");
        assert!(parse(&long).expect_err("long").to_string().contains("more than 256 operators"));
        // Depth is nesting, not length: a flat `or` of many terms and a dozen parentheses parse.
        assert!(parse(&vec!["name eq 'a'"; 40].join(" or ")).is_ok());
        assert!(parse(&format!("{}result gt 1{}", "(".repeat(12), ")".repeat(12))).is_ok());
    }
}
