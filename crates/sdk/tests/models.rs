//! The typed collections behave like their std models (`BTreeMap`,
//! `BTreeSet`, `Vec`) under random operation sequences, on the native host.

#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use weft_sdk::prelude::*;
use weft_sdk::testing;

#[app::state]
pub struct Models {
    map: Map<i32, String>,
    set: Set<String>,
    list: Vector<u8>,
}

#[app::logic]
impl Models {}

#[derive(Clone, Debug)]
enum Op {
    MapInsert(i32, String),
    MapRemove(i32),
    SetInsert(String),
    SetRemove(String),
    Push(u8),
    Replace(usize, u8),
    RemoveAt(usize),
    Pop,
}

fn op() -> impl Strategy<Value = Op> {
    let key = -4i32..4;
    let word = "[ab]{0,2}";
    prop_oneof![
        (key.clone(), word).prop_map(|(k, v)| Op::MapInsert(k, v)),
        key.prop_map(Op::MapRemove),
        word.prop_map(Op::SetInsert),
        word.prop_map(Op::SetRemove),
        any::<u8>().prop_map(Op::Push),
        (0usize..6, any::<u8>()).prop_map(|(i, v)| Op::Replace(i, v)),
        (0usize..6).prop_map(Op::RemoveAt),
        Just(Op::Pop),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn collections_match_their_std_models(ops in proptest::collection::vec(op(), 0..24)) {
        testing::reset();
        let mut app = Models::create();
        let mut map = BTreeMap::new();
        let mut set = BTreeSet::new();
        let mut list: Vec<u8> = Vec::new();
        for op in ops {
            match op {
                Op::MapInsert(key, value) => {
                    app.map.insert(&key, &value);
                    map.insert(key, value);
                }
                Op::MapRemove(key) => prop_assert_eq!(app.map.remove(&key), map.remove(&key).is_some()),
                Op::SetInsert(element) => prop_assert_eq!(app.set.insert(&element), set.insert(element)),
                Op::SetRemove(element) => prop_assert_eq!(app.set.remove(&element), set.remove(&element)),
                Op::Push(value) => {
                    app.list.push(&value);
                    list.push(value);
                }
                Op::Replace(index, value) if index < list.len() => {
                    app.list.set(index as u64, &value);
                    list[index] = value;
                }
                Op::RemoveAt(index) if index < list.len() => {
                    app.list.remove(index as u64);
                    list.remove(index);
                }
                Op::Replace(..) | Op::RemoveAt(_) => {}
                Op::Pop => prop_assert_eq!(app.list.pop(), list.pop()),
            }
        }
        prop_assert_eq!(app.map.entries(), map.clone().into_iter().collect::<Vec<_>>());
        prop_assert_eq!(app.map.len(), map.len() as u64);
        for key in -4..4 {
            prop_assert_eq!(app.map.get(&key), map.get(&key).cloned());
        }
        prop_assert_eq!(app.set.to_vec(), set.iter().cloned().collect::<Vec<_>>());
        prop_assert_eq!(app.set.len(), set.len() as u64);
        prop_assert_eq!(app.list.to_vec(), list.clone());
        prop_assert_eq!(app.list.len(), list.len() as u64);
    }
}
