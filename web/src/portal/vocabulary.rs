//! The DCAT-AP.de codes in plain words: each code of the vocabularies a page shows (themes,
//! licences, update frequencies) with its label in German and English, and where a
//! licence's text is to be read.

use urbanmesh_catalog::vocab::LICENCES;

use super::lang::Lang;

/// `(code, German, English)`.
type Labels = &'static [(&'static str, &'static str, &'static str)];

/// The label of `code` in `lang`, or the code itself when it has none.
fn label(labels: Labels, lang: Lang, code: &str) -> &str {
    labels.iter().find(|(c, ..)| *c == code).map_or(code, |(_, de, en)| if lang == Lang::De { de } else { en })
}

pub(crate) fn theme(lang: Lang, code: &str) -> &str {
    label(THEMES, lang, code)
}

pub(crate) fn licence(lang: Lang, code: &str) -> &str {
    label(LICENCE_NAMES, lang, code)
}

pub(crate) fn frequency(lang: Lang, code: &str) -> &str {
    label(FREQUENCIES, lang, code)
}

/// Where the licence's text is: its publisher's page where there is a stable one, else its
/// entry in the dcat-ap.de vocabulary.
pub(crate) fn licence_text(code: &str) -> String {
    LICENCE_TEXTS
        .iter()
        .find(|(c, _)| *c == code)
        .map_or_else(|| LICENCES.iri(code).unwrap_or_default(), |(_, url)| (*url).to_owned())
}

const THEMES: Labels = &[
    (
        "AGRI",
        "Landwirtschaft, Fischerei, Forstwirtschaft und Nahrungsmittel",
        "Agriculture, fisheries, forestry and food",
    ),
    ("ECON", "Wirtschaft und Finanzen", "Economy and finance"),
    ("EDUC", "Bildung, Kultur und Sport", "Education, culture and sport"),
    ("ENER", "Energie", "Energy"),
    ("ENVI", "Umwelt", "Environment"),
    ("GOVE", "Regierung und öffentlicher Sektor", "Government and public sector"),
    ("HEAL", "Gesundheit", "Health"),
    ("INTR", "Internationale Themen", "International issues"),
    ("JUST", "Justiz, Rechtssystem und öffentliche Sicherheit", "Justice, legal system and public safety"),
    ("REGI", "Regionen und Städte", "Regions and cities"),
    ("SOCI", "Bevölkerung und Gesellschaft", "Population and society"),
    ("TECH", "Wissenschaft und Technologie", "Science and technology"),
    ("TRAN", "Verkehr", "Transport"),
];

