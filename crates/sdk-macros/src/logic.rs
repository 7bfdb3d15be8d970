//! `#[app::logic]`: the exports of an app.
//!
//! For each exported method `m` it generates `__weft_exports::m()` (read the
//! JSON arguments, load the state, call, return the JSON result) and, on
//! wasm32 only, `#[no_mangle] extern "C" fn m()` calling it — natively such
//! symbols (`remove`, `read`) would collide with libc. It implements
//! `weft_sdk::App` (the dispatch table the native test host uses) and emits
//! the manifest's `Package` and `Methods` records.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{FnArg, ImplItem, ImplItemFn, ItemImpl, Pat, ReturnType, Type, Visibility};
use weft_abi::{ManifestRecord, MethodKind, MethodSpec};

use crate::manifest::{package_record, section_static, type_text};

/// Export names the wasm module already uses.
const RESERVED_EXPORTS: [&str; 1] = [weft_abi::GUEST_MEMORY];

/// One exported method, as the macro understood it.
struct Export {
    ident: syn::Ident,
    kind: MethodKind,
    args: Vec<(syn::Ident, Type)>,
    output: ReturnType,
}

/// Which marker attributes a method carries (and strip them).
fn take_marker(method: &mut ImplItemFn) -> syn::Result<Option<MethodKind>> {
    let mut found = None;
    let mut kept = Vec::new();
    for attr in method.attrs.drain(..) {
        let path = attr.path();
        let marker = path.segments.last().map(|segment| segment.ident.to_string());
        let in_app = path.segments.len() == 1
            || path.segments.iter().any(|segment| segment.ident == "app" || segment.ident == "weft_sdk");
        let kind = match marker.as_deref() {
            Some("init") if in_app => Some(MethodKind::Init),
            Some("view") if in_app => Some(MethodKind::View),
            Some("handler") if in_app => Some(MethodKind::Handler),
            _ => None,
        };
        match kind {
            Some(_) if found.is_some() => {
                return Err(syn::Error::new_spanned(attr, "a method carries at most one of init, view, handler"));
            }
            Some(kind) => found = Some(kind),
            None => kept.push(attr),
        }
    }
    method.attrs = kept;
    Ok(found)
}

/// The argument type the JSON is decoded into: references become owned.
fn owned(ty: &Type) -> syn::Result<(Type, bool)> {
    let Type::Reference(reference) = ty else { return Ok((ty.clone(), false)) };
    if reference.mutability.is_some() {
        return Err(syn::Error::new_spanned(ty, "exported methods cannot take `&mut` arguments"));
    }
    let owned = match &*reference.elem {
        Type::Path(path) if path.path.is_ident("str") => syn::parse_quote!(::std::string::String),
        Type::Slice(slice) => {
            let elem = &slice.elem;
            syn::parse_quote!(::std::vec::Vec<#elem>)
        }
        elem => elem.clone(),
    };
    Ok((owned, true))
}

fn returns_result(output: &ReturnType) -> bool {
    match output {
        ReturnType::Type(_, ty) => match &**ty {
            Type::Path(path) => path.path.segments.last().is_some_and(|segment| segment.ident == "Result"),
            _ => false,
        },
        ReturnType::Default => false,
    }
}

/// The export for `method`, if it is one.
fn export_of(method: &ImplItemFn, marker: Option<MethodKind>) -> syn::Result<Option<Export>> {
    let sig = &method.sig;
    let receiver = sig.receiver();
    let kind = match (marker, receiver) {
        (Some(MethodKind::Init), None) => MethodKind::Init,
        (Some(MethodKind::Init), Some(receiver)) => {
            return Err(syn::Error::new_spanned(receiver, "#[app::init] marks a constructor: `fn init(..) -> Self`"));
        }
        (Some(other), None) => {
            let message = format!("a {other:?} method takes `&self` or `&mut self`");
            return Err(syn::Error::new_spanned(&sig.ident, message));
        }
        (_, None) => return Ok(None),
        (_, Some(receiver)) if receiver.reference.is_none() => {
            return Err(syn::Error::new_spanned(receiver, "exported methods take `&self` or `&mut self`"));
        }
        (Some(MethodKind::View), Some(receiver)) if receiver.mutability.is_some() => {
            return Err(syn::Error::new_spanned(receiver, "a view takes `&self`"));
        }
        (Some(MethodKind::Handler), Some(receiver)) if receiver.mutability.is_none() => {
            return Err(syn::Error::new_spanned(receiver, "a handler takes `&mut self`"));
        }
        (Some(kind), Some(_)) => kind,
        (None, Some(receiver)) if receiver.mutability.is_some() => MethodKind::Mutate,
        (None, Some(_)) => MethodKind::View,
    };
    if marker.is_none() && !matches!(method.vis, Visibility::Public(_)) {
        return Ok(None);
    }
    if sig.asyncness.is_some() || !sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(sig, "exported methods are neither async nor generic"));
    }
    let mut args = Vec::new();
    for input in &sig.inputs {
        let FnArg::Typed(typed) = input else { continue };
        let Pat::Ident(pat) = &*typed.pat else {
            return Err(syn::Error::new_spanned(&typed.pat, "exported method arguments must be plain names"));
        };
        args.push((pat.ident.clone(), (*typed.ty).clone()));
    }
    Ok(Some(Export { ident: sig.ident.clone(), kind, args, output: sig.output.clone() }))
}

