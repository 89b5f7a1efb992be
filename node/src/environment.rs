//! Settings from the environment, as containers are configured: `URBANMESH_<SECTION>__<KEY>`
//! sets `[section] key` (`URBANMESH_HTTP__LISTEN=0.0.0.0:8470`,
//! `URBANMESH_OIDC__CLIENT_SECRET=…`), over what the configuration file says. A name ending
//! in `_FILE` reads the value from that file instead (`URBANMESH_OIDC__CLIENT_SECRET_FILE=
//! /run/secrets/oidc`), so that secrets need not be in the environment either.
//!
//! A value is taken as the type the setting has: a number, `true`/`false`, or a list or
//! table in TOML syntax (`["research", "statistics"]`); anything else is text.

use std::path::Path;

use anyhow::{Context, bail};
use toml::{Table, Value};

/// The prefix of every setting's variable.
pub const PREFIX: &str = "URBANMESH_";
/// What separates a section from its key in a variable's name.
const SEPARATOR: &str = "__";
const FROM_FILE: &str = "_FILE";

/// The process's `URBANMESH_…` variables; others (and any that are not UTF-8) are not
/// the node's business.
pub fn settings() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .filter(|(name, _)| name.starts_with(PREFIX))
        .collect()
}

/// Sets every `URBANMESH_<SECTION>__<KEY>` of `vars` in `table`, typed like the value
/// `defaults` has at the same place. Names without `__` are not settings
/// (`URBANMESH_DATA_DIR`, `URBANMESH_LOG_FORMAT`).
pub(crate) fn apply(
    table: &mut Table,
    defaults: &Table,
    vars: impl IntoIterator<Item = (String, String)>,
) -> anyhow::Result<Vec<String>> {
    let mut applied = Vec::new();
    let mut vars: Vec<(String, String)> =
        vars.into_iter().filter(|(name, _)| name.starts_with(PREFIX) && name.contains(SEPARATOR)).collect();
    vars.sort();
    for (name, _) in &vars {
        if let Some(setting) = name.strip_suffix(FROM_FILE)
            && vars.iter().any(|(other, _)| other == setting)
        {
            bail!("{setting} and {name} are both set; give the value one way");
        }
    }
    for (name, raw) in vars {
        let (path, raw, secret) = match name.strip_suffix(FROM_FILE) {
            Some(setting) => {
                let text = std::fs::read_to_string(Path::new(&raw))
                    .with_context(|| format!("{name}: reading the value from {raw}"))?;
                (setting.to_owned(), text.trim_end_matches(['\n', '\r']).to_owned(), true)
            }
            None => (name.clone(), raw, false),
        };
        let keys: Vec<String> = path[PREFIX.len()..].split(SEPARATOR).map(str::to_ascii_lowercase).collect();
        if keys.iter().any(String::is_empty) {
            bail!("{name}: expected URBANMESH_<SECTION>__<KEY>, e.g. URBANMESH_HTTP__LISTEN");
        }
        // A value read from a file is a secret: text as it is, never parsed or echoed.
        let value = if secret {
            Value::String(raw)
        } else {
            typed(&raw, lookup(defaults, &keys)).with_context(|| name.clone())?
        };
        set(table, &keys, value).with_context(|| name.clone())?;
        applied.push(name);
    }
    Ok(applied)
}

fn lookup<'a>(table: &'a Table, keys: &[String]) -> Option<&'a Value> {
    let (first, rest) = keys.split_first()?;
    let value = table.get(first)?;
    if rest.is_empty() { Some(value) } else { lookup(value.as_table()?, rest) }
}

/// `raw` as the type of `like`; as TOML where it is written as a list or table.
fn typed(raw: &str, like: Option<&Value>) -> anyhow::Result<Value> {
    let trimmed = raw.trim();
    let parsed = || -> anyhow::Result<Value> {
        let document: Table =
            toml::from_str(&format!("value = {trimmed}")).with_context(|| format!("`{raw}` is not a valid value"))?;
        document.get("value").cloned().context("no value")
    };
    Ok(match like {
        Some(Value::Integer(_)) => {
            Value::Integer(trimmed.parse().with_context(|| format!("`{raw}` is not a whole number"))?)
        }
        Some(Value::Float(_)) => Value::Float(trimmed.parse().with_context(|| format!("`{raw}` is not a number"))?),
        Some(Value::Boolean(_)) => Value::Boolean(match trimmed {
            "true" => true,
            "false" => false,
            _ => bail!("`{raw}` is neither true nor false"),
        }),
        Some(Value::Array(_) | Value::Table(_)) => parsed()?,
        // Text stays text, even where it starts like a list (`[::]:8470`).
        Some(Value::String(_)) => Value::String(raw.to_owned()),
        _ if trimmed.starts_with('[') || trimmed.starts_with('{') => parsed()?,
        _ => Value::String(raw.to_owned()),
    })
}

