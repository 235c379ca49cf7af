//! The Durable Streams HTTP surface, as every stream backend speaks it: an axum router
//! served by hyper over turmoil TCP, and a hyper client that turns operations into requests
//! and responses into answers.
//!
//! The client records only what the protocol defines: status, problem type, the
//! `Stream-*` and `Producer-*` headers it needs and the body. Values a server may choose
//! freely and that carry no protocol meaning here (`date`, `Stream-Cursor`, `ETag`) are
//! never read, so a third-party server's wall clock and process-global counters stay out
//! of the history.

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, Response, StatusCode};
use axum::Router;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use squall_models::stream::{StreamError, StreamOp, StreamRet};
use tokio::task::{spawn_local, AbortHandle};
use turmoil::net::{TcpListener, TcpStream};

use crate::world::PORT;

/// Where the routes are mounted (the default of `durable-streams-server`).
pub const BASE: &str = "/v1/stream";

pub const NEXT: &str = "stream-next-offset";
pub const CLOSED: &str = "stream-closed";
pub const UP_TO_DATE: &str = "stream-up-to-date";
pub const TTL: &str = "stream-ttl";
pub const SEQ: &str = "stream-seq";
pub const PRODUCER_ID: &str = "producer-id";
pub const PRODUCER_EPOCH: &str = "producer-epoch";
pub const PRODUCER_SEQ: &str = "producer-seq";
pub const EXPECTED_SEQ: &str = "producer-expected-seq";
pub const RECEIVED_SEQ: &str = "producer-received-seq";

pub fn content_type(json: bool) -> &'static str {
    if json {
        "application/json"
    } else {
        "application/octet-stream"
    }
}