/// The body of `__weft_exports::<name>()`.
fn export_body(state: &Type, export: &Export) -> syn::Result<TokenStream> {
    let ident = &export.ident;
    let name = ident.to_string();
    let mut fields = Vec::new();
    let mut call_args = Vec::new();
    for (arg, ty) in &export.args {
        let (owned, by_ref) = owned(ty)?;
        fields.push(quote!(#arg: #owned));
        call_args.push(if by_ref { quote!(&__args.#arg) } else { quote!(__args.#arg) });
    }
    // Handlers take a subset of an event's fields; other methods reject typos.
    let strict = (export.kind != MethodKind::Handler).then(|| quote!(#[serde(deny_unknown_fields)]));
    let args = quote! {
        #[derive(::weft_sdk::__private::serde::Deserialize)]
        #[serde(crate = "::weft_sdk::__private::serde")]
        #strict
        struct __Args { #(#fields),* }
        let __args: __Args = ::weft_sdk::export::args(#name);
    };
    let finish = if returns_result(&export.output) {
        quote!(::weft_sdk::export::return_result(&__result);)
    } else {
        quote!(::weft_sdk::export::return_value(&__result);)
    };
    Ok(match export.kind {
        MethodKind::Init if returns_result(&export.output) => quote! {
            #args
            if let ::core::result::Result::Err(__error) = <#state>::#ident(#(#call_args),*) {
                ::weft_sdk::export::return_result(&::core::result::Result::<(), _>::Err(__error));
            }
        },
        MethodKind::Init => quote! {
            #args
            let _ = <#state>::#ident(#(#call_args),*);
        },
        MethodKind::View => quote! {
            #args
            let __state = <#state as ::weft_sdk::AppState>::load();
            let __result = __state.#ident(#(#call_args),*);
            #finish
        },
        MethodKind::Mutate | MethodKind::Handler => quote! {
            #args
            let mut __state = <#state as ::weft_sdk::AppState>::load();
            let __result = __state.#ident(#(#call_args),*);
            #finish
        },
    })
}

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    if !attr.is_empty() {
        return Err(syn::Error::new_spanned(attr, "#[app::logic] takes no arguments"));
    }
    let mut item: ItemImpl = syn::parse2(item)?;
    if item.trait_.is_some() || !item.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(&item.self_ty, "#[app::logic] goes on the state's own, non-generic impl"));
    }
    let state = (*item.self_ty).clone();
    let mut exports = Vec::new();
    for impl_item in &mut item.items {
        let ImplItem::Fn(method) = impl_item else { continue };
        let marker = take_marker(method)?;
        if let Some(export) = export_of(method, marker)? {
            exports.push(export);
        }
    }
    let inits = exports.iter().filter(|export| export.kind == MethodKind::Init).count();
    if inits > 1 {
        return Err(syn::Error::new_spanned(&item.self_ty, "at most one #[app::init] constructor"));
    }
    for export in &exports {
        let name = export.ident.to_string();
        if RESERVED_EXPORTS.contains(&name.as_str()) || name.starts_with("__") {
            return Err(syn::Error::new_spanned(&export.ident, format!("`{name}` cannot be an export name")));
        }
        if inits == 0 && name == "init" {
            let message = "a method named `init` must be the #[app::init] constructor";
            return Err(syn::Error::new_spanned(&export.ident, message));
        }
    }

    let mut bodies = Vec::new();
    let mut specs = Vec::new();
    for export in &exports {
        let body = export_body(&state, export)?;
        let ident = &export.ident;
        bodies.push(quote! {
            pub fn #ident() {
                ::weft_sdk::export::begin();
                #body
            }
        });
        let returns = match &export.output {
            ReturnType::Default => "()".to_owned(),
            ReturnType::Type(_, ty) => type_text(ty),
        };
        let args = export.args.iter().map(|(arg, ty)| (arg.to_string(), type_text(ty))).collect();
        specs.push(MethodSpec { name: ident.to_string(), kind: export.kind, args, returns });
    }
    let mut idents: Vec<syn::Ident> = exports.iter().map(|export| export.ident.clone()).collect();
    let mut kinds: Vec<TokenStream> = exports.iter().map(|export| kind_tokens(export.kind)).collect();
    if inits == 0 {
        // Without a constructor, `init` creates the state's collections.
        let ident = syn::Ident::new("init", Span::call_site());
        bodies.push(quote! {
            pub fn #ident() {
                ::weft_sdk::export::begin();
                let _ = <#state as ::weft_sdk::AppState>::create();
            }
        });
        specs.insert(
            0,
            MethodSpec { name: "init".into(), kind: MethodKind::Init, args: vec![], returns: "Self".into() },
        );
        idents.push(ident);
        kinds.push(kind_tokens(MethodKind::Init));
    }
    let names: Vec<String> = idents.iter().map(ToString::to_string).collect();
    let manifest = section_static("logic", &[package_record(), ManifestRecord::Methods(specs)]);

    Ok(quote! {
        #item

        #[doc(hidden)]
        #[allow(non_snake_case, clippy::all)]
        pub mod __weft_exports {
            #[allow(unused_imports)]
            use super::*;
            #(#bodies)*
        }

        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        pub mod __weft_wasm_exports {
            #(
                #[unsafe(no_mangle)]
                pub extern "C" fn #idents() {
                    super::__weft_exports::#idents()
                }
            )*
        }

        impl ::weft_sdk::App for #state {
            const EXPORTS: &'static [::weft_sdk::Export] = &[
                #(::weft_sdk::Export { name: #names, kind: #kinds, run: __weft_exports::#idents }),*
            ];
        }

        #manifest
    })
}

