//! Finding the app manifest in a wasm binary.
//!
//! A tiny reader of the wasm binary's outer framing (magic, version, then
//! `id, size, payload` sections): it collects every custom section named
//! [`weft_abi::MANIFEST_SECTION`], concatenates them (the SDK's macros may
//! each contribute one) and decodes them with
//! [`weft_abi::Manifest::decode_section`]. It never panics and never reads
//! past the input; validating the rest of the module is wasmtime's job.

use weft_abi::limits::MANIFEST_BYTES_MAX;
use weft_abi::{MANIFEST_SECTION, Manifest, ManifestError};

use crate::error::RuntimeError;

const WASM_MAGIC: [u8; 4] = *b"\0asm";
const WASM_VERSION: [u8; 4] = [1, 0, 0, 0];
const CUSTOM_SECTION_ID: u8 = 0;
const MEMORY_SECTION_ID: u8 = 5;
const WASM_PAGE_BYTES: u64 = 64 * 1024;

/// The manifest of the wasm module `bytes`.
pub fn read_manifest(bytes: &[u8]) -> Result<Manifest, RuntimeError> {
    let section = manifest_section(bytes)?.ok_or(RuntimeError::MissingManifest)?;
    Manifest::decode_section(&section).map_err(RuntimeError::BadManifest)
}

/// The concatenated contents of every manifest custom section, or `None`
/// when there is none.
fn manifest_section(bytes: &[u8]) -> Result<Option<Vec<u8>>, RuntimeError> {
    let mut reader = Reader { bytes, at: 0 };
    if reader.take(4)? != WASM_MAGIC {
        return Err(malformed("not a wasm binary (bad magic)"));
    }
    if reader.take(4)? != WASM_VERSION {
        return Err(malformed("unsupported wasm binary version (components are not apps)"));
    }
    let mut found: Option<Vec<u8>> = None;
    while !reader.is_empty() {
        let id = reader.byte()?;
        let size = reader.leb_u32()? as usize;
        let payload = reader.take(size)?;
        if id != CUSTOM_SECTION_ID {
            continue;
        }
        let mut section = Reader { bytes: payload, at: 0 };
        let name_len = section.leb_u32()? as usize;
        if section.take(name_len)? != MANIFEST_SECTION.as_bytes() {
            continue;
        }
        let contents = section.rest();
        let out = found.get_or_insert_with(Vec::new);
        let len = out.len().saturating_add(contents.len());
        if len > MANIFEST_BYTES_MAX {
            return Err(RuntimeError::BadManifest(ManifestError::TooLarge { len }));
        }
        out.extend_from_slice(contents);
    }
    Ok(found)
}

/// The initial size, in bytes, of the first memory the module defines, if
/// its memory section is in the plain 32-bit form (anything else is left to
/// wasmtime's validation).
pub(crate) fn initial_memory_bytes(bytes: &[u8]) -> Result<Option<u64>, RuntimeError> {
    let mut reader = Reader { bytes, at: 8 };
    while !reader.is_empty() {
        let id = reader.byte()?;
        let size = reader.leb_u32()? as usize;
        let payload = reader.take(size)?;
        if id != MEMORY_SECTION_ID {
            continue;
        }
        let mut section = Reader { bytes: payload, at: 0 };
        if section.leb_u32()? == 0 {
            return Ok(None);
        }
        // Limits flags 0 (min) and 1 (min, max); shared or 64-bit memories
        // have other flags and are refused by the engine anyway.
        return match section.byte()? {
            0 | 1 => Ok(Some(u64::from(section.leb_u32()?) * WASM_PAGE_BYTES)),
            _ => Ok(None),
        };
    }
    Ok(None)
}

