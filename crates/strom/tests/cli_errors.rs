//! Failures say what went wrong and what to do, in one line, with a meaningful exit code.

mod cli_support;

use cli_support::{run_strom, stderr, Broker};

#[test]
fn given_no_broker_when_listing_topics_should_name_address_and_fix_with_exit_3() {
    // Bind then drop: nothing listens on this port afterwards.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let address = format!("127.0.0.1:{port}");
    let output = run_strom(&["topic", "list"], b"", &address);
    assert_eq!(output.status.code(), Some(3));
    let message = stderr(&output);
    assert!(message.starts_with("error: "), "{message}");
    assert!(message.contains(&address), "names the address: {message}");
    assert!(
        message.contains("--bootstrap-server"),
        "names the fix: {message}"
    );
    assert_eq!(message.trim_end().lines().count(), 1, "{message}");
}

#[test]
fn given_unknown_topic_when_consuming_should_say_how_to_create_it() {
    let broker = Broker::start();
    let output = broker.strom(&["consume", "missing", "--from-beginning"]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("topic 'missing' does not exist"),
        "{message}"
    );
    assert!(message.contains("strom topic create missing"), "{message}");
}

#[test]
fn given_auto_create_off_when_producing_to_unknown_topic_should_fail_naming_it() {
    let broker = Broker::start_with(&["auto.create.topics.enable=false"]);
    let output = broker.strom_with_stdin(&["produce", "nowhere"], b"x\n");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("'nowhere' does not exist"), "{message}");
}

#[test]
fn given_partition_out_of_range_when_consuming_should_name_partition_count() {
    let broker = Broker::start();
    broker.ok(&["topic", "create", "small", "--partitions", "2"]);
    let output = broker.strom(&["consume", "small", "--partition", "5"]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(message.contains("no partition 5"), "{message}");
}

#[test]
fn given_bad_arguments_should_exit_2_with_usage() {
    let output = run_strom(&["produce", "t", "--acks", "2"], b"", "127.0.0.1:1");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("use 0, 1 or all"),
        "{}",
        stderr(&output)
    );
    let output = run_strom(
        &["consume", "t", "--from-beginning", "--offset", "3"],
        b"",
        "127.0.0.1:1",
    );
    assert_eq!(output.status.code(), Some(2), "start options are exclusive");
}
