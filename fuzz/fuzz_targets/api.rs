//! What an API client sends (`weft_server::fuzzing`, the routes' own
//! parsing without a node): JSON bodies of the REST routes, `POST /jsonrpc`
//! bodies (envelope and params), `/ws` client messages, and hex ids from
//! paths and bodies. Asserts: no panic; every JSON-RPC error response is a
//! JSON-RPC 2.0 error object; a hex id that parses prints back as the same
//! (lower-case) hex.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_primitives::Hash;
use weft_server::fuzzing::{hex_id, jsonrpc_body, rest_bodies, ws_messages};

fuzz_target!(|data: &[u8]| {
    weft_fuzz::init();
    let _ = rest_bodies(data);
    if let Err(response) = jsonrpc_body(data) {
        assert_eq!(response["jsonrpc"], "2.0");
        assert!(response["error"]["code"].is_i64(), "{response}");
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    for reply in ws_messages(text.split('\n')) {
        assert!(reply["type"].is_string(), "{reply}");
    }
    for word in text.split(['/', '"', ' ']) {
        if let Some(id) = hex_id(word) {
            assert_eq!(Hash(id).to_hex(), word.to_ascii_lowercase());
        }
    }
});
