//! Tasks over persistent (redb) stores: state survives a reopen; the changelog carries
//! every write.

use std::collections::HashMap;
use std::sync::Arc;

use strom_streams::task::Task;
use strom_streams::*;

fn counts() -> Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Serdes::string(), Serdes::string())
        .group_by_key()
        .named("counts")
        .count()
        .to("out", Serdes::string(), Serdes::i64());
    builder.build().unwrap()
}

#[test]
fn given_a_redb_task_when_flushed_and_reopened_should_keep_its_counts() {
    let dir = tempfile::tempdir().unwrap();
    let backend = StoreBackend::Redb {
        dir: dir.path().to_path_buf(),
    };
    let topology = Arc::new(counts());
    let names = vec!["counts".to_string()];
    {
        let mut task = Task::new(
            topology.clone(),
            "app",
            0,
            backend.open("app-0", &names).unwrap(),
        )
        .unwrap();
        for _ in 0..3 {
            task.process("in", Some(b"k"), Some(b"v"), 1).unwrap();
        }
        let changelog: Vec<_> = task
            .take_outputs()
            .into_iter()
            .filter(|o| o.topic == "app-counts-changelog")
            .collect();
        assert_eq!(changelog.len(), 3);
        assert_eq!(changelog[2].partition, Some(0));
        task.flush(&HashMap::from([("counts".to_string(), 3)]))
            .unwrap();
    }
    let task = Task::new(topology, "app", 0, backend.open("app-0", &names).unwrap()).unwrap();
    assert_eq!(
        task.query("counts", b"k").unwrap(),
        Some(3i64.to_be_bytes().to_vec())
    );
    assert_eq!(task.checkpoint("counts"), Some(3));
}
