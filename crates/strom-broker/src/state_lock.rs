//! The lock around a coordinator's state (groups, transactions).
//!
//! A coordinator writes its records while it holds its state lock, so the order of its
//! writes in the log is the order of its state changes, and on a cluster each write then
//! waits for the in-sync replicas (`internal_topics::wait_replicated`, which blocks its
//! thread off the runtime's workers). A task that meets the lock taken must not block a
//! runtime worker meanwhile: on a 2-core machine the runtime has two workers, and the
//! follower fetches the holder waits for, the timer of its timeout, or a task queued on
//! the blocked worker could then never run — the broker froze (seen in the compatibility
//! test that commits offsets on a fresh 3-node cluster). [`StateLock::lock`] therefore
//! waits for a taken lock inside `block_in_place`, which hands the worker's queue to
//! another thread first.

use parking_lot::{Mutex, MutexGuard};
use tokio::runtime::{Handle, RuntimeFlavor};

/// A mutex whose holder may wait for the runtime; see the module docs.
pub struct StateLock<T> {
    inner: Mutex<T>,
}

impl<T> StateLock<T> {
    pub fn new(value: T) -> Self {
        StateLock {
            inner: Mutex::new(value),
        }
    }

    /// Takes the lock; when another holds it, waits without holding up a runtime worker.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        if let Some(guard) = self.inner.try_lock() {
            return guard;
        }
        let on_workers = Handle::try_current()
            .is_ok_and(|handle| handle.runtime_flavor() == RuntimeFlavor::MultiThread);
        if on_workers {
            tokio::task::block_in_place(|| self.inner.lock())
        } else {
            self.inner.lock()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    /// One holder waits (off the workers) for a task to run while the other worker's task
    /// wants the lock: with a plain mutex on a 2-worker runtime the wanted task can be
    /// stuck behind the blocked worker; here it runs and the holder gets its answer.
    #[test]
    fn given_holder_waiting_for_a_task_when_other_tasks_want_the_lock_should_not_freeze() {
        // On its own thread, so a frozen runtime fails the test instead of hanging it.
        let lock = Arc::new(StateLock::new(0u32));
        let (finished, outcome) = std::sync::mpsc::channel();
        let shared = lock.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let (tell, told) = tokio::sync::oneshot::channel::<()>();
                let holder_lock = shared.clone();
                let holder = tokio::spawn(async move {
                    let answer = {
                        let mut guard = holder_lock.lock();
                        // Holding the lock, wait for a task that needs a worker and the timer.
                        let answer = tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            tell.send(()).ok();
                        });
                        let handle = Handle::current();
                        tokio::task::block_in_place(|| handle.block_on(told)).unwrap();
                        *guard += 1;
                        answer
                    };
                    answer.await.unwrap();
                });
                // Contenders on every worker while the holder waits.
                let contenders: Vec<_> = (0..4)
                    .map(|_| {
                        let lock = shared.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            *lock.lock() += 1;
                        })
                    })
                    .collect();
                holder.await.unwrap();
                for contender in contenders {
                    contender.await.unwrap();
                }
            });
            finished.send(()).ok();
        });
        assert!(
            outcome.recv_timeout(Duration::from_secs(20)).is_ok(),
            "the runtime froze: tasks blocked on the lock held up the holder's wait"
        );
        assert_eq!(*lock.lock(), 5);
    }

    #[test]
    fn given_no_runtime_or_current_thread_runtime_should_lock_plainly() {
        let lock = StateLock::new(1);
        *lock.lock() += 1;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async { *lock.lock() += 1 });
        assert_eq!(*lock.lock(), 3);
    }
}
