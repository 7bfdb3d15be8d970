//! The example apps under `apps/`, compiled to `wasm32-unknown-unknown`
//! (release, size-optimised, LTO) by this crate's build script, as bytes.
//! Each module imports only from `weft`, exports `memory` and one function
//! per method, and carries its manifest in the `weft_manifest` section.
//!
//! Building needs the wasm32 target: `rustup target add wasm32-unknown-unknown`.

/// `apps/kv-store`: set/get/remove/entries/len over a map of strings.
pub const KV_STORE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/kv_store.wasm"));

/// `apps/counter-handlers`: `trigger` makes every other node run `on_event`.
pub const COUNTER_HANDLERS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/counter_handlers.wasm"));

/// `apps/collab-text`: insert/delete/read/len on a shared text.
pub const COLLAB_TEXT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/collab_text.wasm"));

/// Every app: (package name, module bytes).
pub const ALL: [(&str, &[u8]); 3] =
    [("kv-store", KV_STORE), ("counter-handlers", COUNTER_HANDLERS), ("collab-text", COLLAB_TEXT)];
