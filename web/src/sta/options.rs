//! Query options: `$filter`, `$expand` (nested, with options of its own), `$select`,
//! `$orderby`, `$top`, `$skip` and `$count`, as a request gives them or as `;`-separated
//! options inside an expansion.

use super::StaError;
use super::filter::{self, Expr};
use super::kind::Kind;

/// Entities per page where `$top` is not given.
pub(crate) const DEFAULT_TOP: usize = 100;
/// Most entities one page may hold.
pub(crate) const MAX_TOP: usize = 10_000;
/// Deepest `$expand` accepted.
const MAX_EXPAND_DEPTH: usize = 6;
/// Longest query accepted.
const MAX_QUERY_LEN: usize = 16 * 1024;
/// Most entities a page may skip.
const MAX_SKIP: usize = 1_000_000_000;

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Options {
    pub(crate) filter: Option<Expr>,
    pub(crate) expand: Vec<Expand>,
    /// Properties to keep; `None` keeps all.
    pub(crate) select: Option<Vec<String>>,
    pub(crate) orderby: Vec<Order>,
    pub(crate) top: Option<usize>,
    pub(crate) skip: usize,
    pub(crate) count: bool,
    /// The options as given (name, value), to link the next page with.
    pub(crate) given: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Expand {
    /// The navigation property, as named from the entity it expands.
    pub(crate) name: String,
    pub(crate) options: Options,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Order {
    pub(crate) path: Vec<String>,
    pub(crate) descending: bool,
}

impl Options {
    /// The options of a request's query string, for entities of `kind`.
    pub(crate) fn from_query(query: &str, kind: Kind) -> Result<Self, StaError> {
        if query.len() > MAX_QUERY_LEN {
            return Err(StaError::bad_request(format!("the query is longer than {MAX_QUERY_LEN} bytes")));
        }
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|e| StaError::bad_request(format!("the query string cannot be read: {e}")))?;
        let mut options = Self::default();
        let mut seen: Vec<&str> = Vec::new();
        for (name, value) in &pairs {
            if !name.starts_with('$') {
                continue; // not a query option: left to others, as OData does
            }
            if seen.contains(&name.as_str()) {
                return Err(StaError::bad_request(format!("`{name}` is given twice")));
            }
            seen.push(name);
            options.set(name, value, kind, 0)?;
            options.given.push((name.clone(), value.clone()));
        }
        Ok(options)
    }

    /// The page size: `$top`, or the default.
    pub(crate) fn top(&self) -> usize {
        self.top.unwrap_or(DEFAULT_TOP)
    }

    fn set(&mut self, name: &str, value: &str, kind: Kind, depth: usize) -> Result<(), StaError> {
        let bad = |reason: String| StaError::bad_request(format!("{name}: {reason}"));
        match name {
            "$filter" => self.filter = Some(filter::parse(value)?),
            "$expand" => self.expand = expansions(value, kind, depth)?,
            "$select" => {
                let names: Vec<String> = value
                    .split(',')
                    .map(|s| if s.trim() == "@iot.id" { "id".to_owned() } else { s.trim().to_owned() })
                    .filter(|s| !s.is_empty())
                    .collect();
                if let Some(unknown) = names.iter().find(|n| !kind.has_property(n) && kind.navigation(n).is_none()) {
                    return Err(bad(format!("{} have no property `{unknown}`", kind.plural())));
                }
                self.select = Some(names);
            }
            "$orderby" => {
                self.orderby = value
                    .split(',')
                    .map(|part| {
                        let mut words = part.split_whitespace();
                        let path = words.next().ok_or_else(|| bad("an empty ordering".into()))?;
                        let descending = match words.next().map(str::to_ascii_lowercase).as_deref() {
                            None | Some("asc") => false,
                            Some("desc") => true,
                            Some(_) => {
                                return Err(bad(format!("`{}` is neither asc nor desc", part.trim())));
                            }
                        };
                        if words.next().is_some() {
                            return Err(bad(format!("`{}` is not `property [asc|desc]`", part.trim())));
                        }
                        Ok(Order { path: path.split('/').map(str::to_owned).collect(), descending })
                    })
                    .collect::<Result<_, _>>()?;
            }
            "$top" => {
                let top = count(value).map_err(bad)?;
                if top > MAX_TOP {
                    return Err(bad(format!("at most {MAX_TOP}")));
                }
                self.top = Some(top);
            }
            "$skip" => {
                let skip = count(value).map_err(bad)?;
                if skip > MAX_SKIP {
                    return Err(bad(format!("at most {MAX_SKIP}")));
                }
                self.skip = skip;
            }
            "$count" => {
                self.count = match value {
                    "true" => true,
                    "false" => false,
                    other => return Err(bad(format!("`{other}` is neither true nor false"))),
                }
            }
            "$resultFormat" | "$search" | "$format" => return Err(bad("is not supported".into())),
            other => return Err(StaError::bad_request(format!("unknown query option `{other}`"))),
        }
        Ok(())
    }
}

fn count(value: &str) -> Result<usize, String> {
    value.trim().parse::<usize>().map_err(|_| format!("`{value}` is not a whole number of at least 0"))
}

/// `Datastreams($top=1),Locations,Datastreams/Observations($orderby=phenomenonTime desc;$top=1)`:
/// one expansion per navigation property, paths merged into nested expansions.
fn expansions(text: &str, kind: Kind, depth: usize) -> Result<Vec<Expand>, StaError> {
    let mut expands: Vec<Expand> = Vec::new();
    for item in split_top_level(text, ',').map_err(|e| StaError::bad_request(format!("$expand: {e}")))? {
        let (path, options) = match item.find('(') {
            Some(open) => {
                let inner = item[open + 1..]
                    .strip_suffix(')')
                    .ok_or_else(|| StaError::bad_request(format!("$expand: `{item}` is not closed")))?;
                (&item[..open], Some(inner))
            }
            None => (item, None),
        };
        let names: Vec<&str> = path.split('/').map(str::trim).collect();
        add(&mut expands, kind, &names, options, depth)?;
    }
    Ok(expands)
}

fn add(
    expands: &mut Vec<Expand>,
    kind: Kind,
    names: &[&str],
    options: Option<&str>,
    depth: usize,
) -> Result<(), StaError> {
    let Some((name, rest)) = names.split_first() else { return Ok(()) };
    if depth >= MAX_EXPAND_DEPTH {
        return Err(StaError::bad_request(format!("$expand: nested deeper than {MAX_EXPAND_DEPTH}")));
    }
    let (target, _) = kind.navigation(name).ok_or_else(|| {
        StaError::bad_request(format!("$expand: {} have no navigation property `{name}`", kind.plural()))
    })?;
    let at = match expands.iter().position(|e| e.name == *name) {
        Some(at) => at,
        None => {
            expands.push(Expand { name: (*name).to_owned(), options: Options::default() });
            expands.len() - 1
        }
    };
    let expand = &mut expands[at];
    if rest.is_empty() {
        if let Some(options) = options {
            let options = split_top_level(options, ';').map_err(|e| StaError::bad_request(format!("$expand: {e}")))?;
            for option in options {
                let (option, value) = option
                    .split_once('=')
                    .ok_or_else(|| StaError::bad_request(format!("$expand: `{option}` is not `$option=value`")))?;
                expand.options.set(option.trim(), value, target, depth + 1)?;
                expand.options.given.push((option.trim().to_owned(), value.to_owned()));
            }
        }
        Ok(())
    } else {
        add(&mut expand.options.expand, target, rest, options, depth + 1)
    }
}

/// Splits at `separator` outside parentheses and quoted strings.
fn split_top_level(text: &str, separator: char) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let (mut depth, mut quoted, mut start) = (0usize, false, 0);
    for (at, c) in text.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => {
                depth = depth.checked_sub(1).ok_or_else(|| format!("unbalanced `)` in `{text}`"))?;
            }
            c if c == separator && depth == 0 && !quoted => {
                parts.push(text[start..at].trim());
                start = at + c.len_utf8();
            }
            _ => {}
        }
    }
    if depth != 0 || quoted {
        return Err(format!("unbalanced parentheses or quotes in `{text}`"));
    }
    parts.push(text[start..].trim());
    Ok(parts.into_iter().filter(|p| !p.is_empty()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masterportals_request_parses() {
        let query = "$expand=Locations,Datastreams/Observations($orderby=phenomenonTime%20desc;$top=1)&$count=true";
        let options = Options::from_query(query, Kind::Thing).expect("options");
        assert!(options.count);
        assert_eq!(options.expand.len(), 2);
        let datastreams = &options.expand[1];
        assert_eq!(datastreams.name, "Datastreams");
        let observations = &datastreams.options.expand[0];
        assert_eq!(observations.name, "Observations");
        assert_eq!(observations.options.top, Some(1));
        assert_eq!(observations.options.orderby, vec![Order { path: vec!["phenomenonTime".into()], descending: true }]);
        // frost-sta-client writes the direction in capitals.
        let options =
            Options::from_query("$orderby=phenomenonTime%20DESC,result%20ASC", Kind::Observation).expect("options");
        assert_eq!(options.orderby.iter().map(|o| o.descending).collect::<Vec<_>>(), [true, false]);
    }

    #[test]
    fn nested_options_and_paths_merge() {
        let query = "$expand=Datastreams($select=name,unitOfMeasurement;$expand=Sensor),Datastreams/Observations($filter=result%20gt%201;$skip=2)";
        let options = Options::from_query(query, Kind::Thing).expect("options");
        assert_eq!(options.expand.len(), 1);
        let datastreams = &options.expand[0].options;
        assert_eq!(datastreams.select.as_deref(), Some(&["name".to_owned(), "unitOfMeasurement".to_owned()][..]));
        assert_eq!(datastreams.expand.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["Sensor", "Observations"]);
        assert_eq!(datastreams.expand[1].options.skip, 2);
        assert!(datastreams.expand[1].options.filter.is_some());
    }

    #[test]
    fn bad_options_name_the_option() {
        for (query, says) in [
            ("$top=-1", "$top"),
            ("$top=100000", "$top: at most"),
            ("$skip=x", "$skip"),
            ("$count=yes", "$count"),
            ("$orderby=name%20up", "$orderby"),
            ("$skip=18446744073709551615", "$skip: at most"),
            ("$select=colour", "$select: Things have no property `colour`"),
            ("$expand=Cars", "no navigation property `Cars`"),
            ("$expand=Datastreams($top=x)", "$top"),
            ("$expand=Datastreams($top=1", "$expand: unbalanced"),
            ("$frobnicate=1", "unknown query option `$frobnicate`"),
            ("$top=1&$top=2", "given twice"),
            ("$filter=name%20eq", "$filter"),
            ("$resultFormat=dataArray", "not supported"),
        ] {
            let error = Options::from_query(query, Kind::Thing).expect_err(query).to_string();
            assert!(error.contains(says), "{query}: {error}");
        }
        let deep = format!("$expand={}", ["Datastreams", "Thing"].repeat(5).join("/"));
        assert!(Options::from_query(&deep, Kind::Thing).expect_err("deep").to_string().contains("nested deeper"));
    }
}