const LICENCE_NAMES: Labels = &[
    ("dl-zero-de/2.0", "Datenlizenz Deutschland – Zero – Version 2.0", "Data licence Germany – Zero – version 2.0"),
    (
        "dl-by-de/2.0",
        "Datenlizenz Deutschland – Namensnennung – Version 2.0",
        "Data licence Germany – attribution – version 2.0",
    ),
    (
        "dl-by-de/1.0",
        "Datenlizenz Deutschland – Namensnennung – Version 1.0",
        "Data licence Germany – attribution – version 1.0",
    ),
    (
        "dl-by-nc-de/1.0",
        "Datenlizenz Deutschland – Namensnennung – nicht-kommerziell – Version 1.0",
        "Data licence Germany – attribution – non-commercial – version 1.0",
    ),
    ("cc-zero", "Creative Commons CC Zero (CC0 1.0)", "Creative Commons CC Zero (CC0 1.0)"),
    (
        "cc-by/4.0",
        "Creative Commons Namensnennung 4.0 International (CC BY 4.0)",
        "Creative Commons Attribution 4.0 International (CC BY 4.0)",
    ),
    ("cc-by", "Creative Commons Namensnennung (CC BY)", "Creative Commons Attribution (CC BY)"),
    (
        "cc-by-de/3.0",
        "Creative Commons Namensnennung 3.0 Deutschland (CC BY 3.0 DE)",
        "Creative Commons Attribution 3.0 Germany (CC BY 3.0 DE)",
    ),
    (
        "cc-by-sa/4.0",
        "Creative Commons Namensnennung – Weitergabe unter gleichen Bedingungen 4.0 International (CC BY-SA 4.0)",
        "Creative Commons Attribution-ShareAlike 4.0 International (CC BY-SA 4.0)",
    ),
    (
        "cc-by-sa",
        "Creative Commons Namensnennung – Weitergabe unter gleichen Bedingungen (CC BY-SA)",
        "Creative Commons Attribution-ShareAlike (CC BY-SA)",
    ),
    (
        "cc-by-sa-de/3.0",
        "Creative Commons Namensnennung – Weitergabe unter gleichen Bedingungen 3.0 Deutschland (CC BY-SA 3.0 DE)",
        "Creative Commons Attribution-ShareAlike 3.0 Germany (CC BY-SA 3.0 DE)",
    ),
    (
        "cc-by-nd/4.0",
        "Creative Commons Namensnennung – Keine Bearbeitungen 4.0 International (CC BY-ND 4.0)",
        "Creative Commons Attribution-NoDerivatives 4.0 International (CC BY-ND 4.0)",
    ),
    (
        "cc-by-nd/3.0",
        "Creative Commons Namensnennung – Keine Bearbeitungen 3.0 Unported (CC BY-ND 3.0)",
        "Creative Commons Attribution-NoDerivs 3.0 Unported (CC BY-ND 3.0)",
    ),
    (
        "cc-by-nd",
        "Creative Commons Namensnennung – Keine Bearbeitungen (CC BY-ND)",
        "Creative Commons Attribution-NoDerivs (CC BY-ND)",
    ),
    (
        "cc-by-nc/4.0",
        "Creative Commons Namensnennung – Nicht kommerziell 4.0 International (CC BY-NC 4.0)",
        "Creative Commons Attribution-NonCommercial 4.0 International (CC BY-NC 4.0)",
    ),
    (
        "cc-by-nc",
        "Creative Commons Namensnennung – Nicht kommerziell (CC BY-NC)",
        "Creative Commons Attribution-NonCommercial (CC BY-NC)",
    ),
    (
        "cc-by-nc-de/3.0",
        "Creative Commons Namensnennung – Nicht kommerziell 3.0 Deutschland (CC BY-NC 3.0 DE)",
        "Creative Commons Attribution-NonCommercial 3.0 Germany (CC BY-NC 3.0 DE)",
    ),
    ("ccpdm/1.0", "Public Domain Mark 1.0", "Public Domain Mark 1.0"),
    ("odbl", "Open Data Commons Open Database License (ODbL)", "Open Data Commons Open Database License (ODbL)"),
    ("odby", "Open Data Commons Attribution License (ODC-By)", "Open Data Commons Attribution License (ODC-By)"),
    (
        "odcpddl",
        "Open Data Commons Public Domain Dedication and Licence (PDDL)",
        "Open Data Commons Public Domain Dedication and Licence (PDDL)",
    ),
    (
        "officialWork",
        "Amtliches Werk, lizenzfrei nach § 5 Abs. 1 UrhG",
        "Official work, free of copyright under § 5 (1) UrhG",
    ),
    (
        "geonutz/20130319",
        "Nutzungsbestimmungen für die Bereitstellung von Geodaten des Bundes",
        "Terms of use for geodata of the Federal Government",
    ),
    (
        "geoNutz/20131001",
        "Nutzungsbestimmungen für die Bereitstellung von Geodaten des Landes Berlin",
        "Terms of use for geodata of the State of Berlin",
    ),
    ("apache", "Apache-Lizenz", "Apache License"),
    ("bsd", "BSD-Lizenz", "BSD License"),
    ("gfdl", "GNU Free Documentation License (GFDL)", "GNU Free Documentation License (GFDL)"),
    ("gpl/3.0", "GNU General Public License Version 3.0 (GPLv3)", "GNU General Public License version 3.0 (GPLv3)"),
    ("mozilla", "Mozilla Public License 2.0 (MPL)", "Mozilla Public License 2.0 (MPL)"),
    ("other-open", "Andere offene Lizenz", "Other open licence"),
    ("other-opensource", "Andere Open-Source-Lizenz", "Other open-source licence"),
    ("other-freeware", "Andere Freeware-Lizenz", "Other freeware licence"),
    ("other-commercial", "Andere kommerzielle Lizenz", "Other commercial licence"),
    ("other-closed", "Andere geschlossene Lizenz", "Other closed licence"),
];

