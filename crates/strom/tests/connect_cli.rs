//! `strom connect standalone` with connector files, and the `strom connect` REST front:
//! aligned tables for people, `--json` for scripts, exit codes.

mod broker_support;
mod connect_support;
mod http_support;

use std::process::Command;
use std::time::Duration;

use connect_support::*;
use serde_json::Value;

fn strom(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(args)
        .output()
        .expect("run strom");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn given_a_standalone_worker_when_driven_by_the_cli_should_move_lines_and_resume_from_its_offsets_file(
) {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker();
    let input = dir.path().join("in.txt");
    let output = dir.path().join("out.txt");
    write_lines(&input, 0, 1000);
    let source = dir.path().join("source.properties");
    std::fs::write(
        &source,
        format!(
            "name=local-in\nconnector.class=FileStreamSource\nfile={}\ntopic=cli-lines\n",
            input.display()
        ),
    )
    .unwrap();
    let mut worker = Worker::standalone(dir.path(), &broker, &[source.clone()]);
    let url = worker.url();

    let file = format!("file={}", output.display());
    let (code, stdout, stderr) = strom(&[
        "connect",
        "create",
        "local-out",
        "--url",
        &url,
        "--set",
        "connector.class=FileStreamSink",
        "--set",
        "topics=cli-lines",
        "--set",
        &file,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("Created connector local-out (sink, 1 task(s))"),
        "{stdout}"
    );
    wait_for("1000 lines out", Duration::from_secs(60), || {
        (lines(&output).len() >= 1000).then_some(())
    });
    assert_eq!(lines(&output).len(), 1000);
    wait_for("both running", Duration::from_secs(30), || {
        (all_running(&worker, "local-in") && all_running(&worker, "local-out")).then_some(())
    });

    let (code, stdout, _) = strom(&["connect", "list", "--url", &url]);
    assert_eq!(code, 0);
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["CONNECTOR", "TYPE", "STATE", "TASKS", "WORKER"]);
    assert_eq!(
        rows[1][..5],
        ["local-in", "source", "RUNNING", "1/1", "running"]
    );
    assert_eq!(rows[2][..4], ["local-out", "sink", "RUNNING", "1/1"]);
    // Columns aligned: every row's second column starts at the same place.
    let at: Vec<usize> = stdout
        .lines()
        .map(|l| {
            l.find(rows[0][1])
                .or_else(|| l.find("source"))
                .or_else(|| l.find("sink"))
                .unwrap()
        })
        .collect();
    assert!(at.windows(2).all(|w| w[0] == w[1]), "{stdout}");

    let (code, stdout, _) = strom(&["connect", "status", "local-in", "--url", &url, "--json"]);
    assert_eq!(code, 0);
    let status: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(status["tasks"][0]["state"], "RUNNING");

    let (code, _, _) = strom(&["connect", "pause", "local-in", "--url", &url]);
    assert_eq!(code, 0);
    wait_for("paused", Duration::from_secs(30), || {
        let (_, stdout, _) = strom(&["connect", "status", "local-in", "--url", &url]);
        stdout
            .lines()
            .any(|l| l.starts_with("0 ") && l.contains("PAUSED"))
            .then_some(())
    });
    let (code, _, _) = strom(&["connect", "resume", "local-in", "--url", &url]);
    assert_eq!(code, 0);

    let (code, stdout, _) = strom(&["connect", "offsets", "local-in", "--url", &url, "--json"]);
    assert_eq!(code, 0);
    let offsets: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(offsets["offsets"][0]["offset"]["position"], 13_000);

    let (code, _, stderr) = strom(&["connect", "status", "nope", "--url", &url]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("Connector nope not found (HTTP 404)"),
        "{stderr}"
    );
    let (code, _, stderr) = strom(&["connect", "list", "--url", "http://127.0.0.1:1"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("cannot reach the Connect worker"),
        "{stderr}"
    );

    // A graceful stop, more lines, a restart: the source resumes from its offsets file,
    // the sink from its committed offsets, so nothing is repeated.
    assert!(worker.stop().success(), "{}", worker.log());
    write_lines(&input, 1000, 1500);
    let sink = dir.path().join("sink.json");
    std::fs::write(
        &sink,
        serde_json::json!({"name": "local-out", "config": {"connector.class": "FileStreamSink", "topics": "cli-lines", "file": output.display().to_string()}}).to_string(),
    )
    .unwrap();
    let _worker = Worker::standalone(dir.path(), &broker, &[source, sink]);
    wait_for("1500 lines out", Duration::from_secs(60), || {
        (lines(&output).len() >= 1500).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    let mut got = lines(&output);
    got.sort();
    let want: Vec<String> = (0..1500).map(|i| format!("line-{i:07}")).collect();
    assert_eq!(got, want);
}
