//! Test fixtures shared by the integration tests: delta builders and appliers.

#![allow(dead_code)]

use std::collections::HashMap;

use rand::Rng;
use rand::rngs::SmallRng;
use weft_dag::{CausalDelta, DeltaApplier, DeltaId};
use weft_primitives::{Hash, Hlc};

/// The genesis id every test DAG starts from.
pub fn root() -> DeltaId {
    Hash::of(b"root")
}

/// A test id derived from a label.
pub fn id(label: &str) -> DeltaId {
    Hash::of(label.as_bytes())
}

/// A delta named `label` whose payload is its label.
pub fn delta(label: &str, parents: &[DeltaId]) -> CausalDelta<String> {
    CausalDelta { id: id(label), parents: parents.to_vec(), hlc: Hlc::new(0, 0), payload: label.to_owned() }
}

/// Records every delta it applies, in order.
#[derive(Debug, Default)]
pub struct RecordingApplier {
    pub applied: Vec<DeltaId>,
}

impl<P> DeltaApplier<P> for RecordingApplier {
    type Error = std::convert::Infallible;

    fn apply(&mut self, delta: &CausalDelta<P>) -> Result<(), Self::Error> {
        self.applied.push(delta.id);
        Ok(())
    }
}

/// Fails on the ids in `failing` (as long as they stay there), records the rest.
#[derive(Debug, Default)]
pub struct FailingApplier {
    pub failing: Vec<DeltaId>,
    pub applied: Vec<DeltaId>,
}

/// The error [`FailingApplier`] returns.
#[derive(Debug, PartialEq, Eq)]
pub struct StorageDown;

impl<P> DeltaApplier<P> for FailingApplier {
    type Error = StorageDown;

    fn apply(&mut self, delta: &CausalDelta<P>) -> Result<(), Self::Error> {
        if self.failing.contains(&delta.id) {
            return Err(StorageDown);
        }
        self.applied.push(delta.id);
        Ok(())
    }
}

/// The indices of a random ancestor-closed subset of `deltas`.
pub fn closed_subset<P>(deltas: &[CausalDelta<P>], rng: &mut SmallRng) -> Vec<bool> {
    let index: HashMap<DeltaId, usize> = deltas.iter().enumerate().map(|(i, d)| (d.id, i)).collect();
    let density = rng.random_range(0.0..1.0);
    let mut keep: Vec<bool> = deltas.iter().map(|_| rng.random_bool(density)).collect();
    for i in (0..deltas.len()).rev() {
        if keep[i] {
            for parent in &deltas[i].parents {
                if let Some(&p) = index.get(parent) {
                    keep[p] = true;
                }
            }
        }
    }
    keep
}
