//! `stream/durable-streams-server`: the real `durable-streams-server` 0.2.0, embedded.
//!
//! Its own router (`build_router` over `InMemoryStorage`) is served on the same turmoil
//! listener path as the reference, with a long-poll timeout of half the client timeout.
//! It keeps streams in memory and reads the wall clock (`chrono::Utc::now`) for expiry, so
//! it lacks crash durability and simulated time: scenarios that need either are not
//! applicable to it. Its `date` header and process-global `Stream-Cursor` never reach a
//! history (see [`super::http`]).

use durable_streams_server::{build_router, Config, InMemoryStorage};
use std::sync::Arc;

use super::http;
use crate::world::{Node, Software};

pub fn serve(node: Node) -> Software {
    let config = Config {
        long_poll_timeout: node.timeout / 2,
        ..Config::default()
    };
    let storage = Arc::new(InMemoryStorage::new(
        config.max_memory_bytes,
        config.max_stream_bytes,
    ));
    Box::pin(http::serve(build_router(storage, &config)))
}
