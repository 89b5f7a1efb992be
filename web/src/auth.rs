use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use urbanmesh_policy::Subject;

use crate::AppState;
use crate::problem::Problem;

/// The caller of a request: a bearer token (the admin token or a JWT of the OpenID
/// provider), else the signed-in person's session cookie, else anonymous. A token that
/// is presented but not accepted is refused with 401.
pub(crate) struct Caller(pub(crate) Subject);

/// A caller who may change the node's settings: the admin token or a person with the
/// `admin` role (policies, audit log, federation).
pub(crate) struct Admin(#[allow(dead_code)] pub(crate) Subject);

/// A caller who may publish and change datasets: admins and editors.
pub(crate) struct Editor(#[allow(dead_code)] pub(crate) Subject);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let authorization = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
        if authorization.is_none()
            && let Some((_, session)) = crate::session::of_request(&parts.headers, &state.sessions)
        {
            if !crate::session::csrf_ok(parts, &session) {
                return Err(Problem::new(
                    StatusCode::FORBIDDEN,
                    format!("changes made with a session need its CSRF token in `{}`", crate::session::CSRF_HEADER),
                ));
            }
            return Ok(Self(session.subject));
        }
        let subject = state
            .identities
            .subject(authorization)
            .await
            .map_err(|e| Problem::new(StatusCode::UNAUTHORIZED, e.to_string()))?;
        Ok(Self(subject))
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Caller(subject) = Caller::from_request_parts(parts, state).await?;
        if subject.is_admin() {
            Ok(Self(subject))
        } else {
            Err(refusal(&subject, "the admin token or the `admin` role"))
        }
    }
}

impl FromRequestParts<AppState> for Editor {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Caller(subject) = Caller::from_request_parts(parts, state).await?;
        if subject.may_edit() {
            Ok(Self(subject))
        } else {
            Err(refusal(&subject, "the admin token or the `editor` or `admin` role"))
        }
    }
}

fn refusal(subject: &Subject, needs: &str) -> Problem {
    match subject {
        Subject::Anonymous => Problem::new(
            StatusCode::UNAUTHORIZED,
            format!("this endpoint needs {needs}, as `Authorization: Bearer <token>`"),
        ),
        other => {
            Problem::new(StatusCode::FORBIDDEN, format!("this endpoint needs {needs}; {} lacks it", other.label()))
        }
    }
}
