//! The catalogue's search index against real tantivy and sled: German analysis, facets,
//! filters, paging, and rebuilding from sled.

use std::path::Path;

use urbanmesh_catalog::search::{SearchParams, SearchRequest, SearchResults};
use urbanmesh_catalog::{Catalog, CatalogInfo, DatasetSpec};

fn open(dir: &Path) -> Catalog {
    let db = sled::open(dir.join("meta")).expect("sled");
    Catalog::open(db, CatalogInfo::for_municipality("Gütersloh"), &dir.join("index")).expect("catalog")
}

fn spec(id: &str, title: &str, extra: serde_json::Value) -> DatasetSpec {
    let mut value = serde_json::json!({
        "id": id, "title": title, "description": format!("{title}: Beispieldaten"),
        "schema": {"fields": [{"name": "time", "type": "timestamp[ms, UTC]"}, {"name": "v", "type": "float64"}]},
        "time_column": "time",
        "policy": {"visibility": "public"}
    });
    if let (Some(target), serde_json::Value::Object(extra)) = (value.as_object_mut(), extra) {
        target.extend(extra);
    }
    serde_json::from_value(value).expect("spec")
}

fn search(catalog: &Catalog, pairs: &[(&str, &str)]) -> SearchResults {
    let map: serde_json::Map<String, serde_json::Value> =
        pairs.iter().map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v))).collect();
    let params: SearchParams = serde_json::from_value(serde_json::Value::Object(map)).expect("params");
    catalog.search(&SearchRequest::parse(params).expect("request")).expect("search")
}

fn ids(results: &SearchResults) -> Vec<&str> {
    let mut ids: Vec<&str> = results.hits.iter().map(|h| h.id.as_str()).collect();
    ids.sort_unstable();
    ids
}

async fn seeded(dir: &Path) -> Catalog {
    let catalog = open(dir);
    let entries = [
        spec(
            "pegel",
            "Pegelstand Dalke",
            serde_json::json!({"themes": ["ENVI"], "keywords": ["Hochwasser"],
            "spatial": {"bbox": [8.3, 51.8, 8.5, 52.0]}, "temporal": {"start": "2026-10-01", "end": "2026-10-31"}}),
        ),
        spec("wasser", "Wasserstände der Ems", serde_json::json!({"themes": ["ENVI", "REGI"], "licence": "cc-by/4.0"})),
        spec(
            "verkehr",
            "Fußgängerzählung Innenstadt",
            serde_json::json!({"themes": ["TRAN"],
            "spatial": {"bbox": [9.0, 52.1, 9.1, 52.2]}, "temporal": {"start": "2025-01-01", "end": "2025-12-31"}}),
        ),
    ];
    for entry in entries {
        catalog.create(entry).await.expect("create");
    }
    catalog.sync_index().await.expect("sync");
    catalog
}

#[tokio::test]
async fn german_words_match_across_inflection_umlauts_and_compounds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = seeded(dir.path()).await;
    assert_eq!(ids(&search(&catalog, &[("q", "Pegelstände")])), ["pegel"]);
    assert_eq!(ids(&search(&catalog, &[("q", "Wasserstande")])), ["wasser"]);
    assert_eq!(ids(&search(&catalog, &[("q", "Zählung")])), ["verkehr"], "a word inside a compound");
    assert_eq!(ids(&search(&catalog, &[("q", "fussganger")])), ["verkehr"], "ß and umlauts folded");
    let hit = &search(&catalog, &[("q", "Pegelstände")]).hits[0];
    assert_eq!(hit.highlights.get("title").map(String::as_str), Some("<mark>Pegelstand</mark> Dalke"));
}

#[tokio::test]
async fn a_snippet_of_a_long_description_says_where_it_leaves_text_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = open(dir.path());
    let filler = "Die Messstellen liegen an kleinen Bächen im Stadtgebiet und werden vom Tiefbauamt betreut. ";
    let description =
        format!("{}Hier steht das Wort Grundwasserpegel (Messnetz Süd). {}", filler.repeat(4), filler.repeat(4));
    let long = spec("lang", "Messnetz", serde_json::json!({"description": description}));
    catalog.create(long).await.expect("create");
    catalog.sync_index().await.expect("sync");
    let hit = &search(&catalog, &[("q", "Grundwasserpegel")]).hits[0];
    let snippet = hit.highlights.get("description").expect("a snippet");
    assert!(snippet.starts_with("…\u{a0}") && snippet.ends_with("\u{a0}…"), "{snippet}");
    assert!(snippet.contains("<mark>Grundwasserpegel</mark>"), "{snippet}");
    // The text between the ellipses begins and ends with whole words of the description.
    let inner =
        snippet.trim_start_matches("…\u{a0}").trim_end_matches("\u{a0}…").replace("<mark>", "").replace("</mark>", "");
    let at = description.find(&inner).expect("a piece of the description");
    assert!(
        description[..at].ends_with(' ') && description[at + inner.len()..].starts_with([' ', '.', ')']),
        "{inner}"
    );
}

