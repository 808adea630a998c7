//! A standalone worker: one process, its connectors given on the command line (and
//! changeable through the REST API), configs and statuses in memory, source offsets in
//! `offset.storage.file.filename`. It runs every task itself.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::watch;

use crate::herder::Herder;
use crate::state::{self, all_tasks};
use crate::worker::Worker;

/// Runs every connector's tasks until `shutdown` turns true, then stops them.
pub async fn run(worker: Arc<Worker>, herder: Arc<Herder>, mut shutdown: watch::Receiver<bool>) {
    let mut changes = herder.configs.subscribe();
    loop {
        let connectors = state::connectors(&herder.configs.snapshot());
        let names: BTreeSet<String> = connectors.keys().cloned().collect();
        let tasks: BTreeSet<_> = all_tasks(&connectors).into_iter().collect();
        worker.reconcile(&names, &tasks, &connectors).await;
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { break },
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
    }
    worker.stop_all().await;
}
