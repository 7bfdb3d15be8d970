//! What every handler shares: the node, the auth and browser policies, the
//! outstanding stream tickets, the metrics, the
//! cache of method kinds, and the shutdown signal that ends live streams.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;
use weft_node::{NodeError, NodeHandle};
use weft_primitives::Hash;

use crate::ServerConfig;
use crate::auth::Auth;
use crate::browser::BrowserPolicy;
use crate::metrics::ApiMetrics;
use crate::tickets::TicketBook;

/// Entries kept in each of the kind caches; beyond, the cache starts over.
pub const KIND_CACHE_MAX: usize = 1024;

/// Cheap to clone: one `Arc`.
#[derive(Clone)]
pub(crate) struct ApiState {
    shared: Arc<Shared>,
}

struct Shared {
    node: NodeHandle,
    auth: Auth,
    browser: BrowserPolicy,
    tickets: TicketBook,
    metrics: ApiMetrics,
    kinds: Mutex<KindCache>,
    stopping: watch::Receiver<bool>,
}

/// Contexts never change application and an application id is the hash of
/// its module, so both maps stay true forever; they only save driver
/// round trips on every `execute`/`query`.
#[derive(Default)]
struct KindCache {
    application_of: HashMap<Hash, Hash>,
    methods_of: HashMap<Hash, Arc<Vec<(String, String)>>>,
}

impl ApiState {
    pub(crate) fn new(node: NodeHandle, config: &ServerConfig, stopping: watch::Receiver<bool>) -> ApiState {
        let shared = Shared {
            node,
            auth: Auth::new(config),
            browser: BrowserPolicy::new(config),
            tickets: TicketBook::default(),
            metrics: ApiMetrics::default(),
            kinds: Mutex::new(KindCache::default()),
            stopping,
        };
        ApiState { shared: Arc::new(shared) }
    }

    pub(crate) fn node(&self) -> &NodeHandle {
        &self.shared.node
    }

    pub(crate) fn auth(&self) -> &Auth {
        &self.shared.auth
    }

    pub(crate) fn browser(&self) -> &BrowserPolicy {
        &self.shared.browser
    }

    pub(crate) fn tickets(&self) -> &TicketBook {
        &self.shared.tickets
    }

    pub(crate) fn metrics(&self) -> &ApiMetrics {
        &self.shared.metrics
    }

    /// Resolves once the server is shutting down (never for [`crate::router`]).
    pub(crate) async fn stopped(&self) {
        let mut stopping = self.shared.stopping.clone();
        if stopping.wait_for(|stopping| *stopping).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    fn kinds(&self) -> MutexGuard<'_, KindCache> {
        // The cache holds no invariant a panicking holder could break.
        self.shared.kinds.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The kind (`init`, `mutate`, `view`, `handler`) of `method` in the
    /// application `context` runs; `None` if the application has no such
    /// method.
    pub(crate) async fn method_kind(&self, context: Hash, method: &str) -> Result<Option<String>, NodeError> {
        let known = self.kinds().application_of.get(&context).copied();
        let application = match known {
            Some(application) => application,
            None => {
                let application = self.node().context(context).await?.application;
                let mut kinds = self.kinds();
                if kinds.application_of.len() >= KIND_CACHE_MAX {
                    kinds.application_of.clear();
                }
                kinds.application_of.insert(context, application);
                application
            }
        };
        let known = self.kinds().methods_of.get(&application).cloned();
        let methods = match known {
            Some(methods) => methods,
            None => {
                let apps = self.node().applications().await?;
                let app = apps
                    .into_iter()
                    .find(|app| app.id == application)
                    .ok_or(NodeError::UnknownApplication(application))?;
                let methods = Arc::new(app.methods);
                let mut kinds = self.kinds();
                if kinds.methods_of.len() >= KIND_CACHE_MAX {
                    kinds.methods_of.clear();
                }
                kinds.methods_of.insert(application, methods.clone());
                methods
            }
        };
        Ok(methods.iter().find(|(name, _)| name == method).map(|(_, kind)| kind.clone()))
    }
}
