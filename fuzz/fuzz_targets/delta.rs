//! Causal deltas as `weft_dag` stores them (`CausalDelta<Vec<u8>>`, strict
//! borsh). Asserts: no panic; borsh is canonical (an accepted input
//! re-encodes to itself); the DAG accepts or refuses what decodes with an
//! error, never a panic.
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
    weft_fuzz::canonical("CausalDelta", data, &delta, &encoding::encode(&delta));
    let mut dag = DagStore::new(Hash::ZERO, DagLimits::default());
    let _ = dag.add(delta, 0, &mut Accept);
});
