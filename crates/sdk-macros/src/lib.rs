//! The Weft app macros, re-exported as `weft_sdk::app` (see `weft_sdk`'s
//! crate doc for what app authors write).
//!
//! - [`state`]: `#[app::state]` on a struct of collections → `AppState`.
//! - [`logic`]: `#[app::logic]` on its impl → one export per method, the
//!   `App` dispatch table, and the manifest's `Package` and `Methods` records.
//! - [`event`]: `#[app::event]` on an enum → `serde::Serialize`, `AppEvent`,
//!   and the manifest's `Events` record.
//! - [`init`], [`view`], [`handler`]: markers read (and removed) by `logic`.
//!
//! The manifest records are computed here, at expansion time, with
//! `weft_abi::ManifestRecord::encode_frame`, and placed in the custom section
//! `weft_manifest` by `#[link_section]` statics (wasm32 only); the linker
//! concatenates them.

use proc_macro::TokenStream;

mod event;
mod logic;
mod manifest;
mod state;

/// Implement `weft_sdk::AppState` for a struct whose fields are all
/// collections; each field lives under its name in the root map.
#[proc_macro_attribute]
pub fn state(attr: TokenStream, item: TokenStream) -> TokenStream {
    state::expand(attr.into(), item.into()).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Export the public methods of the state's impl block (see `weft_sdk`).
#[proc_macro_attribute]
pub fn logic(attr: TokenStream, item: TokenStream) -> TokenStream {
    logic::expand(attr.into(), item.into()).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Make an enum an app event type: kind = variant name, data = JSON of the
/// variant's fields.
#[proc_macro_attribute]
pub fn event(attr: TokenStream, item: TokenStream) -> TokenStream {
    event::expand(attr.into(), item.into()).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Marks the constructor inside an `#[app::logic]` impl.
#[proc_macro_attribute]
pub fn init(_attr: TokenStream, item: TokenStream) -> TokenStream {
    misplaced("init", item)
}

/// Marks a view (read-only method) inside an `#[app::logic]` impl.
#[proc_macro_attribute]
pub fn view(_attr: TokenStream, item: TokenStream) -> TokenStream {
    misplaced("view", item)
}

/// Marks an event handler inside an `#[app::logic]` impl.
#[proc_macro_attribute]
pub fn handler(_attr: TokenStream, item: TokenStream) -> TokenStream {
    misplaced("handler", item)
}

/// The markers are consumed by `#[app::logic]`; reaching one means it was
/// used elsewhere.
fn misplaced(marker: &str, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    let message = format!("#[app::{marker}] only marks a method inside an #[app::logic] impl block");
    let error = syn::Error::new(proc_macro2::Span::call_site(), message).into_compile_error();
    quote::quote!(#error #item).into()
}
