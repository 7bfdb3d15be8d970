//! Manifest records as link-section statics, and Rust types as manifest text.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use weft_abi::ManifestRecord;

/// A wasm32-only static holding `records` (framed) in the `weft_manifest`
/// custom section. Wrapped in an anonymous const so several can coexist.
pub(crate) fn section_static(tag: &str, records: &[ManifestRecord]) -> TokenStream {
    let bytes: Vec<u8> = records.iter().flat_map(ManifestRecord::encode_frame).collect();
    let len = bytes.len();
    let name = format_ident!("__WEFT_MANIFEST_{}", tag.to_uppercase());
    let section = weft_abi::MANIFEST_SECTION;
    quote! {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            #[used]
            #[unsafe(link_section = #section)]
            static #name: [u8; #len] = [#(#bytes),*];
        };
    }
}

/// A type as written, with the token spacing `quote` adds removed.
pub(crate) fn type_text(tokens: &impl quote::ToTokens) -> String {
    let text = tokens.to_token_stream().to_string();
    text.replace(" :: ", "::")
        .replace(":: ", "::")
        .replace(" < ", "<")
        .replace("< ", "<")
        .replace(" <", "<")
        .replace(" >", ">")
        .replace(" ,", ",")
        .replace("& ", "&")
        .replace("[ ", "[")
        .replace(" ]", "]")
        .replace(" ;", ";")
        .replace("( ", "(")
        .replace(" )", ")")
}

/// The package identity of the crate being compiled.
pub(crate) fn package_record() -> ManifestRecord {
    ManifestRecord::Package {
        abi_version: weft_abi::ABI_VERSION,
        name: std::env::var("CARGO_PKG_NAME").unwrap_or_default(),
        version: std::env::var("CARGO_PKG_VERSION").unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_text_reads_like_the_source() {
        let cases: [(syn::Type, &str); 5] = [
            (syn::parse_quote!(Result<Vec<u8>, String>), "Result<Vec<u8>, String>"),
            (syn::parse_quote!(&str), "&str"),
            (syn::parse_quote!(Option<(u64, String)>), "Option<(u64, String)>"),
            (
                syn::parse_quote!(std::collections::BTreeMap<String, [u8; 32]>),
                "std::collections::BTreeMap<String, [u8; 32]>",
            ),
            (syn::parse_quote!(&[String]), "&[String]"),
        ];
        for (ty, text) in cases {
            assert_eq!(type_text(&ty), text);
        }
    }

    #[test]
    fn section_static_holds_framed_records_for_wasm32_only() {
        let tokens = section_static("t", &[package_record()]).to_string();
        assert!(tokens.contains("target_arch = \"wasm32\""));
        assert!(tokens.contains("link_section = \"weft_manifest\""));
        assert!(tokens.contains("__WEFT_MANIFEST_T"));
    }
}
