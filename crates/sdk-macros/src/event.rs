//! `#[app::event]`: an enum whose variants are event kinds. Derives
//! `serde::Serialize`, implements `weft_sdk::AppEvent` (kind = variant name,
//! data = JSON of the variant's fields) and contributes an `Events` record.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Fields, ItemEnum};
use weft_abi::{EventSpec, ManifestRecord};

use crate::manifest::{section_static, type_text};

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    if !attr.is_empty() {
        return Err(syn::Error::new_spanned(attr, "#[app::event] takes no arguments"));
    }
    let item: ItemEnum = syn::parse2(item)?;
    if !item.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(&item.generics, "an event enum cannot be generic"));
    }
    let name = &item.ident;
    let mut kinds = Vec::new();
    let mut datas = Vec::new();
    let mut specs = Vec::new();
    for variant in &item.variants {
        let ident = &variant.ident;
        let kind = ident.to_string();
        let (pattern, data, fields, any) = match &variant.fields {
            Fields::Named(named) => {
                let idents: Vec<_> = named.named.iter().filter_map(|f| f.ident.clone()).collect();
                let types: Vec<_> = named.named.iter().map(|f| &f.ty).collect();
                let text: Vec<String> =
                    idents.iter().zip(&types).map(|(i, t)| format!("{i}: {}", type_text(t))).collect();
                let data = quote! {{
                    #[derive(::weft_sdk::__private::serde::Serialize)]
                    #[serde(crate = "::weft_sdk::__private::serde")]
                    struct __Data<'a> { #(#idents: &'a #types),* }
                    ::weft_sdk::__private::serde_json::to_vec(&__Data { #(#idents),* }).unwrap_or_default()
                }};
                let pattern = quote!(Self::#ident { #(#idents),* });
                (pattern, data, format!("{{ {} }}", text.join(", ")), quote!(Self::#ident { .. }))
            }
            Fields::Unnamed(unnamed) => {
                let idents: Vec<_> = (0..unnamed.unnamed.len()).map(|i| format_ident!("__field{i}")).collect();
                let text: Vec<String> = unnamed.unnamed.iter().map(|f| type_text(&f.ty)).collect();
                let data = if idents.len() == 1 {
                    quote!(::weft_sdk::__private::serde_json::to_vec(__field0).unwrap_or_default())
                } else {
                    quote!(::weft_sdk::__private::serde_json::to_vec(&(#(#idents),*)).unwrap_or_default())
                };
                let pattern = quote!(Self::#ident(#(#idents),*));
                (pattern, data, format!("({})", text.join(", ")), quote!(Self::#ident(..)))
            }
            Fields::Unit => (quote!(Self::#ident), quote!(b"null".to_vec()), String::new(), quote!(Self::#ident)),
        };
        kinds.push(quote!(#any => #kind));
        datas.push(quote!(#pattern => #data));
        specs.push(EventSpec { name: kind, fields });
    }
    let record = section_static(&format!("events_{name}"), &[ManifestRecord::Events(specs)]);
    let match_kind = if kinds.is_empty() { quote!(match *self {}) } else { quote!(match self { #(#kinds),* }) };
    let match_data = if datas.is_empty() { quote!(match *self {}) } else { quote!(match self { #(#datas),* }) };
    Ok(quote! {
        #[derive(::weft_sdk::__private::serde::Serialize)]
        #[serde(crate = "::weft_sdk::__private::serde")]
        #item

        impl ::weft_sdk::AppEvent for #name {
            fn kind(&self) -> &'static str {
                #match_kind
            }

            fn data(&self) -> ::std::vec::Vec<u8> {
                #match_data
            }
        }

        #record
    })
}
