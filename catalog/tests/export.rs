//! The DCAT export reads back as the same graph in every syntax.

use oxrdf::{NamedNodeRef, TermRef};
use oxrdfio::RdfParser;
use urbanmesh_catalog::dcat::{self, Paging, RdfSyntax};
use urbanmesh_catalog::{Catalog, CatalogInfo, DatasetSpec, Endpoints};
use urbanmesh_policy::Subject;

const DATASET: NamedNodeRef<'_> = NamedNodeRef::new_unchecked("http://www.w3.org/ns/dcat#Dataset");
const TYPE: NamedNodeRef<'_> = NamedNodeRef::new_unchecked("http://www.w3.org/1999/02/22-rdf-syntax-ns#type");
const LICENSE: NamedNodeRef<'_> = NamedNodeRef::new_unchecked("http://purl.org/dc/terms/license");

async fn catalog(dir: &std::path::Path, datasets: usize) -> Catalog {
    let db = sled::open(dir.join("meta")).expect("sled");
    let catalog = Catalog::open(db, CatalogInfo::for_municipality("Herford"), &dir.join("index")).expect("catalog");
    for i in 0..datasets {
        let spec: DatasetSpec = serde_json::from_value(serde_json::json!({
            "id": format!("ds-{i:03}"), "title": format!("Zählstelle {i}"), "description": "Passanten je Stunde",
            "schema": {"fields": [{"name": "n", "type": "int64"}]},
            "licence": if i % 2 == 0 { "dl-by-de/2.0" } else { "cc-zero" }, "themes": ["TRAN"],
            "contact_point": {"name": "Stadt Herford", "url": "https://www.herford.de/"},
            "policy": {"visibility": if i == 0 { "internal" } else { "public" }}
        }))
        .expect("spec");
        catalog.create(spec).await.expect("create");
    }
    catalog
}

fn endpoints() -> Endpoints {
    Endpoints { http: "https://daten.herford.de".into(), flight: "grpc://daten.herford.de:8815".into() }
}

fn parse(syntax: RdfSyntax, bytes: &[u8]) -> Vec<oxrdf::Quad> {
    let format = match syntax {
        RdfSyntax::Turtle => oxrdfio::RdfFormat::Turtle,
        RdfSyntax::JsonLd => oxrdfio::RdfFormat::JsonLd { profile: oxrdfio::JsonLdProfileSet::empty() },
        RdfSyntax::RdfXml => oxrdfio::RdfFormat::RdfXml,
    };
    RdfParser::from_format(format).for_slice(bytes).collect::<Result<_, _>>().expect("the export parses")
}

#[tokio::test]
async fn every_syntax_carries_the_same_triples() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = catalog(dir.path(), 5).await;
    let mut counts = Vec::new();
    for syntax in RdfSyntax::ALL {
        let bytes =
            dcat::write_catalog(&catalog, &endpoints(), syntax, None, &Subject::Admin, Vec::new()).expect("export");
        let quads = parse(syntax, &bytes);
        let datasets =
            quads.iter().filter(|q| q.predicate.as_ref() == TYPE && q.object.as_ref() == DATASET.into()).count();
        assert_eq!(datasets, 5, "{syntax:?}");
        let by = quads
            .iter()
            .filter(|q| {
                q.predicate.as_ref() == LICENSE
                    && q.object.as_ref()
                        == TermRef::from(NamedNodeRef::new_unchecked("http://dcat-ap.de/def/licenses/dl-by-de/2.0"))
            })
            .count();
        assert_eq!(by, 3 * 4, "three datasets, four distributions each");
        counts.push(quads.len());
    }
    assert!(counts.windows(2).all(|w| w[0] == w[1]), "{counts:?}");
}

#[tokio::test]
async fn pages_hold_their_share_and_hide_what_is_not_visible() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = catalog(dir.path(), 5).await;
    let paging = Paging { page: 2, per_page: 2, path: "/catalog.ttl".into() };
    // ds-000 is internal: the public's export leaves it out.
    let bytes =
        dcat::write_catalog(&catalog, &endpoints(), RdfSyntax::Turtle, Some(&paging), &Subject::Anonymous, Vec::new())
            .expect("export");
    let text = String::from_utf8(bytes).expect("utf-8");
    assert!(text.contains("hydra:totalItems 4"), "{text}");
    assert!(text.contains("<https://daten.herford.de/datasets/ds-003> a dcat:Dataset"), "{text}");
    assert!(text.contains("<https://daten.herford.de/datasets/ds-004> a dcat:Dataset"), "{text}");
    assert!(!text.contains("datasets/ds-001> a dcat:Dataset"), "{text}");
    assert!(text.contains("hydra:previousPage") && !text.contains("hydra:nextPage"), "{text}");
}
