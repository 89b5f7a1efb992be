use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use urbanmesh_policy::Subject;

use crate::AppState;
use crate::problem::Problem;

/// The caller of a request: anonymous unless it presents the admin token.
pub(crate) struct Caller(pub(crate) Subject);

/// A caller that must hold the admin token (state-changing endpoints).
pub(crate) struct Admin;

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let authorization = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
        Ok(Self(state.admin_token.subject(authorization)))
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Caller(subject) = Caller::from_request_parts(parts, state).await?;
        if subject.is_admin() { Ok(Self) } else { Err(Problem::unauthorized()) }
    }
}
