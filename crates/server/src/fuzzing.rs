//! The API's decoders of client bytes, callable without a node or a socket:
//! for the fuzz target `fuzz/fuzz_targets/api.rs`. Not part of the API.
//!
//! Each function runs exactly the code a route runs on its input before it
//! asks the node, and says whether the input was accepted.

use serde_json::Value;

use crate::errors::{decode_json_body, parse_id};
use crate::rest::contexts::{CreateContext, Invite, Join, Revoke};
use crate::rest::ops::SyncNow;

/// `bytes` as the body of each REST route that takes JSON, in the order
/// `POST /admin/contexts`, `…/{id}/invitations/revoke`, `…/{id}/invitations`,
/// `…/join`, `/admin/sync`: which of them accept it.
pub fn rest_bodies(bytes: &[u8]) -> [bool; 5] {
    [
        decode_json_body::<CreateContext>(bytes).is_ok(),
        decode_json_body::<Revoke>(bytes).is_ok(),
        decode_json_body::<Invite>(bytes).is_ok(),
        decode_json_body::<Join>(bytes).is_ok(),
        decode_json_body::<SyncNow>(bytes).is_ok(),
    ]
}

/// `bytes` as a `POST /jsonrpc` body: `Ok` if the envelope and the params
/// of the method it names check out, else the error response.
pub fn jsonrpc_body(bytes: &[u8]) -> Result<(), Value> {
    crate::rpc::check_request(bytes)
}

/// `texts` as client messages in turn on one `/ws` connection: the replies.
pub fn ws_messages<'t>(texts: impl IntoIterator<Item = &'t str>) -> Vec<Value> {
    crate::ws::answers(texts)
}

/// `text` as a hex id (or key) from a path or a body: its bytes if accepted.
pub fn hex_id(text: &str) -> Option<[u8; 32]> {
    parse_id("id", text).ok().map(|id| id.0)
}
