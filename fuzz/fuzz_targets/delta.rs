//! Causal deltas from the wire: decoding never panics, and whatever decodes
//! is either rejected by the DAG with an error or accepted, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_dag::{CausalDelta, DagLimits, DagStore, DeltaApplier};
use weft_primitives::{Hash, encoding};

struct Accept;

impl DeltaApplier<Vec<u8>> for Accept {
    type Error = ();
    fn apply(&mut self, _: &CausalDelta<Vec<u8>>) -> Result<(), ()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(delta) = encoding::decode::<CausalDelta<Vec<u8>>>(data) else { return };
    assert_eq!(encoding::encode(&delta), data, "borsh is canonical");
    let mut dag = DagStore::new(Hash::ZERO, DagLimits::default());
    let _ = dag.add(delta, 0, &mut Accept);
});
