//! Pages already rendered for anonymous visitors, so that a crowd reading the same page
//! costs one rendering per change of the catalogue (or of a view's assembly), not one per
//! visit. Signed-in people always get a fresh page.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use axum::http::StatusCode;
use bytes::Bytes;
use urbanmesh_policy::Subject;

use super::layout::Frame;

/// Pages kept at once; when full, all are dropped and rendered again on demand.
const MAX_PAGES: usize = 512;

#[derive(Default)]
pub struct PageCache {
    pages: Mutex<HashMap<String, Page>>,
}

#[derive(Clone)]
pub(crate) struct Page {
    pub(crate) status: StatusCode,
    pub(crate) body: Bytes,
    /// Rows the page shows, for the access log when it is served again.
    pub(crate) rows: u64,
}

impl PageCache {
    pub(crate) fn get(&self, key: &str) -> Option<Page> {
        self.pages.lock().unwrap_or_else(PoisonError::into_inner).get(key).cloned()
    }

    pub(crate) fn put(&self, key: String, page: Page) {
        let mut pages = self.pages.lock().unwrap_or_else(PoisonError::into_inner);
        if pages.len() >= MAX_PAGES {
            pages.clear();
        }
        pages.insert(key, page);
    }
}

/// The key of a page for an anonymous visitor: the page, its language and what it was made
/// from (`version`); `None` for anyone else, who is not served from the cache.
pub(crate) fn key(subject: &Subject, frame: &Frame<'_>, version: impl std::fmt::Display) -> Option<String> {
    matches!(subject, Subject::Anonymous).then(|| format!("{}|{}|{version}", frame.chosen.lang.code(), frame.uri))
}