#[tokio::test]
async fn facets_count_the_hits_and_filters_narrow_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = seeded(dir.path()).await;
    let all = search(&catalog, &[]);
    assert_eq!(all.total, 3);
    let themes: Vec<(&str, u64)> = all.facets["theme"].iter().map(|f| (f.value.as_str(), f.count)).collect();
    assert_eq!(themes, [("ENVI", 2), ("REGI", 1), ("TRAN", 1)]);
    let licences: Vec<(&str, u64)> = all.facets["licence"].iter().map(|f| (f.value.as_str(), f.count)).collect();
    assert_eq!(licences, [("dl-zero-de/2.0", 2), ("cc-by/4.0", 1)]);
    assert_eq!(all.facets["municipality"][0].count, 3);

    assert_eq!(ids(&search(&catalog, &[("theme", "ENVI")])), ["pegel", "wasser"]);
    assert_eq!(ids(&search(&catalog, &[("theme", "ENVI,TRAN"), ("licence", "dl-zero-de/2.0")])), ["pegel", "verkehr"]);
    assert_eq!(ids(&search(&catalog, &[("bbox", "8.4,51.9,8.6,52.05")])), ["pegel"]);
    assert_eq!(ids(&search(&catalog, &[("from", "2025-06-01"), ("to", "2025-07-01")])), ["verkehr"]);
    assert_eq!(search(&catalog, &[("q", "Pegel"), ("theme", "TRAN")]).total, 0);
}

#[tokio::test]
async fn changes_are_searchable_and_the_index_is_rebuilt_when_damaged() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let catalog = seeded(dir.path()).await;
        let renamed = spec("wasser", "Grundwasser Messstellen", serde_json::json!({"themes": ["ENVI"]}));
        catalog.update(renamed).await.expect("update");
        catalog.delete("verkehr").await.expect("delete");
        catalog.sync_index().await.expect("sync");
        assert_eq!(ids(&search(&catalog, &[("q", "Grundwasser")])), ["wasser"]);
        assert!(search(&catalog, &[("q", "Ems")]).hits.is_empty());
        assert_eq!(ids(&search(&catalog, &[])), ["pegel", "wasser"]);
    }
    std::fs::write(dir.path().join("index").join("meta.json"), b"{ damaged").expect("damage");
    let catalog = open(dir.path());
    assert_eq!(ids(&search(&catalog, &[])), ["pegel", "wasser"]);
    assert_eq!(ids(&search(&catalog, &[("q", "Grundwasser")])), ["wasser"]);
}

#[tokio::test]
async fn pages_walk_every_hit_once_in_a_stable_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = open(dir.path());
    for i in 0..25 {
        catalog.create(spec(&format!("pegel-{i:02}"), "Pegel", serde_json::json!({}))).await.expect("create");
    }
    catalog.sync_index().await.expect("sync");
    let walk = || -> Vec<String> {
        (1..=3)
            .flat_map(|page| {
                let page = page.to_string();
                search(&catalog, &[("q", "Pegel"), ("page", &page), ("per_page", "10")]).hits
            })
            .map(|hit| hit.id)
            .collect()
    };
    let first = walk();
    let mut unique = first.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 25);
    assert_eq!(first, walk());
}

#[tokio::test]
async fn query_syntax_errors_are_reported_not_thrown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = seeded(dir.path()).await;
    for q in ["title:(", "nofield:x", "\"unclosed"] {
        let params: SearchParams = serde_json::from_value(serde_json::json!({ "q": q })).expect("params");
        let request = SearchRequest::parse(params).expect("request");
        match catalog.search(&request) {
            Err(error) => assert!(error.to_string().contains("`q`"), "{q}: {error}"),
            Ok(results) => assert!(results.total <= 3, "{q}: lenient parse"),
        }
    }
}

#[tokio::test]
async fn hits_and_facets_count_only_what_the_caller_may_see() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = open(dir.path());
    catalog.create(spec("offen", "Pegel offen", serde_json::json!({}))).await.expect("create");
    let internal = serde_json::json!({"policy": {"visibility": "internal"}});
    catalog.create(spec("intern", "Pegel intern", internal)).await.expect("create");
    let members = serde_json::json!({"policy": {"visibility": "federation"}});
    catalog.create(spec("verbund", "Pegel Verbund", members)).await.expect("create");
    catalog.sync_index().await.expect("sync");
    let public = search(&catalog, &[("q", "Pegel")]);
    assert_eq!(ids(&public), ["offen"]);
    assert_eq!(public.total, 1);
    let licences: u64 = public.facets["licence"].iter().map(|f| f.count).sum();
    assert_eq!(licences, 1, "facets count what the caller sees");
    let map: serde_json::Map<String, serde_json::Value> = [("q".to_owned(), "Pegel".into())].into_iter().collect();
    let mut request =
        SearchRequest::parse(serde_json::from_value(serde_json::Value::Object(map)).expect("params")).expect("request");
    request.audience = Some(vec!["public".into(), "federation".into()]);
    assert_eq!(catalog.search(&request).expect("search").total, 2, "a member sees federation entries");
    request.audience = None;
    assert_eq!(catalog.search(&request).expect("search").total, 3, "staff see everything");
}
