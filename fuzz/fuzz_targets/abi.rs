//! What an application hands the host: the manifest section of a module a
//! client uploads (`weft_abi::Manifest::decode_section`) and the borsh state
//! requests a guest passes to `state_call` (`StateCall`), with the replies
//! (`StateReply`). Asserts: no panic; `StateCall`/`StateReply` decoding is
//! canonical; a decoded manifest survives `encode_section` unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_abi::{Manifest, StateCall, StateReply};
use weft_primitives::encoding;

fuzz_target!(|data: &[u8]| {
    if let Ok(manifest) = Manifest::decode_section(data) {
        let again = Manifest::decode_section(&manifest.encode_section());
        assert_eq!(again.as_ref(), Ok(&manifest), "encode_section changed the manifest");
    }
    if let Ok(call) = encoding::decode::<StateCall>(data) {
        weft_fuzz::canonical("StateCall", data, &call, &encoding::encode(&call));
    }
    if let Ok(reply) = encoding::decode::<StateReply>(data) {
        weft_fuzz::canonical("StateReply", data, &reply, &encoding::encode(&reply));
    }
});