/// Licence texts at their publishers.
const LICENCE_TEXTS: &[(&str, &str)] = &[
    ("dl-zero-de/2.0", "https://www.govdata.de/dl-de/zero-2-0"),
    ("dl-by-de/2.0", "https://www.govdata.de/dl-de/by-2-0"),
    ("dl-by-de/1.0", "https://www.govdata.de/dl-de/by-1-0"),
    ("dl-by-nc-de/1.0", "https://www.govdata.de/dl-de/by-nc-1-0"),
    ("cc-zero", "https://creativecommons.org/publicdomain/zero/1.0/"),
    ("cc-by/4.0", "https://creativecommons.org/licenses/by/4.0/"),
    ("cc-by-de/3.0", "https://creativecommons.org/licenses/by/3.0/de/"),
    ("cc-by-sa/4.0", "https://creativecommons.org/licenses/by-sa/4.0/"),
    ("cc-by-sa-de/3.0", "https://creativecommons.org/licenses/by-sa/3.0/de/"),
    ("cc-by-nd/4.0", "https://creativecommons.org/licenses/by-nd/4.0/"),
    ("cc-by-nd/3.0", "https://creativecommons.org/licenses/by-nd/3.0/"),
    ("cc-by-nc/4.0", "https://creativecommons.org/licenses/by-nc/4.0/"),
    ("cc-by-nc-de/3.0", "https://creativecommons.org/licenses/by-nc/3.0/de/"),
    ("ccpdm/1.0", "https://creativecommons.org/publicdomain/mark/1.0/"),
    ("odbl", "https://opendatacommons.org/licenses/odbl/1-0/"),
    ("odby", "https://opendatacommons.org/licenses/by/1-0/"),
    ("odcpddl", "https://opendatacommons.org/licenses/pddl/1-0/"),
    ("officialWork", "https://www.gesetze-im-internet.de/urhg/__5.html"),
    ("apache", "https://www.apache.org/licenses/LICENSE-2.0"),
    ("gfdl", "https://www.gnu.org/licenses/fdl-1.3.html"),
    ("gpl/3.0", "https://www.gnu.org/licenses/gpl-3.0.html"),
    ("mozilla", "https://www.mozilla.org/MPL/2.0/"),
];

/// The EU frequency authority table's codes, as a reader would say them.
const FREQUENCIES: Labels = &[
    ("1MIN", "jede Minute", "every minute"),
    ("5MIN", "alle 5 Minuten", "every 5 minutes"),
    ("10MIN", "alle 10 Minuten", "every 10 minutes"),
    ("15MIN", "alle 15 Minuten", "every 15 minutes"),
    ("30MIN", "alle 30 Minuten", "every 30 minutes"),
    ("HOURLY", "stündlich", "hourly"),
    ("BIHOURLY", "alle zwei Stunden", "every two hours"),
    ("TRIHOURLY", "alle drei Stunden", "every three hours"),
    ("12HRS", "alle zwölf Stunden", "every twelve hours"),
    ("DAILY", "täglich", "daily"),
    ("DAILY_2", "zweimal täglich", "twice a day"),
    ("WEEKLY", "wöchentlich", "weekly"),
    ("WEEKLY_2", "zweimal wöchentlich", "twice a week"),
    ("WEEKLY_3", "dreimal wöchentlich", "three times a week"),
    ("MONTHLY", "monatlich", "monthly"),
    ("QUARTERLY", "vierteljährlich", "quarterly"),
    ("ANNUAL", "jährlich", "every year"),
    ("BIENNIAL", "alle zwei Jahre", "every two years"),
    ("TRIENNIAL", "alle drei Jahre", "every three years"),
    ("QUADRENNIAL", "alle vier Jahre", "every four years"),
    ("QUINQUENNIAL", "alle fünf Jahre", "every five years"),
    ("DECENNIAL", "alle zehn Jahre", "every ten years"),
    ("CONT", "kontinuierlich", "continuously"),
    ("UPDATE_CONT", "laufend aktualisiert", "updated continuously"),
    ("IRREG", "unregelmäßig", "irregularly"),
    ("NEVER", "nie", "never"),
    ("OTHER", "sonstige", "other"),
    ("UNKNOWN", "unbekannt", "unknown"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use urbanmesh_catalog::vocab::{FREQUENCIES as FREQUENCY_CODES, THEMES as THEME_CODES};

    #[test]
    fn every_code_a_dataset_may_carry_has_labels_in_both_languages() {
        for (labels, codes) in [(THEMES, &THEME_CODES), (LICENCE_NAMES, &LICENCES), (FREQUENCIES, &FREQUENCY_CODES)] {
            for code in codes.codes {
                let (de, en) = (label(labels, Lang::De, code), label(labels, Lang::En, code));
                assert!(de != *code && en != *code, "{code} has no label");
            }
            assert_eq!(labels.len(), codes.codes.len(), "labels for codes that do not exist");
        }
    }

    #[test]
    fn a_licence_links_to_its_text() {
        assert_eq!(licence_text("dl-by-de/2.0"), "https://www.govdata.de/dl-de/by-2-0");
        assert_eq!(licence_text("other-open"), "http://dcat-ap.de/def/licenses/other-open");
        assert!(LICENCE_TEXTS.iter().all(|(code, _)| LICENCES.iri(code).is_some()));
    }
}
