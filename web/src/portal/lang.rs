//! The visitor's language: `?lang=en|de`, kept in the cookie `lang`; German by default.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    De,
    En,
}

/// The language of this request, and whether the visitor just chose it (to be remembered).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Chosen {
    pub(crate) lang: Lang,
    pub(crate) switched: bool,
}

impl Lang {
    pub(crate) fn code(self) -> &'static str {
        match self {
            Self::De => "de",
            Self::En => "en",
        }
    }

    pub(crate) fn other(self) -> Self {
        match self {
            Self::De => Self::En,
            Self::En => Self::De,
        }
    }

    fn parse(code: &str) -> Option<Self> {
        match code {
            "de" => Some(Self::De),
            "en" => Some(Self::En),
            _ => None,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Chosen {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let asked = parts
            .uri
            .query()
            .into_iter()
            .flat_map(|q| q.split('&'))
            .find_map(|pair| pair.strip_prefix("lang="))
            .and_then(Lang::parse);
        if let Some(lang) = asked {
            return Ok(Self { lang, switched: true });
        }
        let remembered = parts
            .headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|c| c.trim().strip_prefix("lang="))
            .and_then(Lang::parse);
        Ok(Self { lang: remembered.unwrap_or(Lang::De), switched: false })
    }
}
