//! A replicated key-value store: a map of string keys to last-writer-wins
//! string values, with `Inserted`/`Updated`/`Removed` events.

use std::collections::BTreeMap;

use serde::Serialize;
use weft_sdk::prelude::*;

/// The most entries one `page` call returns.
pub const PAGE_ENTRIES_MAX: usize = 1_000;

/// The app state: one map.
#[app::state]
pub struct KvStore {
    entries: Map<String, String>,
}

/// What changed.
#[app::event]
pub enum Event {
    /// A new key.
    Inserted {
        /// The key.
        key: String,
        /// Its value.
        value: String,
    },
    /// A new value for an existing key.
    Updated {
        /// The key.
        key: String,
        /// Its new value.
        value: String,
    },
    /// A key went away.
    Removed {
        /// The key.
        key: String,
    },
}

/// Why a call was refused (returned to the caller as JSON).
#[derive(Debug, Serialize, PartialEq, Eq)]
pub enum KvError {
    /// There is no such key.
    NotFound {
        /// The key asked for.
        key: String,
    },
}

#[app::logic]
impl KvStore {
    /// An empty store.
    #[app::init]
    pub fn init() -> Self {
        Self::create()
    }

    /// Set `key` to `value`.
    pub fn set(&mut self, key: String, value: String) {
        let existed = self.entries.contains_key(&key);
        self.entries.insert(&key, &value);
        if existed {
            app::emit!(Event::Updated { key, value });
        } else {
            app::emit!(Event::Inserted { key, value });
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<String> {
        self.entries.get(key)
    }

    /// Remove `key`, returning its last value.
    pub fn remove(&mut self, key: &str) -> Result<String, KvError> {
        let Some(value) = self.entries.get(key) else {
            return Err(KvError::NotFound { key: key.to_owned() });
        };
        self.entries.remove(key);
        app::emit!(Event::Removed { key: key.to_owned() });
        Ok(value)
    }

    /// Every entry, as a JSON object in key order.
    pub fn entries(&self) -> BTreeMap<String, String> {
        self.entries.iter().collect()
    }

    /// At most `limit` entries (capped at [`PAGE_ENTRIES_MAX`]) after the
    /// key `after` (from the start if `None`), in key order: how a client
    /// reads a store too large for one `entries` call.
    pub fn page(&self, after: Option<String>, limit: u32) -> Vec<(String, String)> {
        let limit = (limit as usize).min(PAGE_ENTRIES_MAX);
        match after {
            Some(key) => self.entries.iter_after(&key).take(limit).collect(),
            None => self.entries.iter().take(limit).collect(),
        }
    }

    /// The number of entries.
    // An `is_empty` export would only duplicate `len() == 0` for callers.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u64 {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_sdk::testing::{self, CallError, json};

    #[test]
    fn set_inserts_then_updates() {
        testing::reset();
        let mut store = KvStore::init();
        store.set("a".into(), "1".into());
        store.set("a".into(), "2".into());
        assert_eq!(store.get("a"), Some("2".into()));
        assert_eq!(store.len(), 1);
        let kinds: Vec<String> = testing::take_events().into_iter().map(|event| event.kind).collect();
        assert_eq!(kinds, ["Inserted", "Updated"]);
    }

    #[test]
    fn remove_returns_the_value_or_a_typed_error() {
        testing::reset();
        let mut store = KvStore::init();
        store.set("k".into(), "v".into());
        assert_eq!(store.remove("k"), Ok("v".into()));
        assert_eq!(store.remove("k"), Err(KvError::NotFound { key: "k".into() }));
        assert_eq!(store.get("k"), None);
        let events = testing::take_events();
        assert_eq!(events.last().map(|event| event.data.clone()), Some(json!({ "key": "k" })));
    }

    #[test]
    fn pages_cover_every_entry_once_in_key_order() {
        testing::reset();
        let mut app = KvStore::init();
        for i in 0..25 {
            app.set(format!("k{i:02}"), format!("v{i}"));
        }
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = app.page(after.clone(), 10);
            assert!(page.len() <= 10);
            let Some((last, _)) = page.last().cloned() else { break };
            seen.extend(page);
            after = Some(last);
        }
        assert_eq!(seen, app.entries().into_iter().collect::<Vec<_>>());
        assert_eq!(app.page(None, u32::MAX).len(), 25);
        assert!(app.page(Some("k24".into()), 10).is_empty());
    }

    #[test]
    fn entries_are_in_key_order() {
        testing::reset();
        let mut store = KvStore::init();
        for key in ["pear", "apple", "fig"] {
            store.set(key.into(), key.to_uppercase());
        }
        let keys: Vec<String> = store.entries().into_keys().collect();
        assert_eq!(keys, ["apple", "fig", "pear"]);
    }

    #[test]
    fn calls_take_json_and_return_json() {
        testing::reset();
        testing::call::<KvStore>("init", json!({})).unwrap();
        testing::call::<KvStore>("set", json!({ "key": "a", "value": "1" })).unwrap();
        assert_eq!(testing::call::<KvStore>("get", json!({ "key": "a" })), Ok(json!("1")));
        assert_eq!(testing::call::<KvStore>("entries", json!({})), Ok(json!({ "a": "1" })));
        assert_eq!(testing::call::<KvStore>("len", json!({})), Ok(json!(1)));
        assert_eq!(
            testing::call::<KvStore>("remove", json!({ "key": "zz" })),
            Err(CallError::App(json!({ "NotFound": { "key": "zz" } })))
        );
    }

    #[test]
    fn bad_arguments_and_unknown_methods_are_clear_errors() {
        testing::reset();
        testing::call::<KvStore>("init", json!({})).unwrap();
        let Err(CallError::Panic(message)) = testing::call::<KvStore>("set", json!({ "key": "a" })) else {
            panic!("missing argument accepted");
        };
        assert!(message.contains("invalid arguments for `set`"), "{message}");
        assert!(matches!(testing::call::<KvStore>("nope", json!({})), Err(CallError::UnknownMethod(_))));
    }

    #[test]
    fn a_failed_call_commits_nothing() {
        testing::reset();
        testing::call::<KvStore>("init", json!({})).unwrap();
        let before = testing::root_hash();
        assert!(testing::call::<KvStore>("remove", json!({ "key": "missing" })).is_err());
        assert_eq!(testing::root_hash(), before);
        assert!(testing::take_events().is_empty());
    }

    #[test]
    fn replicas_converge_on_the_last_writer() {
        testing::reset();
        let mut store = KvStore::init();
        let other = testing::add_node();
        testing::sync();
        store.set("k".into(), "from node 0".into());
        testing::on_node(other, || KvStore::load().set("k".into(), "from node 1".into()));
        testing::sync();
        let on_zero = store.get("k");
        let on_one = testing::on_node(other, || KvStore::load().get("k"));
        assert_eq!(on_zero, on_one);
        assert_eq!(testing::root_hash(), testing::on_node(other, testing::root_hash));
    }
}
