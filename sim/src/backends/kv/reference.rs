//! kv/reference
