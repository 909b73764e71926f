//! The client's caches: schemas by id (single-flight: concurrent misses of one id make one
//! request), ids by (subject, schema), and optionally `latest` answers with a TTL. Every map
//! is bounded by the configured capacity (an arbitrary entry is dropped when full).

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use super::error::RegistryError;
use super::types::{RegisteredSchema, Schema};

type ByIdCell = Arc<OnceCell<Arc<RegisteredSchema>>>;

#[derive(Debug)]
pub(crate) struct Cache {
    capacity: usize,
    latest_ttl: Option<Duration>,
    by_id: Mutex<HashMap<u32, ByIdCell>>,
    by_schema: Mutex<HashMap<(String, Schema), RegisteredSchema>>,
    latest: Mutex<HashMap<String, (Instant, RegisteredSchema)>>,
    pub(crate) hits: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a cache lock leaves a map that is still consistent (inserts and
    // removes are single calls): keep using it.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn insert_bounded<K: Eq + Hash + Clone, V>(
    map: &mut HashMap<K, V>,
    capacity: usize,
    key: K,
    value: V,
) {
    if map.len() >= capacity && !map.contains_key(&key) {
        if let Some(victim) = map.keys().next().cloned() {
            map.remove(&victim);
        }
    }
    map.insert(key, value);
}

impl Cache {
    pub(crate) fn new(capacity: usize, latest_ttl: Option<Duration>) -> Self {
        Cache {
            capacity: capacity.max(1),
            latest_ttl,
            by_id: Mutex::new(HashMap::new()),
            by_schema: Mutex::new(HashMap::new()),
            latest: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
        }
    }

    fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    /// The schema with `id`, fetched with `fetch` on a miss; callers missing the same id at
    /// the same time wait for one fetch. A failed fetch is not cached.
    pub(crate) async fn schema_by_id<F, Fut>(
        &self,
        id: u32,
        fetch: F,
    ) -> Result<Arc<RegisteredSchema>, RegistryError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<RegisteredSchema, RegistryError>>,
    {
        let cell = {
            let mut map = lock(&self.by_id);
            match map.get(&id) {
                Some(cell) => cell.clone(),
                None => {
                    let cell = ByIdCell::default();
                    insert_bounded(&mut map, self.capacity, id, cell.clone());
                    cell
                }
            }
        };
        if let Some(found) = cell.get() {
            self.hit();
            return Ok(found.clone());
        }
        cell.get_or_try_init(|| async { fetch().await.map(Arc::new) })
            .await
            .cloned()
    }

    /// What lookup or register learnt about `schema` under `subject`.
    pub(crate) fn by_schema(&self, subject: &str, schema: &Schema) -> Option<RegisteredSchema> {
        let found = lock(&self.by_schema)
            .get(&(subject.to_owned(), schema.clone()))
            .cloned();
        if found.is_some() {
            self.hit();
        }
        found
    }

    pub(crate) fn put_by_schema(
        &self,
        subject: &str,
        schema: &Schema,
        registered: RegisteredSchema,
    ) {
        insert_bounded(
            &mut lock(&self.by_schema),
            self.capacity,
            (subject.to_owned(), schema.clone()),
            registered,
        );
    }

    pub(crate) fn latest(&self, subject: &str) -> Option<RegisteredSchema> {
        let ttl = self.latest_ttl?;
        let mut map = lock(&self.latest);
        match map.get(subject) {
            Some((at, found)) if at.elapsed() < ttl => {
                let found = found.clone();
                drop(map);
                self.hit();
                Some(found)
            }
            Some(_) => {
                map.remove(subject);
                None
            }
            None => None,
        }
    }

    pub(crate) fn put_latest(&self, subject: &str, registered: &RegisteredSchema) {
        if self.latest_ttl.is_some() {
            insert_bounded(
                &mut lock(&self.latest),
                self.capacity,
                subject.to_owned(),
                (Instant::now(), registered.clone()),
            );
        }
    }

    /// Drops the cached `latest` of `subject` (after a register through this client).
    pub(crate) fn forget_latest(&self, subject: &str) {
        lock(&self.latest).remove(subject);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::types::Schema;
    use std::sync::atomic::AtomicU32;

    fn registered(id: u32) -> RegisteredSchema {
        RegisteredSchema {
            id,
            subject: None,
            version: None,
            schema: Schema::json("{}"),
        }
    }

    #[tokio::test]
    async fn single_flight_and_no_caching_of_errors() {
        let cache = Arc::new(Cache::new(10, None));
        let fetches = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (cache, fetches) = (cache.clone(), fetches.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .schema_by_id(7, || async {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(registered(7))
                    })
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().id, 7);
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        let failed = cache
            .schema_by_id(8, || async {
                Err(RegistryError::InvalidResponse {
                    message: "x".into(),
                })
            })
            .await;
        assert!(failed.is_err());
        let ok = cache.schema_by_id(8, || async { Ok(registered(8)) }).await;
        assert_eq!(ok.unwrap().id, 8);
    }

    #[tokio::test]
    async fn bounded() {
        let cache = Cache::new(3, None);
        for id in 0..10 {
            cache
                .schema_by_id(id, || async move { Ok(registered(id)) })
                .await
                .unwrap();
        }
        assert!(lock(&cache.by_id).len() <= 3);
    }
}
