//! Dashboards: pages of tiles that staff build from forms in the workspace
//! (`/admin/dashboards`), shown on the portal at `/dashboards/{id}` to whom their
//! visibility allows. A tile shows a dataset or a view of this node (a chart, the latest
//! values, a map, a table) or a text. All charts of a dashboard share its time range, so
//! they stand on one time axis. What a tile shows is read as the visitor: a public
//! dashboard of an internal dataset shows visitors nothing of it.

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use urbanmesh_policy::Visibility;

use crate::CatalogError;
use crate::dataset::is_dataset_id;

/// Tiles a dashboard may hold.
pub const MAX_TILES: usize = 24;
/// Characters a text tile may hold.
pub const MAX_TEXT: usize = 4000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Dashboard {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// The time its charts span, up to now.
    #[serde(default)]
    pub range: Range,
    #[serde(default)]
    pub visibility: Visibility,
    #[serde(default)]
    pub tiles: Vec<Tile>,
}

/// The time a dashboard's charts span.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Range {
    #[serde(rename = "24h")]
    Day,
    #[default]
    #[serde(rename = "7d")]
    Week,
    #[serde(rename = "30d")]
    Month,
}

impl Range {
    pub const ALL: [Range; 3] = [Range::Day, Range::Week, Range::Month];

