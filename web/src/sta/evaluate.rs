//! `$filter` evaluated in memory, on the entities a request's graph holds (every kind but
//! observations, which are planned on the released rows instead).

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde_json::Value;

use super::filter::{Expr, Function, Literal, Op};
use super::geo::Polygon;

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
    use crate::sta::filter::parse;

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
}
