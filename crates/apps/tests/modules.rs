//! The built modules are wasm, import only `weft` host functions, export
//! every manifest method, and carry a manifest `Manifest::decode_section`
//! accepts, listing the right methods, kinds and events.

#![allow(clippy::unwrap_used)]

use weft_abi::{Manifest, MethodKind};

/// The sections of a wasm module, parsed just enough for these checks.
#[derive(Default)]
struct Module {
    imports: Vec<(String, String)>,
    exports: Vec<String>,
    manifest: Vec<u8>,
}

fn leb(bytes: &[u8], at: &mut usize) -> usize {
    let (mut value, mut shift) = (0usize, 0);
    loop {
        let byte = bytes[*at];
        *at += 1;
        value |= usize::from(byte & 0x7f) << shift;
        shift += 7;
        if byte < 0x80 {
            return value;
        }
    }
}

fn name(bytes: &[u8], at: &mut usize) -> String {
    let len = leb(bytes, at);
    let text = String::from_utf8(bytes[*at..*at + len].to_vec()).unwrap();
    *at += len;
    text
}

fn parse(bytes: &[u8]) -> Module {
    assert_eq!(&bytes[..8], b"\0asm\x01\0\0\0", "wasm magic and version 1");
    let mut module = Module::default();
    let mut at = 8;
    while at < bytes.len() {
        let id = bytes[at];
        at += 1;
        let len = leb(bytes, &mut at);
        let end = at + len;
        let mut cursor = at;
        match id {
            0 if name(bytes, &mut cursor) == weft_abi::MANIFEST_SECTION => {
                module.manifest.extend_from_slice(&bytes[cursor..end]);
            }
            2 => {
                for _ in 0..leb(bytes, &mut cursor) {
                    let (from, field) = (name(bytes, &mut cursor), name(bytes, &mut cursor));
                    assert_eq!(bytes[cursor], 0, "{from}.{field} is a function import");
                    cursor += 1;
                    leb(bytes, &mut cursor);
                    module.imports.push((from, field));
                }
            }
            7 => {
                for _ in 0..leb(bytes, &mut cursor) {
                    module.exports.push(name(bytes, &mut cursor));
                    cursor += 1;
                    leb(bytes, &mut cursor);
                }
            }
            _ => {}
        }
        at = end;
    }
    module
}

fn methods(manifest: &Manifest) -> Vec<(&str, MethodKind)> {
    manifest.methods.iter().map(|method| (method.name.as_str(), method.kind)).collect()
}

fn events(manifest: &Manifest) -> Vec<&str> {
    manifest.events.iter().map(|event| event.name.as_str()).collect()
}

fn check(package: &str, bytes: &[u8]) -> Manifest {
    let module = parse(bytes);
    let manifest = Manifest::decode_section(&module.manifest).unwrap();
    assert_eq!(manifest.name, package);
    assert_eq!(manifest.abi_version, weft_abi::ABI_VERSION);
    for (from, field) in &module.imports {
        assert_eq!(from, weft_abi::HOST_MODULE);
        assert!(weft_abi::host_fn::ALL.contains(&field.as_str()), "unknown import {field}");
    }
    assert!(module.exports.iter().any(|export| export == weft_abi::GUEST_MEMORY));
    for method in &manifest.methods {
        assert!(module.exports.contains(&method.name), "{package} does not export {}", method.name);
    }
    manifest
}

#[test]
fn kv_store_module_exports_its_manifest_methods() {
    let manifest = check("kv-store", weft_apps::KV_STORE);
    use MethodKind::*;
    let expected = [
        ("init", Init),
        ("set", Mutate),
        ("get", View),
        ("remove", Mutate),
        ("entries", View),
        ("page", View),
        ("len", View),
    ];
    assert_eq!(methods(&manifest), expected);
    assert_eq!(events(&manifest), ["Inserted", "Updated", "Removed"]);
    let set = manifest.method("set").unwrap();
    assert_eq!(set.args, [("key".to_owned(), "String".to_owned()), ("value".to_owned(), "String".to_owned())]);
    assert_eq!(manifest.method("remove").unwrap().returns, "Result<String, KvError>");
}

#[test]
fn counter_handlers_module_declares_its_handler() {
    let manifest = check("counter-handlers", weft_apps::COUNTER_HANDLERS);
    use MethodKind::*;
    let expected = [
        ("init", Init),
        ("trigger", Mutate),
        ("on_event", Handler),
        ("last_triggered_by", View),
        ("count", View),
        ("triggers", View),
    ];
    assert_eq!(methods(&manifest), expected);
    assert_eq!(events(&manifest), ["Triggered"]);
    assert_eq!(manifest.events[0].fields, "{ note: String }");
}

#[test]
fn collab_text_module_exports_its_manifest_methods() {
    let manifest = check("collab-text", weft_apps::COLLAB_TEXT);
    use MethodKind::*;
    let expected = [("init", Init), ("insert", Mutate), ("delete", Mutate), ("read", View), ("len", View)];
    assert_eq!(methods(&manifest), expected);
    assert_eq!(events(&manifest), ["Inserted", "Deleted"]);
}

#[test]
fn modules_stay_small() {
    for (name, bytes) in weft_apps::ALL {
        assert!(bytes.len() < 256 * 1024, "{name} is {} bytes", bytes.len());
    }
}