fn malformed(reason: &str) -> RuntimeError {
    RuntimeError::Malformed { reason: reason.to_owned() }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn is_empty(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], RuntimeError> {
        let end = self.at.checked_add(len).ok_or_else(|| malformed("section size overflows"))?;
        let out = self.bytes.get(self.at..end).ok_or_else(|| malformed("section runs past the end of the module"))?;
        self.at = end;
        Ok(out)
    }

    fn byte(&mut self) -> Result<u8, RuntimeError> {
        Ok(self.take(1)?[0])
    }

    fn rest(&mut self) -> &'a [u8] {
        let out = self.bytes.get(self.at..).unwrap_or_default();
        self.at = self.bytes.len();
        out
    }

    /// An unsigned LEB128 of at most 5 bytes that fits in 32 bits.
    fn leb_u32(&mut self) -> Result<u32, RuntimeError> {
        let mut value: u32 = 0;
        for index in 0..5 {
            let byte = self.byte()?;
            let low = u32::from(byte & 0x7f);
            if index == 4 && low > 0x0f {
                return Err(malformed("LEB128 value does not fit in 32 bits"));
            }
            value |= low << (7 * index);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(malformed("LEB128 value longer than 5 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_abi::{ABI_VERSION, MethodKind, MethodSpec};

    fn leb(mut value: usize) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }

    fn custom(name: &str, contents: &[u8]) -> Vec<u8> {
        let mut payload = leb(name.len());
        payload.extend_from_slice(name.as_bytes());
        payload.extend_from_slice(contents);
        let mut out = vec![CUSTOM_SECTION_ID];
        out.extend(leb(payload.len()));
        out.extend(payload);
        out
    }

    fn module(sections: &[Vec<u8>]) -> Vec<u8> {
        let mut out = WASM_MAGIC.to_vec();
        out.extend_from_slice(&WASM_VERSION);
        for section in sections {
            out.extend_from_slice(section);
        }
        out
    }

    fn manifest() -> Manifest {
        Manifest {
            abi_version: ABI_VERSION,
            name: "app".into(),
            version: "1.0.0".into(),
            methods: vec![MethodSpec {
                name: "get".into(),
                kind: MethodKind::View,
                args: vec![],
                returns: "u64".into(),
            }],
            events: vec![],
        }
    }

    #[test]
    fn manifest_is_found_among_other_sections() {
        let type_section = vec![1, 1, 0];
        let bytes = module(&[
            custom("name", b"whatever"),
            type_section,
            custom(MANIFEST_SECTION, &manifest().encode_section()),
        ]);
        assert_eq!(read_manifest(&bytes), Ok(manifest()));
    }

    #[test]
    fn split_manifest_sections_are_concatenated() {
        let encoded = manifest().encode_section();
        let (first, second) = encoded.split_at(encoded.len() / 2);
        let bytes = module(&[custom(MANIFEST_SECTION, first), custom(MANIFEST_SECTION, second)]);
        assert_eq!(read_manifest(&bytes), Ok(manifest()));
    }

    #[test]
    fn module_without_manifest_is_rejected() {
        assert_eq!(read_manifest(&module(&[custom("name", b"x")])), Err(RuntimeError::MissingManifest));
    }

    #[test]
    fn unknown_abi_version_is_rejected() {
        let mut other = manifest();
        other.abi_version = ABI_VERSION + 1;
        let bytes = module(&[custom(MANIFEST_SECTION, &other.encode_section())]);
        assert_eq!(
            read_manifest(&bytes),
            Err(RuntimeError::BadManifest(ManifestError::UnsupportedAbiVersion { found: ABI_VERSION + 1 }))
        );
    }

    #[test]
    fn initial_memory_is_read_from_the_memory_section() {
        // One memory, flags 1 (min and max), min 3 pages, max 5.
        let bytes = module(&[vec![MEMORY_SECTION_ID, 4, 1, 1, 3, 5]]);
        assert_eq!(initial_memory_bytes(&bytes), Ok(Some(3 * 65_536)));
        assert_eq!(initial_memory_bytes(&module(&[])), Ok(None));
        let shared = module(&[vec![MEMORY_SECTION_ID, 4, 1, 3, 3, 5]]);
        assert_eq!(initial_memory_bytes(&shared), Ok(None));
    }

    #[test]
    fn truncated_and_garbage_modules_are_errors_not_panics() {
        let full = module(&[custom(MANIFEST_SECTION, &manifest().encode_section())]);
        for cut in 0..full.len() {
            assert!(read_manifest(&full[..cut]).is_err(), "cut at {cut}");
        }
        assert!(matches!(read_manifest(b"\0asm\x0d\0\x01\0"), Err(RuntimeError::Malformed { .. })));
        let overlong = module(&[vec![0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]]);
        assert!(matches!(read_manifest(&overlong), Err(RuntimeError::Malformed { .. })));
        let too_big = module(&[vec![0, 0xff, 0xff, 0xff, 0xff, 0x1f]]);
        assert!(matches!(read_manifest(&too_big), Err(RuntimeError::Malformed { .. })));
    }
}