/// Serve `router` on [`PORT`], one local task a connection.
pub async fn serve(router: Router) -> turmoil::Result {
    let listener = TcpListener::bind(("0.0.0.0", PORT)).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let service = TowerToHyperService::new(router.clone());
        spawn_local(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// One request on a fresh connection: the status, headers and body, or why there is no
/// answer. A fresh connection a call, since turmoil TCP loses bytes for good across a
/// partition and a call the caller gave up on must not leave a half-used one behind.
pub async fn send(
    server: &str,
    request: Request<Body>,
) -> Result<(StatusCode, HeaderMap, Bytes), String> {
    let stream = TcpStream::connect((server, PORT))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let _conn = Abort(spawn_local(conn).abort_handle());
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    Ok((parts.status, parts.headers, body))
}

/// Aborts a task when dropped.
struct Abort(AbortHandle);

impl Drop for Abort {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The request for `op` to `server`.
pub fn request(server: &str, op: &StreamOp) -> Request<Body> {
    let path = format!("{BASE}/{}", op.stream());
    let r = Request::builder().header("host", server);
    let empty = || Body::empty();
    let built = match op {
        StreamOp::Create { json, ttl, .. } => {
            let r = r
                .method(Method::PUT)
                .uri(path)
                .header("content-type", content_type(*json));
            match ttl {
                Some(ttl) => r.header(TTL, ttl.to_string()),
                None => r,
            }
            .body(empty())
        }
        StreamOp::Append {
            json,
            data,
            seq,
            producer,
            close,
            ..
        } => {
            let mut r = r
                .method(Method::POST)
                .uri(path)
                .header("content-type", content_type(*json));
            if let Some(seq) = seq {
                r = r.header(SEQ, seq);
            }
            if let Some(p) = producer {
                r = r
                    .header(PRODUCER_ID, &p.id)
                    .header(PRODUCER_EPOCH, p.epoch.to_string())
                    .header(PRODUCER_SEQ, p.seq.to_string());
            }
            if *close {
                r = r.header(CLOSED, "true");
            }
            let body = if *json {
                serde_json::to_vec(data).expect("strings serialize")
            } else {
                data.concat().into_bytes()
            };
            r.body(Body::from(body))
        }
        StreamOp::Garbled { json, headers, .. } => {
            let mut r = r
                .method(Method::POST)
                .uri(path)
                .header("content-type", content_type(*json));
            for (name, value) in headers {
                r = r.header(name, value);
            }
            let body = match json {
                true => r#"["garbled"]"#,
                false => "garbled;",
            };
            r.body(Body::from(body))
        }
        StreamOp::Close { .. } => r
            .method(Method::POST)
            .uri(path)
            .header(CLOSED, "true")
            .body(empty()),
        StreamOp::Read { from, wait, .. } => {
            let mut uri = format!("{path}?offset={}", from.as_deref().unwrap_or("-1"));
            if *wait {
                uri.push_str("&live=long-poll");
            }
            r.method(Method::GET).uri(uri).body(empty())
        }
        StreamOp::Head { .. } => r.method(Method::HEAD).uri(path).body(empty()),
        StreamOp::Delete { .. } => r.method(Method::DELETE).uri(path).body(empty()),
    };
    built.expect("operations make valid requests")
}

/// The answer a response gives to `op`.
pub fn answer(
    op: &StreamOp,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<StreamRet, String> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let flag = |name: &str| text(name).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let number = |name: &str| {
        text(name)
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| format!("{status} without a numeric {name} header"))
    };
    let next = || {
        text(NEXT)
            .map(str::to_string)
            .ok_or_else(|| format!("{status} without {NEXT}"))
    };
    if !status.is_success() {
        return error(status, body, number, next).map(StreamRet::Err);
    }
    let ok = status.as_u16();
    Ok(match op {
        StreamOp::Create { .. } => StreamRet::Created {
            next: next()?,
            new: ok == 201,
        },
        StreamOp::Append { producer, .. } => match (producer, ok) {
            (Some(_), 204) => StreamRet::Duplicate {
                next: next()?,
                epoch: number(PRODUCER_EPOCH)?,
                seq: number(PRODUCER_SEQ)?,
                closed: flag(CLOSED),
            },
            (Some(_), _) => StreamRet::Appended {
                next: next()?,
                closed: flag(CLOSED),
                producer: Some((number(PRODUCER_EPOCH)?, number(PRODUCER_SEQ)?)),
            },
            (None, _) => StreamRet::Appended {
                next: next()?,
                closed: flag(CLOSED),
                producer: None,
            },
        },
        // Taken: as a plain append, which the model refuses.
        StreamOp::Garbled { .. } => StreamRet::Appended {
            next: next()?,
            closed: flag(CLOSED),
            producer: None,
        },
        StreamOp::Close { .. } => StreamRet::Closed { next: next()? },
        StreamOp::Read { .. } => {
            let json = text("content-type").is_some_and(|t| t.starts_with("application/json"));
            let data = if body.is_empty() {
                Vec::new()
            } else if json {
                let values: Vec<serde_json::Value> =
                    serde_json::from_slice(body).map_err(|e| format!("read body: {e}"))?;
                values
                    .into_iter()
                    .map(|v| match v {
                        serde_json::Value::String(s) => s,
                        v => v.to_string(),
                    })
                    .collect()
            } else {
                vec![String::from_utf8_lossy(body).into_owned()]
            };
            StreamRet::Read {
                data,
                next: next()?,
                up_to_date: flag(UP_TO_DATE),
                closed: flag(CLOSED),
            }
        }
        StreamOp::Head { .. } => StreamRet::Meta {
            json: text("content-type").is_some_and(|t| t.starts_with("application/json")),
            next: next()?,
            closed: flag(CLOSED),
        },
        StreamOp::Delete { .. } => StreamRet::Deleted,
    })
}

/// The error an unsuccessful response reports: its status, and its problem type (the last
/// segment of the problem+json `type`) with the headers that go with it.
fn error(
    status: StatusCode,
    body: &[u8],
    number: impl Fn(&str) -> Result<u64, String>,
    next: impl Fn() -> Result<String, String>,
) -> Result<StreamError, String> {
    let problem: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let kind = problem
        .as_ref()
        .and_then(|p| p.get("type")?.as_str())
        .map(|t| t.rsplit('/').next().unwrap_or(t).to_string())
        .unwrap_or_default();
    Ok(match (status.as_u16(), kind.as_str()) {
        (404, _) => StreamError::NotFound,
        (403, "producer-epoch-fenced") => StreamError::Fenced {
            current: number(PRODUCER_EPOCH)?,
        },
        (409, "already-exists") => StreamError::Exists,
        (409, "content-type-mismatch") => StreamError::ContentType,
        (409, "stream-closed") => StreamError::StreamClosed { next: next()? },
        (409, "sequence-conflict") => match (number(EXPECTED_SEQ), number(RECEIVED_SEQ)) {
            (Ok(expected), Ok(received)) => StreamError::Gap { expected, received },
            _ => StreamError::SeqOrder,
        },
        (400, _) => StreamError::BadRequest { kind },
        (status, _) => StreamError::Other { status, kind },
    })
}

/// The response that gives `ret`, for a server. `json`: the stream's content type is JSON;
/// `wait`: the request was a long-poll (an empty read is its timeout, 204).
pub fn response(ret: &StreamRet, json: bool, wait: bool) -> Response<Body> {
    let r = Response::builder();
    let with_next = |r: axum::http::response::Builder, next: &str| r.header(NEXT, next);
    let closed = |r: axum::http::response::Builder, on: bool| {
        if on {
            r.header(CLOSED, "true")
        } else {
            r
        }
    };
    let built = match ret {
        StreamRet::Created { next, new } => {
            let status = if *new { 201 } else { 200 };
            with_next(r.status(status), next).body(Body::empty())
        }
        StreamRet::Appended {
            next,
            closed: c,
            producer,
        } => {
            let r = closed(with_next(r, next), *c);
            match producer {
                Some((epoch, seq)) => r
                    .status(200)
                    .header(PRODUCER_EPOCH, epoch.to_string())
                    .header(PRODUCER_SEQ, seq.to_string()),
                None => r.status(204),
            }
            .body(Body::empty())
        }
        StreamRet::Duplicate {
            next,
            epoch,
            seq,
            closed: c,
        } => closed(with_next(r.status(204), next), *c)
            .header(PRODUCER_EPOCH, epoch.to_string())
            .header(PRODUCER_SEQ, seq.to_string())
            .body(Body::empty()),
        StreamRet::Closed { next } => {
            closed(with_next(r.status(204), next), true).body(Body::empty())
        }
        StreamRet::Read {
            data,
            next,
            up_to_date,
            closed: c,
        } => {
            let r = closed(with_next(r, next), *c);
            let r = if *up_to_date {
                r.header(UP_TO_DATE, "true")
            } else {
                r
            };
            if wait && data.is_empty() {
                r.status(204).body(Body::empty())
            } else if json {
                let body = serde_json::to_vec(data).expect("strings serialize");
                r.status(200)
                    .header("content-type", content_type(true))
                    .body(Body::from(body))
            } else {
                r.status(200)
                    .header("content-type", content_type(false))
                    .body(Body::from(data.concat()))
            }
        }
        StreamRet::Meta {
            json,
            next,
            closed: c,
        } => closed(with_next(r.status(200), next), *c)
            .header("content-type", content_type(*json))
            .body(Body::empty()),
        StreamRet::Deleted => r.status(204).body(Body::empty()),
        StreamRet::Err(e) => {
            let mut r = r
                .status(e.status())
                .header("content-type", "application/problem+json");
            match e {
                StreamError::StreamClosed { next } => r = closed(with_next(r, next), true),
                StreamError::Gap { expected, received } => {
                    r = r
                        .header(EXPECTED_SEQ, expected.to_string())
                        .header(RECEIVED_SEQ, received.to_string())
                }
                StreamError::Fenced { current } => {
                    r = r.header(PRODUCER_EPOCH, current.to_string())
                }
                _ => {}
            }
            let problem = serde_json::json!({
                "type": format!("/errors/{}", e.kind()),
                "title": e.kind(),
                "status": e.status(),
            });
            r.body(Body::from(problem.to_string()))
        }
    };
    built.expect("answers make valid responses")
}
