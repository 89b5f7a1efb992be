//! The frame of every portal page, and the headers every page is sent with.

use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::lang::Chosen;
use super::words::words;

/// No scripts, no foreign sources, no framing (decision 009).
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// What a page needs from its request to draw the frame.
pub(crate) struct Frame<'a> {
    pub(crate) chosen: Chosen,
    pub(crate) uri: &'a Uri,
    /// The node's name (its catalogue title).
    pub(crate) site: &'a str,
}

impl Frame<'_> {
    pub(crate) fn page(&self, status: StatusCode, title: &str, main: Markup) -> Response {
        self.respond(status, self.html(title, main).into())
    }

    /// The whole document.
    pub(crate) fn html(&self, title: &str, main: Markup) -> String {
        let lang = self.chosen.lang;
        let w = words(lang);
        let markup = html! {
            (DOCTYPE)
            html lang=(lang.code()) {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { @if title == self.site { (title) } @else { (title) " – " (self.site) } }
                    link rel="stylesheet" href="/assets/portal.css";
                }
                body {
                    header {
                        a.site href="/" { (self.site) }
                        nav aria-label=(w.home) {
                            a href=(self.switch_link()) hreflang=(lang.other().code()) lang=(lang.other().code()) {
                                (w.other_language)
                            }
                        }
                    }
                    main { (main) }
                    footer { p { (w.footer) " " a href="/catalog.ttl" { "DCAT-AP.de" } " · " a href="/barrierefreiheit" { (w.accessibility) } } }
                }
            }
        };
        markup.into_string()
    }

    /// A rendered document with the portal's headers.
    pub(crate) fn respond(&self, status: StatusCode, body: bytes::Bytes) -> Response {
        let lang = self.chosen.lang;
        let mut response = (status, axum::body::Body::from(body)).into_response();
        let headers = response.headers_mut();
        for (name, value) in [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "same-origin"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::VARY, "Accept, Cookie"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        if self.chosen.switched {
            let cookie = format!("lang={}; Path=/; Max-Age=31536000; SameSite=Lax", lang.code());
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                headers.insert(header::SET_COOKIE, value);
            }
        }
        response
    }

    /// This page in the other language.
    fn switch_link(&self) -> String {
        let other = self.chosen.lang.other().code();
        let kept: Vec<&str> = self
            .uri
            .query()
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|p| !p.starts_with("lang=") && !p.is_empty())
            .collect();
        let mut query = kept.join("&");
        if !query.is_empty() {
            query.push('&');
        }
        format!("{}?{query}lang={other}", self.uri.path())
    }
}

/// The portal's answer for anything the visitor may not see or that does not exist.
pub(crate) fn not_found(frame: &Frame<'_>) -> Response {
    let w = words(frame.chosen.lang);
    frame.page(
        StatusCode::NOT_FOUND,
        w.not_found_title,
        html! {
            h1 { (w.not_found_title) }
            p { (w.not_found) " " a href="/" { (w.home) } }
        },
    )
}