fn kind_tokens(kind: MethodKind) -> TokenStream {
    match kind {
        MethodKind::Init => quote!(::weft_sdk::MethodKind::Init),
        MethodKind::Mutate => quote!(::weft_sdk::MethodKind::Mutate),
        MethodKind::View => quote!(::weft_sdk::MethodKind::View),
        MethodKind::Handler => quote!(::weft_sdk::MethodKind::Handler),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_error(item: TokenStream) -> String {
        expand(TokenStream::new(), item).err().map(|error| error.to_string()).unwrap_or_default()
    }

    #[test]
    fn misuse_is_a_compile_error_with_a_reason() {
        let init_with_receiver = quote!(impl S { #[app::init] pub fn init(&self) -> Self { todo!() } });
        assert!(expand_error(init_with_receiver).contains("constructor"));
        let mut_view = quote!(impl S { #[app::view] pub fn v(&mut self) {} });
        assert!(expand_error(mut_view).contains("a view takes `&self`"));
        let shared_handler = quote!(impl S { #[app::handler] pub fn h(&self) {} });
        assert!(expand_error(shared_handler).contains("a handler takes `&mut self`"));
        let by_value = quote!(impl S { pub fn f(self) {} });
        assert!(expand_error(by_value).contains("`&self` or `&mut self`"));
        let pattern_arg = quote!(impl S { pub fn f(&self, (a, b): (u8, u8)) {} });
        assert!(expand_error(pattern_arg).contains("plain names"));
        let reserved = quote!(impl S { pub fn memory(&self) {} });
        assert!(expand_error(reserved).contains("cannot be an export name"));
        let unmarked_init = quote!(impl S { pub fn init(&mut self) {} });
        assert!(expand_error(unmarked_init).contains("#[app::init]"));
        let two_inits =
            quote!(impl S { #[app::init] fn a() -> Self { todo!() } #[app::init] fn b() -> Self { todo!() } });
        assert!(expand_error(two_inits).contains("at most one"));
    }

    #[test]
    fn kinds_follow_receivers_and_markers() {
        let item = quote!(impl S {
            #[app::init] pub fn new(seed: u64) -> Self { todo!() }
            pub fn read(&self, key: &str) -> Option<String> { None }
            pub fn write(&mut self) {}
            #[app::handler] pub fn on_it(&mut self) {}
            fn private(&mut self) {}
            pub fn helper() -> u8 { 0 }
        });
        let expanded = expand(TokenStream::new(), item).unwrap().to_string();
        for export in ["new", "read", "write", "on_it"] {
            assert!(expanded.contains(&format!("pub extern \"C\" fn {export} ()")), "{export} not exported");
        }
        for hidden in ["private", "helper", "init"] {
            assert!(!expanded.contains(&format!("pub extern \"C\" fn {hidden} ()")), "{hidden} exported");
        }
        assert!(!expanded.contains("# [app :: handler]"), "markers are removed");
        assert!(expanded.contains(":: weft_sdk :: MethodKind :: Handler"));
    }
}
