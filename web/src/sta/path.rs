//! Resource paths: `Things`, `Things(1)`, `Datastreams(7)/Observations`,
//! `Things(1)/Locations(2)/name`, `…/name/$value`, `Things/$ref`.

use super::StaError;
use super::kind::Kind;

/// One step of a path: an entity set or navigation, and an id where one entity is meant.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Step {
    pub(crate) kind: Kind,
    /// Whether the step names a collection (`Datastreams`) rather than one entity (`Thing`).
    pub(crate) many: bool,
    pub(crate) id: Option<String>,
}

/// What follows the entities: a property, its raw value, or references.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tail {
    None,
    Property(String),
    Value(String),
    Ref,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResourcePath {
    pub(crate) steps: Vec<Step>,
    pub(crate) tail: Tail,
}

/// Longest path accepted, in segments.
const MAX_SEGMENTS: usize = 16;

pub(crate) fn parse(path: &str) -> Result<ResourcePath, StaError> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segments.len() > MAX_SEGMENTS {
        return Err(StaError::bad_request(format!("the path has more than {MAX_SEGMENTS} segments")));
    }
    let mut steps: Vec<Step> = Vec::new();
    let mut tail = Tail::None;
    let mut rest = segments.iter().peekable();
    while let Some(segment) = rest.next() {
        let (name, id) = split_id(segment)?;
        let step = match steps.last() {
            None => Kind::from_plural(name).map(|kind| Step { kind, many: true, id: None }),
            Some(last) => last.kind.navigation(name).map(|(kind, many)| Step { kind, many, id: None }),
        };
        match step {
            Some(mut step) => {
                if id.is_some() && !step.many {
                    return Err(StaError::bad_request(format!("`{name}` is one entity and takes no id")));
                }
                if let Some(last) = steps.last()
                    && last.many
                    && last.id.is_none()
                {
                    return Err(StaError::bad_request(format!(
                        "`{}` is a collection: name one of them by id before `{name}`",
                        last.kind.plural()
                    )));
                }
                step.id = id;
                steps.push(step);
            }
            None if steps.is_empty() => return Err(StaError::not_found(format!("no entity set `{name}`"))),
            None if *segment == "$ref" && rest.peek().is_none() => tail = Tail::Ref,
            None => {
                let last = steps.last().map(|s| s.kind).unwrap_or(Kind::Thing);
                if !last.has_property(name) || id.is_some() {
                    return Err(StaError::not_found(format!(
                        "{} have no property or navigation `{name}`",
                        last.plural()
                    )));
                }
                if steps.last().is_some_and(|s| s.many && s.id.is_none()) {
                    return Err(StaError::bad_request(format!("`{name}` is a property of one entity: name it by id")));
                }
                tail = match (rest.next(), rest.next()) {
                    (None, _) => Tail::Property(name.to_owned()),
                    (Some(&"$value"), None) => Tail::Value(name.to_owned()),
                    (Some(other), _) => {
                        return Err(StaError::not_found(format!("nothing at `{other}` after `{name}`")));
                    }
                };
            }
        }
    }
    if steps.is_empty() {
        return Err(StaError::not_found("no entity set named"));
    }
    Ok(ResourcePath { steps, tail })
}

/// `Things(42)` → (`Things`, `42`); `Observations('7-1700000000')` → the quoted text.
fn split_id(segment: &str) -> Result<(&str, Option<String>), StaError> {
    let Some((name, rest)) = segment.split_once('(') else { return Ok((segment, None)) };
    let id =
        rest.strip_suffix(')').ok_or_else(|| StaError::bad_request(format!("`{segment}`: the id is not closed")))?;
    let id = match id.strip_prefix('\'').and_then(|i| i.strip_suffix('\'')) {
        Some(text) => text.replace("''", "'"),
        None if !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()) => id.to_owned(),
        None => return Err(StaError::bad_request(format!("`{segment}`: an id is a number or a quoted string"))),
    };
    Ok((name, Some(id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_of_the_standard_parse() {
        let path = parse("Things(1)/Datastreams").expect("path");
        assert_eq!(path.steps.len(), 2);
        assert_eq!((path.steps[1].kind, path.steps[1].many), (Kind::Datastream, true));
        let path = parse("Datastreams(7)/Thing/name/$value").expect("path");
        assert_eq!(path.tail, Tail::Value("name".into()));
        assert_eq!(parse("Observations('7-17')").expect("path").steps[0].id.as_deref(), Some("7-17"));
        assert_eq!(parse("Things/$ref").expect("path").tail, Tail::Ref);
        assert_eq!(parse("Things(1)/Locations(2)/location").expect("path").tail, Tail::Property("location".into()));
    }

    #[test]
    fn bad_paths_say_what_is_wrong() {
        for (path, says) in [
            ("Cars", "no entity set `Cars`"),
            ("Things/Datastreams", "name one of them by id"),
            ("Things(1)/Colour", "no property or navigation `Colour`"),
            ("Datastreams(1)/Thing(2)", "takes no id"),
            ("Things(abc)", "a number or a quoted string"),
            ("Things(1", "not closed"),
            ("Things/name", "name it by id"),
        ] {
            let error = parse(path).expect_err(path).to_string();
            assert!(error.contains(says), "{path}: {error}");
        }
    }
}
