//! `#[app::state]`: the state struct's collections, created or located
//! under the root map by field name.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Fields, ItemStruct};

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    if !attr.is_empty() {
        return Err(syn::Error::new_spanned(attr, "#[app::state] takes no arguments"));
    }
    let item: ItemStruct = syn::parse2(item)?;
    if !item.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(&item.generics, "an app state cannot be generic"));
    }
    let Fields::Named(fields) = &item.fields else {
        return Err(syn::Error::new_spanned(&item.fields, "an app state is a struct with named fields"));
    };
    let name = &item.ident;
    let mut create = Vec::new();
    let mut load = Vec::new();
    for field in &fields.named {
        let Some(ident) = &field.ident else { continue };
        let ty = &field.ty;
        let key = syn::LitByteStr::new(ident.to_string().trim_start_matches("r#").as_bytes(), ident.span());
        create.push(quote!(#ident: ::weft_sdk::collections::child::<#ty>(root, #key, true)));
        load.push(quote!(#ident: ::weft_sdk::collections::child::<#ty>(root, #key, false)));
    }
    Ok(quote! {
        #item

        impl ::weft_sdk::AppState for #name {
            fn create() -> Self {
                let root = ::weft_sdk::collections::root_id();
                Self { #(#create),* }
            }

            fn load() -> Self {
                let root = ::weft_sdk::collections::root_id();
                Self { #(#load),* }
            }
        }
    })
}
