//! One async lock per key, created on demand and dropped when unused: the
//! shim reads a branch's pull request, merges and writes it back, so two
//! deliveries for the same branch take turns instead of overwriting each
//! other's facts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

#[derive(Default)]
pub struct KeyedLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Holds the lock of one key; the key is forgotten when nobody holds or
/// waits for it.
pub struct KeyGuard<'a> {
    owner: &'a KeyedLocks,
    key: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl KeyedLocks {
    pub async fn lock(&self, key: String) -> KeyGuard<'_> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(key.clone()).or_default().clone()
        };
        KeyGuard {
            owner: self,
            key,
            guard: Some(lock.lock_owned().await),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.locks.lock().map(|l| l.len()).unwrap_or(0)
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut locks = self.owner.locks.lock().unwrap_or_else(|e| e.into_inner());
        // Only the map holds it: no one else holds or waits.
        if locks
            .get(&self.key)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            locks.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_holder_per_key_and_nothing_left_behind() {
        let locks = KeyedLocks::default();
        let first = locks.lock("a@main".into()).await;
        let other = locks.lock("a@dev".into()).await;
        let blocked = tokio::time::timeout(Duration::from_millis(20), locks.lock("a@main".into()));
        assert!(blocked.await.is_err(), "the same key waits");
        drop(first);
        let second = locks.lock("a@main".into()).await;
        drop((second, other));
        assert_eq!(locks.len(), 0);
    }
}
