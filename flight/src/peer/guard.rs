//! Membership per request and per message on the members' Flight listener: a request
//! from a peer that is no longer a member is answered PERMISSION_DENIED, and a response
//! stream under way ends with PERMISSION_DENIED at its next message once the member is
//! removed. (The listener closes such connections as well; this covers the time until.)

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tonic::Status;
use urbanmesh_protocol::PeerId;

use super::listener::{MemberCheck, MemberInfo};

/// A tower layer for the members' Flight server (`Server::builder().layer(..)`).
#[derive(Clone)]
pub struct MemberGuardLayer {
    is_member: MemberCheck,
}

impl MemberGuardLayer {
    pub fn new(is_member: MemberCheck) -> Self {
        Self { is_member }
    }
}

impl<S> tower_layer::Layer<S> for MemberGuardLayer {
    type Service = MemberGuard<S>;

    fn layer(&self, inner: S) -> MemberGuard<S> {
        MemberGuard { inner, is_member: std::sync::Arc::clone(&self.is_member) }
    }
}

#[derive(Clone)]
pub struct MemberGuard<S> {
    inner: S,
    is_member: MemberCheck,
}

type Response = http::Response<tonic::body::Body>;

impl<S, B> tower_service::Service<http::Request<B>> for MemberGuard<S>
where
    S: tower_service::Service<http::Request<B>, Response = Response>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // Set by the listener for every connection; a request without it came some other way.
        let peer = request.extensions().get::<MemberInfo>().map(|info| info.peer);
        let Some(peer) = peer.filter(|peer| (self.is_member)(peer)) else {
            return Box::pin(std::future::ready(Ok(denied().into_http())));
        };
        let is_member = std::sync::Arc::clone(&self.is_member);
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            Ok(response.map(|body| tonic::body::Body::new(Guarded { body, peer, is_member, ended: false })))
        })
    }
}

fn denied() -> Status {
    Status::permission_denied("this node is no longer a member of the federation")
}

/// A response body that ends with PERMISSION_DENIED once its reader is no longer a member.
struct Guarded {
    body: tonic::body::Body,
    peer: PeerId,
    is_member: MemberCheck,
    ended: bool,
}

impl Body for Guarded {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if !(self.is_member)(&self.peer) {
            self.ended = true;
            tracing::info!(peer = %self.peer, "ending a stream: the reader is no longer a member");
            let mut trailers = http::HeaderMap::new();
            return Poll::Ready(Some(denied().add_header(&mut trailers).map(|()| Frame::trailers(trailers))));
        }
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        match self.ended {
            true => SizeHint::with_exact(0),
            false => self.body.size_hint(),
        }
    }
}
