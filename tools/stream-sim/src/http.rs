//! HTTP pieces shared by the handlers ([`crate::server`] for streams,
//! [`crate::admin`] for `/sim/`): the response type, refusals with their
//! JSON bodies, the streaming body fed by a connection task, and HTTP Basic
//! authentication.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{HeaderValue, AUTHORIZATION, CONNECTION, CONTENT_ENCODING, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use tokio::sync::mpsc;

use crate::config::SimConfig;
use crate::out::Frames;
use crate::protocol::{self, Refusal};

/// The streaming response body: frames come from the connection task.
/// An `Err` item makes hyper abort the connection (no chunked terminator),
/// which is how faults cut a connection.
pub struct ChanBody {
    rx: mpsc::Receiver<Frames>,
}

impl Body for ChanBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data)))
    }
}

/// A response: a whole body, or a stream.
pub(crate) type Resp = Response<Either<Full<Bytes>, ChanBody>>;

/// A refusal as a response.
pub(crate) fn refusal(r: &Refusal) -> Resp {
    let mut resp = Response::new(Either::Left(Full::new(Bytes::from(r.body.clone()))));
    *resp.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    if r.status == 401 {
        resp.headers_mut().insert("www-authenticate", HeaderValue::from_static("Basic realm=\"stream-sim\""));
    }
    resp
}

/// A JSON document as a response.
pub(crate) fn json(status: StatusCode, v: serde_json::Value) -> Resp {
    let mut resp = Response::new(Either::Left(Full::new(Bytes::from(v.to_string()))));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    resp
}

/// A stream's response: gzip, chunked, fed from `rx`.
pub(crate) fn streaming(rx: mpsc::Receiver<Frames>) -> Resp {
    let mut resp = Response::new(Either::Right(ChanBody { rx }));
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    h.insert(CONNECTION, HeaderValue::from_static("keep-alive"));
    h.insert("vary", HeaderValue::from_static("Accept-Encoding"));
    resp
}

/// HTTP Basic credentials match the configured ones.
pub(crate) fn authorized(cfg: &SimConfig, req: &hyper::Request<Incoming>) -> bool {
    let creds = req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(protocol::basic_credentials);
    matches!(creds, Some((u, p)) if u == cfg.user && p == cfg.password)
}
