//! The controlled vocabularies DCAT-AP.de asks for, as the codes staff write and the IRIs
//! the export uses. Only codes that exist in the official tables are listed.

/// One controlled vocabulary: its codes and the IRI they extend.
pub struct Vocabulary {
    /// What the values are, for error messages ("an EU data theme").
    pub what: &'static str,
    pub base: &'static str,
    pub codes: &'static [&'static str],
}

impl Vocabulary {
    /// The IRI of `code`, or `None` when the code is not part of the vocabulary.
    /// The full IRI is accepted as well as the bare code.
    pub fn iri(&self, value: &str) -> Option<String> {
        let code = value.strip_prefix(self.base).unwrap_or(value);
        self.codes.contains(&code).then(|| format!("{}{code}", self.base))
    }

    /// The bare code of `value` (a code or an IRI of this vocabulary).
    pub fn code<'a>(&self, value: &'a str) -> &'a str {
        value.strip_prefix(self.base).unwrap_or(value)
    }

    pub(crate) fn check(&self, field: &str, value: &str) -> Result<(), crate::CatalogError> {
        match self.iri(value) {
            Some(_) => Ok(()),
            None => Err(crate::CatalogError::invalid(
                field,
                format!("`{value}` is not {}; allowed: {}", self.what, self.codes.join(", ")),
            )),
        }
    }
}

pub const THEMES: Vocabulary = Vocabulary {
    what: "an EU data theme",
    base: "http://publications.europa.eu/resource/authority/data-theme/",
    codes: &["AGRI", "ECON", "EDUC", "ENER", "ENVI", "GOVE", "HEAL", "INTR", "JUST", "REGI", "SOCI", "TECH", "TRAN"],
};

pub const FREQUENCIES: Vocabulary = Vocabulary {
    what: "an EU frequency",
    base: "http://publications.europa.eu/resource/authority/frequency/",
    codes: &[
        "1MIN",
        "5MIN",
        "10MIN",
        "15MIN",
        "30MIN",
        "HOURLY",
        "BIHOURLY",
        "TRIHOURLY",
        "12HRS",
        "DAILY",
        "DAILY_2",
        "WEEKLY",
        "WEEKLY_2",
        "WEEKLY_3",
        "MONTHLY",
        "QUARTERLY",
        "ANNUAL",
        "BIENNIAL",
        "TRIENNIAL",
        "QUADRENNIAL",
        "QUINQUENNIAL",
        "DECENNIAL",
        "CONT",
        "UPDATE_CONT",
        "IRREG",
        "NEVER",
        "OTHER",
        "UNKNOWN",
    ],
};

/// The dcat-ap.de licence vocabulary.
pub const LICENCES: Vocabulary = Vocabulary {
    what: "a licence of the dcat-ap.de vocabulary",
    base: "http://dcat-ap.de/def/licenses/",
    codes: &[
        "dl-zero-de/2.0",
        "dl-by-de/2.0",
        "dl-by-de/1.0",
        "dl-by-nc-de/1.0",
        "cc-zero",
        "cc-by/4.0",
        "cc-by",
        "cc-by-de/3.0",
        "cc-by-sa/4.0",
        "cc-by-sa",
        "cc-by-sa-de/3.0",
        "cc-by-nd/4.0",
        "cc-by-nd/3.0",
        "cc-by-nd",
        "cc-by-nc/4.0",
        "cc-by-nc",
        "cc-by-nc-de/3.0",
        "ccpdm/1.0",
        "odbl",
        "odby",
        "odcpddl",
        "officialWork",
        "geonutz/20130319",
        "geoNutz/20131001",
        "apache",
        "bsd",
        "gfdl",
        "gpl/3.0",
        "mozilla",
        "other-open",
        "other-opensource",
        "other-freeware",
        "other-commercial",
        "other-closed",
    ],
};

/// Open data published without a licence named defaults to this one.
pub const DEFAULT_LICENCE: &str = "dl-zero-de/2.0";

/// Whether users of data under this licence must name its source.
pub fn licence_requires_attribution(code: &str) -> bool {
    code.contains("-by") || code == "odby" || code.starts_with("geo")
}

pub const PUBLISHER_TYPES: Vocabulary = Vocabulary {
    what: "an ADMS publisher type",
    base: "http://purl.org/adms/publishertype/",
    codes: &["LocalAuthority", "RegionalAuthority", "NationalAuthority", "PublicBody"],
};

pub const GEOCODING_LEVELS: Vocabulary = Vocabulary {
    what: "a political geocoding level of dcat-ap.de",
    base: "http://dcat-ap.de/def/politicalGeocoding/Level/",
    codes: &["international", "european", "federal", "state", "administrativeDistrict", "municipality"],
};

/// Prefix of the dcat-ap.de political geocoding IRIs (e.g. `municipalityKey/05754008`).
pub const GEOCODING_BASE: &str = "http://dcat-ap.de/def/politicalGeocoding/";

pub const LANGUAGES: Vocabulary = Vocabulary {
    what: "an EU language",
    base: "http://publications.europa.eu/resource/authority/language/",
    codes: &["DEU", "ENG"],
};

pub const ACCESS_RIGHTS_PUBLIC: &str = "http://publications.europa.eu/resource/authority/access-right/PUBLIC";

pub const FILE_TYPES: &str = "http://publications.europa.eu/resource/authority/file-type/";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_iris_are_both_accepted() {
        assert_eq!(
            THEMES.iri("ENVI").as_deref(),
            Some("http://publications.europa.eu/resource/authority/data-theme/ENVI")
        );
        assert!(THEMES.iri("http://publications.europa.eu/resource/authority/data-theme/TRAN").is_some());
        assert!(THEMES.iri("envi").is_none());
        let message = LICENCES.check("licence", "mit").expect_err("unknown").to_string();
        assert!(message.contains("`licence`") && message.contains("dl-zero-de/2.0"), "{message}");
        assert!(licence_requires_attribution("dl-by-de/2.0"));
        assert!(!licence_requires_attribution(DEFAULT_LICENCE));
    }
}