    pub fn code(self) -> &'static str {
        match self {
            Self::Day => "24h",
            Self::Week => "7d",
            Self::Month => "30d",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    pub fn span(self) -> chrono::TimeDelta {
        chrono::TimeDelta::days(match self {
            Self::Day => 1,
            Self::Week => 7,
            Self::Month => 30,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Tile {
    pub kind: TileKind,
    /// A heading of its own; the source's title otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The dataset or view shown (not for text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// The number shown (a chart's, the latest value's); the source's main one otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// A text tile's text: paragraphs separated by blank lines, no markup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TileKind {
    Chart,
    Latest,
    Map,
    Table,
    Text,
}

impl TileKind {
    pub const ALL: [TileKind; 5] = [Self::Chart, Self::Latest, Self::Map, Self::Table, Self::Text];

    pub fn code(self) -> &'static str {
        match self {
            Self::Chart => "chart",
            Self::Latest => "latest",
            Self::Map => "map",
            Self::Table => "table",
            Self::Text => "text",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }
}

/// A dataset or a view of this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Dataset(String),
    View(String),
}

impl Source {
    /// `dataset:<id>` or `view:<id>`, as forms carry it.
    pub fn parse(text: &str) -> Option<Self> {
        match text.split_once(':')? {
            ("dataset", id) => Some(Self::Dataset(id.to_owned())),
            ("view", id) => Some(Self::View(id.to_owned())),
            _ => None,
        }
    }

    pub fn code(&self) -> String {
        match self {
            Self::Dataset(id) => format!("dataset:{id}"),
            Self::View(id) => format!("view:{id}"),
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Self::Dataset(id) | Self::View(id) => id,
        }
    }
}

impl Dashboard {
    /// Checks what stands on its own; whether sources exist and columns are numbers the
    /// caller checks against the catalogue ([`crate::Catalog::check_tile`]).
    pub fn validate(&self) -> Result<(), CatalogError> {
        if !is_dataset_id(&self.id) {
            return Err(CatalogError::invalid(
                "id",
                format!("`{}` is not a valid dashboard id: use 1-64 lower-case letters, digits, `-` and `_`", self.id),
            ));
        }
        if self.title.trim().is_empty() {
            return Err(CatalogError::invalid("title", "must not be empty"));
        }
        if self.title.len() > 1000 || self.description.len() > 10_000 {
            return Err(CatalogError::invalid("title", "title and description are too long"));
        }
        if self.tiles.len() > MAX_TILES {
            return Err(CatalogError::invalid("tiles", format!("a dashboard holds at most {MAX_TILES} tiles")));
        }
        for (i, tile) in self.tiles.iter().enumerate() {
            tile.validate().map_err(|e| match e {
                CatalogError::InvalidDataset { field, reason } => {
                    CatalogError::InvalidDataset { field: format!("tiles[{i}].{field}"), reason }
                }
                other => other,
            })?;
        }
        Ok(())
    }
}

impl Tile {
    pub fn validate(&self) -> Result<(), CatalogError> {
        match (self.kind, &self.source, &self.text) {
            (TileKind::Text, _, None) => return Err(CatalogError::invalid("text", "a text tile needs its text")),
            (TileKind::Text, _, Some(text)) if text.trim().is_empty() => {
                return Err(CatalogError::invalid("text", "a text tile needs its text"));
            }
            (TileKind::Text, _, Some(text)) if text.chars().count() > MAX_TEXT => {
                return Err(CatalogError::invalid("text", format!("at most {MAX_TEXT} characters")));
            }
            (TileKind::Text, _, _) => {}
            (_, None, _) => return Err(CatalogError::invalid("source", "choose the dataset or view to show")),
            (_, Some(_), _) => {}
        }
        if self.title.as_ref().is_some_and(|t| t.len() > 1000) {
            return Err(CatalogError::invalid("title", "must be at most 1000 bytes"));
        }
        Ok(())
    }
}

impl crate::Catalog {
    /// Checks a dashboard against this node's catalogue: each tile's source is a dataset or
    /// view here, and its column, where it names one, is a number of that source.
    /// The schema of a dataset or view of this node, if there is one of that id.
    pub fn source_schema(&self, source: &Source) -> Option<crate::SchemaSpec> {
        match source {
            Source::Dataset(id) => self.get(id).ok().map(|d| d.spec.schema),
            Source::View(id) => self.views().get(id).ok().map(|v| v.spec.schema),
        }
    }

    pub fn check_dashboard(&self, dashboard: &Dashboard) -> Result<(), CatalogError> {
        dashboard.validate()?;
        for (i, tile) in dashboard.tiles.iter().enumerate() {
            let Some(source) = &tile.source else { continue };
            let Some(schema) = self.source_schema(source) else {
                return Err(CatalogError::invalid(
                    format!("tiles[{i}].source"),
                    format!("`{}` is no dataset or view of this node", source.id()),
                ));
            };
            if let Some(column) = &tile.column {
                let numbers = schema.numbers();
                if !numbers.contains(&column.as_str()) {
                    return Err(CatalogError::invalid(
                        format!("tiles[{i}].column"),
                        format!(
                            "`{column}` is not a number column of `{}`; its numbers: {}",
                            source.id(),
                            numbers.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// This node's dashboards in sled (tree `dashboards`).
#[derive(Clone)]
pub struct Dashboards {
    db: sled::Db,
    tree: sled::Tree,
    writing: std::sync::Arc<Mutex<()>>,
}

impl Dashboards {
    pub(crate) fn open(db: sled::Db) -> Result<Self, CatalogError> {
        let tree = db.open_tree("dashboards")?;
        Ok(Self { db, tree, writing: std::sync::Arc::default() })
    }

    /// Stores a validated dashboard, new or changed (`new` refuses an id taken); durable
    /// when this returns.
    pub async fn put(&self, dashboard: &Dashboard, new: bool) -> Result<(), CatalogError> {
        dashboard.validate()?;
        let bytes = serde_json::to_vec(dashboard)
            .map_err(|source| CatalogError::CorruptRecord { id: dashboard.id.clone(), source })?;
        {
            let _writing = self.writing.lock().await;
            if new && self.tree.contains_key(&dashboard.id)? {
                return Err(CatalogError::AlreadyExists { id: format!("{} (a dashboard)", dashboard.id) });
            }
            if !new && !self.tree.contains_key(&dashboard.id)? {
                return Err(CatalogError::NotFound { id: dashboard.id.clone() });
            }
            self.tree.insert(&dashboard.id, bytes)?;
        }
        self.db.flush_async().await?;
        Ok(())
    }

    pub fn get(&self, id: &str) -> Result<Dashboard, CatalogError> {
        let bytes = self.tree.get(id)?.ok_or_else(|| CatalogError::NotFound { id: id.to_owned() })?;
        decode(id, &bytes)
    }

    /// All dashboards, ordered by id.
    pub fn list(&self) -> Result<Vec<Dashboard>, CatalogError> {
        self.tree
            .iter()
            .map(|item| {
                let (key, bytes) = item?;
                decode(&String::from_utf8_lossy(&key), &bytes)
            })
            .collect()
    }

    pub async fn delete(&self, id: &str) -> Result<(), CatalogError> {
        {
            let _writing = self.writing.lock().await;
            self.tree.remove(id)?.ok_or_else(|| CatalogError::NotFound { id: id.to_owned() })?;
        }
        self.db.flush_async().await?;
        Ok(())
    }
}

fn decode(id: &str, bytes: &[u8]) -> Result<Dashboard, CatalogError> {
    serde_json::from_slice(bytes).map_err(|source| CatalogError::CorruptRecord { id: id.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dashboard(tiles: Vec<Tile>) -> Dashboard {
        Dashboard {
            id: "innenstadt".into(),
            title: "Innenstadt".into(),
            description: String::new(),
            range: Range::Week,
            visibility: Visibility::Public,
            tiles,
        }
    }

    fn tile(kind: TileKind, source: Option<&str>, text: Option<&str>) -> Tile {
        Tile { kind, title: None, source: source.and_then(Source::parse), column: None, text: text.map(Into::into) }
    }

    #[tokio::test]
    async fn dashboards_are_stored_durably_and_refuse_what_is_incomplete() {
        let db = sled::Config::new().temporary(true).open().expect("sled");
        let dashboards = Dashboards::open(db).expect("open");
        let board = dashboard(vec![
            tile(TileKind::Chart, Some("dataset:passanten-herford"), None),
            tile(TileKind::Text, None, Some("Passanten und Wetter")),
        ]);
        dashboards.put(&board, true).await.expect("stored");
        assert_eq!(dashboards.get("innenstadt").expect("read"), board);
        assert!(matches!(dashboards.put(&board, true).await, Err(CatalogError::AlreadyExists { .. })));

        let no_source = dashboard(vec![tile(TileKind::Map, None, None)]);
        let error = dashboards.put(&no_source, false).await.expect_err("refused").to_string();
        assert!(error.contains("tiles[0].source"), "{error}");
        let empty_text = dashboard(vec![tile(TileKind::Text, None, Some("  "))]);
        assert!(dashboards.put(&empty_text, false).await.is_err());
        assert_eq!(dashboards.get("innenstadt").expect("unchanged"), board, "nothing stored of a refused one");
        let bad_id = Dashboard { id: "Innenstadt!".into(), ..board };
        assert!(bad_id.validate().expect_err("bad id").to_string().contains("id"));
    }

    #[test]
    fn forms_name_sources_and_ranges_by_code() {
        assert_eq!(Source::parse("view:pegel-owl"), Some(Source::View("pegel-owl".into())));
        assert_eq!(Source::parse("table:x"), None);
        assert_eq!(Range::parse("30d"), Some(Range::Month));
        assert_eq!(TileKind::parse("latest"), Some(TileKind::Latest));
    }
}
