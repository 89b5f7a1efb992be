use oxrdfio::RdfFormat;

/// The RDF syntaxes the catalogue is published in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RdfSyntax {
    Turtle,
    JsonLd,
    RdfXml,
}

impl RdfSyntax {
    pub const ALL: [RdfSyntax; 3] = [Self::Turtle, Self::JsonLd, Self::RdfXml];

    /// From a file extension as in `/catalog.ttl`.
    pub fn from_extension(extension: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.extension() == extension)
    }

    /// The best match for an `Accept` header; Turtle when the client accepts anything.
    pub fn negotiate(accept: Option<&str>) -> Option<Self> {
        let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else { return Some(Self::Turtle) };
        let mut best: Option<(f32, Self)> = None;
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let quality = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let syntax = match media.as_str() {
                "text/turtle" | "application/x-turtle" => Some(Self::Turtle),
                "application/ld+json" | "application/json" => Some(Self::JsonLd),
                "application/rdf+xml" | "application/xml" | "text/xml" => Some(Self::RdfXml),
                "*/*" | "text/*" => Some(Self::Turtle),
                _ => None,
            };
            if let Some(syntax) = syntax
                && quality > 0.0
                && best.is_none_or(|(q, _)| quality > q)
            {
                best = Some((quality, syntax));
            }
        }
        best.map(|(_, syntax)| syntax)
    }

    pub fn media_type(self) -> &'static str {
        match self {
            Self::Turtle => "text/turtle; charset=utf-8",
            Self::JsonLd => "application/ld+json",
            Self::RdfXml => "application/rdf+xml",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Turtle => "ttl",
            Self::JsonLd => "jsonld",
            Self::RdfXml => "rdf",
        }
    }

    pub(crate) fn format(self) -> RdfFormat {
        match self {
            Self::Turtle => RdfFormat::Turtle,
            Self::JsonLd => RdfFormat::JsonLd { profile: oxrdfio::JsonLdProfileSet::empty() },
            Self::RdfXml => RdfFormat::RdfXml,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers_pick_the_preferred_syntax() {
        assert_eq!(RdfSyntax::negotiate(None), Some(RdfSyntax::Turtle));
        assert_eq!(RdfSyntax::negotiate(Some("application/ld+json")), Some(RdfSyntax::JsonLd));
        assert_eq!(RdfSyntax::negotiate(Some("text/turtle;q=0.5, application/rdf+xml;q=0.9")), Some(RdfSyntax::RdfXml));
        assert_eq!(RdfSyntax::negotiate(Some("image/png")), None);
        assert_eq!(RdfSyntax::negotiate(Some("*/*")), Some(RdfSyntax::Turtle));
    }
}
