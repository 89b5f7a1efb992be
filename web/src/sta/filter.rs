//! `$filter`: the OData expression language as SensorThings 1.1 uses it (comparisons,
//! logical and arithmetic operators, string, date and geospatial functions), parsed once
//! and then either evaluated on an entity in memory ([`super::evaluate`]) or planned as a
//! DataFusion expression over a dataset's released rows ([`super::observations`]).

use chrono::{DateTime, Utc};

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

#[cfg(test)]
mod tests {
    use super::*;

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
