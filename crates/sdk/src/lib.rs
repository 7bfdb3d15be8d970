//! The Weft guest SDK: write an application as ordinary Rust, compile it to
//! `wasm32-unknown-unknown`, and test it natively with `cargo test`.
//!
//! ```ignore
//! use weft_sdk::prelude::*;
//!
//! #[app::state]
//! pub struct Votes {
//!     tally: Map<String, Counter>,
//! }
//!
//! #[app::event]
//! pub enum Event {
//!     Voted { option: String },
//! }
//!
//! #[app::logic]
//! impl Votes {
//!     #[app::init]
//!     pub fn init() -> Self {
//!         Self::create()
//!     }
//!
//!     pub fn vote(&mut self, option: String) {
//!         self.tally.entry(&option).increment();
//!         app::emit!(Event::Voted { option });
//!     }
//!
//!     pub fn votes(&self, option: String) -> i128 {
//!         self.tally.get(&option).map_or(0, |c| c.value())
//!     }
//! }
//! ```
//!
//! # What the macros do ([`app`])
//!
//! - `#[app::state]` on a struct whose fields are all [`collections`]: each
//!   field is a child of the state's root map keyed by the field name. It
//!   implements [`AppState`]: `create()` creates every field
//!   (`StateCall::Create`), `load()` resolves their ids without writing
//!   (`StateCall::ChildId`).
//! - `#[app::logic]` on the state's impl block: every `pub fn` with a receiver
//!   becomes an export — `&self` a view (read-only: any write fails),
//!   `&mut self` a mutate method, `#[app::handler]` a handler (a mutate
//!   method other nodes run when they apply an event naming it).
//!   `#[app::init]` marks the constructor (`fn ...(args) -> Self`, usually
//!   calling `Self::create()`); without one, an `init` export calls
//!   `create()`. `#[app::view]` may mark a `&self` method explicitly. Public
//!   associated functions without a receiver are not exported.
//! - Arguments arrive as a JSON object keyed by argument name (reference
//!   arguments such as `&str` are received owned); results are returned as
//!   JSON. A method returning `Result<T, E>` returns `T` as its result and `E`
//!   as the app error (status 1); an app error commits nothing.
//! - `#[app::event]` on an enum derives `serde::Serialize` and [`AppEvent`]:
//!   the event kind is the variant name, its data the JSON of the variant's
//!   fields (an object for named fields, the value for one unnamed field, an
//!   array for several, `null` for none). Emit with `app::emit!(event)` or
//!   `app::emit!(event, handler = "on_added")`; a handler receives that data
//!   as its arguments, so its parameters are named like the variant's fields.
//! - The manifest (methods, kinds, argument and result types, events) is
//!   written into the custom section `weft_manifest` (format in
//!   `weft_abi::manifest`).
//!
//! # Encodings
//!
//! Map keys and set elements use [`Key`]: an order-preserving byte encoding
//! (strings as UTF-8, integers big-endian with the sign bit flipped), so
//! iteration is in the natural order of the key type. Values (map values,
//! registers, vector elements) are JSON (serde), the same encoding as method
//! arguments and results.
//!
//! # Failures
//!
//! A host error on a collection operation (a write from a view, a missing
//! collection, a limit) panics with the host's message: the call aborts and
//! nothing is committed. On wasm32 a panic hook reports the message to the
//! host with `panic_utf8` first.
//!
//! # Native tests
//!
//! In native builds the host functions are served by an in-memory host on
//! `weft-state` (see [`testing`]): one or more simulated nodes, each with a
//! test identity, over one context, with a fake clock.

pub mod collections;
pub mod env;
#[doc(hidden)]
pub mod export;
mod key;
#[cfg(not(target_arch = "wasm32"))]
mod native;
mod sys;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use collections::{Collection, Counter, LwwRegister, Map, MapValue, Set, Text, Vector};
pub use key::{EncodeKey, Key};
pub use weft_abi::{CollectionId, MethodKind, Timestamp};

/// What an app module usually imports: `use weft_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::app;
    pub use crate::collections::{Counter, LwwRegister, Map, Set, Text, Vector};
    pub use crate::{App, AppEvent, AppState};
}

/// The app macros, and [`emit!`].
pub mod app {
    pub use crate::emit;
    pub use weft_sdk_macros::{event, handler, init, logic, state, view};
}

/// What `#[app::state]` implements: how to create and find the state's collections.
pub trait AppState: Sized {
    /// Create every field's collection (the init path).
    fn create() -> Self;
    /// Find every field's collection without writing (every other call).
    fn load() -> Self;
}

/// What `#[app::logic]` implements: the exported methods, for the native
/// test host to dispatch calls by name.
pub trait App: AppState {
    /// Every export, in declaration order.
    const EXPORTS: &'static [Export];
}

/// One exported method.
#[derive(Clone, Copy, Debug)]
pub struct Export {
    /// The export name.
    pub name: &'static str,
    /// Its kind.
    pub kind: MethodKind,
    /// The export's body: reads its input, runs, returns its value (on
    /// wasm32 the `extern "C"` export of that name calls it).
    pub run: fn(),
}

/// What `#[app::event]` implements.
pub trait AppEvent {
    /// The event kind: the variant name.
    fn kind(&self) -> &'static str;
    /// The JSON of the variant's fields.
    fn data(&self) -> Vec<u8>;
}

/// Emit an event: `emit!(event)` or `emit!(event, handler = "on_added")`.
#[macro_export]
macro_rules! emit {
    ($event:expr $(,)?) => {
        $crate::env::emit(&$event, ::core::option::Option::None)
    };
    ($event:expr, handler = $handler:expr $(,)?) => {
        $crate::env::emit(&$event, ::core::option::Option::Some($handler))
    };
}

/// Re-exports for the generated code; not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use serde;
    pub use serde_json;
    pub use weft_abi;
}
