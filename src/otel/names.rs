//! Span names and attribute values per method, made once and shared by its calls.
//!
//! Every call's span and metric points carry the same few strings (`vgi_rpc/<method>`,
//! the protocol, the method, the server id); building them per call was a measurable
//! part of the instrumentation's cost. Shared `Arc<str>` values make each attribute a
//! reference count instead of an allocation.

use std::borrow::{Borrow, Cow};
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, Mutex, RwLock};

/// Methods kept ready-made; past this (a peer naming ever new methods) they are built
/// per call.
const MAX_CACHED_METHODS: usize = 4096;

/// A method's span name and attribute values.
#[derive(Debug)]
pub(crate) struct MethodNames {
    pub(crate) span_name: Cow<'static, str>,
    pub(crate) service: Arc<str>,
    pub(crate) method: Arc<str>,
    pub(crate) server_id: Arc<str>,
}

/// The cache, keyed by `(protocol, method)`.
#[derive(Debug, Default)]
pub(crate) struct NameCache {
    map: RwLock<NamesMap>,
}

type NamesMap = HashMap<(String, String), Arc<MethodNames>, BuildHasherDefault<Fnv>>;

/// FNV-1a: the keys are a handful of short names the process itself serves or calls
/// (and at most [`MAX_CACHED_METHODS`] of them), so a keyed hash buys nothing and
/// SipHash was a tenth of the client's per-call cost.
#[derive(Debug)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

thread_local! {
    /// The names this thread got last (from any cache: they are made from the three
    /// strings alone): a thread making or answering calls mostly repeats one method,
    /// and this skips the map's lock and hash.
    static LAST: RefCell<Option<Arc<MethodNames>>> = const { RefCell::new(None) };
}

impl NameCache {
    /// The names of `protocol.method` (`server_id`: the serving server's, or empty).
    pub(crate) fn get(&self, protocol: &str, method: &str, server_id: &str) -> Arc<MethodNames> {
        let last = LAST.with_borrow(|last| match last {
            Some(names)
                if &*names.method == method
                    && &*names.service == protocol
                    && &*names.server_id == server_id =>
            {
                Some(Arc::clone(names))
            }
            _ => None,
        });
        if let Some(names) = last {
            return names;
        }
        self.miss(protocol, method, server_id)
    }

    /// The names from the map (or made), remembered as this thread's last. Out of line:
    /// a call that repeats its thread's last method runs only the check above, and its
    /// code stays a few cache lines.
    #[cold]
    #[inline(never)]
    fn miss(&self, protocol: &str, method: &str, server_id: &str) -> Arc<MethodNames> {
        let names = self.lookup(protocol, method, server_id);
        LAST.set(Some(Arc::clone(&names)));
        names
    }

    fn lookup(&self, protocol: &str, method: &str, server_id: &str) -> Arc<MethodNames> {
        let key = (protocol, method);
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        if let Some(names) = map.get(&key as &dyn NamesKey)
            && &*names.server_id == server_id
        {
            return Arc::clone(names);
        }
        drop(map);
        let names = Arc::new(MethodNames {
            span_name: span_name(method),
            service: Arc::from(protocol),
            method: Arc::from(method),
            server_id: Arc::from(server_id),
        });
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if map.len() < MAX_CACHED_METHODS {
            map.insert((protocol.to_owned(), method.to_owned()), Arc::clone(&names));
        }
        names
    }
}

/// Span names made `'static` once per method name and process (at most
/// [`MAX_CACHED_METHODS`] of them, then allocated per use): the SDK takes a span's name
/// as a `Cow<'static, str>`, and an owned one is an allocation per span, freed later on
/// the export thread.
static SPAN_NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());

fn span_name(method: &str) -> Cow<'static, str> {
    let name = format!("vgi_rpc/{method}");
    let mut interned = SPAN_NAMES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(existing) = interned.get(name.as_str()) {
        return Cow::Borrowed(existing);
    }
    if interned.len() >= MAX_CACHED_METHODS {
        return Cow::Owned(name);
    }
    let leaked: &'static str = Box::leak(name.into_boxed_str());
    interned.insert(leaked);
    Cow::Borrowed(leaked)
}

/// Lets the map, keyed by owned pairs, be searched with borrowed ones.
trait NamesKey {
    fn key(&self) -> (&str, &str);
}

impl NamesKey for (String, String) {
    fn key(&self) -> (&str, &str) {
        (&self.0, &self.1)
    }
}

impl NamesKey for (&str, &str) {
    fn key(&self) -> (&str, &str) {
        (self.0, self.1)
    }
}

impl<'a> Borrow<dyn NamesKey + 'a> for (String, String) {
    fn borrow(&self) -> &(dyn NamesKey + 'a) {
        self
    }
}

impl Hash for dyn NamesKey + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl PartialEq for dyn NamesKey + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for dyn NamesKey + '_ {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_once_per_method_and_server() {
        let cache = NameCache::default();
        let a = cache.get("P", "m", "s1");
        assert_eq!(a.span_name, "vgi_rpc/m");
        assert!(matches!(a.span_name, Cow::Borrowed(_)));
        assert!(Arc::ptr_eq(&a, &cache.get("P", "m", "s1")));
        assert!(!Arc::ptr_eq(&a, &cache.get("P", "n", "s1")));
        // Another server id (a hook shared by two servers) gets its own values.
        assert_eq!(&*cache.get("P", "m", "s2").server_id, "s2");
    }
}