fn set(table: &mut Table, keys: &[String], value: Value) -> anyhow::Result<()> {
    let Some((first, rest)) = keys.split_first() else { return Ok(()) };
    if rest.is_empty() {
        table.insert(first.clone(), value);
        return Ok(());
    }
    let inner = table.entry(first.clone()).or_insert_with(|| Value::Table(Table::new()));
    match inner {
        Value::Table(inner) => set(inner, rest, value),
        _ => bail!("`{first}` is a setting, not a section"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Table {
        toml::from_str(
            "[http]\nlisten = \"127.0.0.1:8470\"\n[limits]\nquery_timeout_secs = 30\n[p2p]\nmdns = false\n\
             listen = [\"/ip4/127.0.0.1/tcp/0\"]\n",
        )
        .expect("defaults")
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn variables_set_typed_values_in_their_sections() {
        let mut table = defaults();
        let applied = apply(
            &mut table,
            &defaults(),
            vars(&[
                ("URBANMESH_HTTP__LISTEN", "[::]:8470"),
                ("URBANMESH_LIMITS__QUERY_TIMEOUT_SECS", "5"),
                ("URBANMESH_P2P__MDNS", "true"),
                ("URBANMESH_P2P__LISTEN", "[\"/ip4/0.0.0.0/tcp/4001\"]"),
                ("URBANMESH_NODE__ARS", "055540000000"),
                ("URBANMESH_DATA_DIR", "/var/lib/urbanmesh"),
                ("HOME", "/root"),
            ]),
        )
        .expect("apply");
        assert_eq!(applied.len(), 5);
        // Text stays text, even where it starts like a list (an IPv6 address).
        assert_eq!(table["http"]["listen"].as_str(), Some("[::]:8470"));
        assert_eq!(table["limits"]["query_timeout_secs"].as_integer(), Some(5));
        assert_eq!(table["p2p"]["mdns"].as_bool(), Some(true));
        assert_eq!(table["p2p"]["listen"].as_array().map(Vec::len), Some(1));
        // A number-like code stays text where the setting is text.
        assert_eq!(table["node"]["ars"].as_str(), Some("055540000000"));
    }

    #[test]
    fn a_secret_comes_from_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cr3t\n").expect("write");
        let mut table = defaults();
        let path = secret.to_string_lossy().into_owned();
        apply(&mut table, &defaults(), vars(&[("URBANMESH_OIDC__CLIENT_SECRET_FILE", &path)])).expect("apply");
        assert_eq!(table["oidc"]["client_secret"].as_str(), Some("s3cr3t"));
    }

    #[test]
    fn a_value_given_twice_is_refused() {
        let mut table = defaults();
        let error = apply(
            &mut table,
            &defaults(),
            vars(&[("URBANMESH_OIDC__CLIENT_SECRET", "a"), ("URBANMESH_OIDC__CLIENT_SECRET_FILE", "/run/secrets/x")]),
        )
        .expect_err("twice");
        assert!(error.to_string().contains("both set"), "{error}");
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (name, value, says) in [
            ("URBANMESH_LIMITS__QUERY_TIMEOUT_SECS", "soon", "not a whole number"),
            ("URBANMESH_P2P__MDNS", "yes", "neither true nor false"),
            ("URBANMESH_HTTP__LISTEN__PORT", "1", "not a section"),
            ("URBANMESH___LISTEN", "1", "expected URBANMESH_<SECTION>__<KEY>"),
            ("URBANMESH_OIDC__CLIENT_SECRET_FILE", "/nonexistent/secret", "reading the value"),
        ] {
            let mut table = defaults();
            let error = apply(&mut table, &defaults(), vars(&[(name, value)])).expect_err(name);
            let text = format!("{error:#}");
            assert!(text.contains(name) && text.contains(says), "{name}: {text}");
        }
    }
}
