use super::*;
use strom_controller::acl::{operation as op, pattern_type, permission, resource_type as rt};

const TOPIC: i8 = rt::TOPIC;

fn settings(super_users: &[&str], allow_if_none: bool) -> Authorizer {
    Authorizer::new(&SecuritySettings {
        authorizer_enabled: true,
        super_users: super_users.iter().map(|s| s.to_string()).collect(),
        allow_everyone_if_no_acl_found: allow_if_none,
        quota_window_num: 11,
        quota_window_size_ms: 1000,
    })
}

fn acl(
    resource_type: i8,
    name: &str,
    pattern: i8,
    principal: &str,
    host: &str,
    operation: i8,
    permission: i8,
) -> AclBinding {
    AclBinding {
        resource_type,
        resource_name: name.into(),
        pattern_type: pattern,
        principal: principal.into(),
        host: host.into(),
        operation,
        permission,
    }
}

fn index(bindings: &[AclBinding]) -> AclIndex {
    let mut index = AclIndex::default();
    for binding in bindings {
        index.insert(binding.clone());
    }
    index
}

fn allow(name: &str, pattern: i8, principal: &str, operation: i8) -> AclBinding {
    acl(
        TOPIC,
        name,
        pattern,
        principal,
        "*",
        operation,
        permission::ALLOW,
    )
}

fn deny(name: &str, pattern: i8, principal: &str, operation: i8) -> AclBinding {
    acl(
        TOPIC,
        name,
        pattern,
        principal,
        "*",
        operation,
        permission::DENY,
    )
}

const LIT: i8 = pattern_type::LITERAL;
const PRE: i8 = pattern_type::PREFIXED;
const HOST: &str = "10.0.0.1";

#[test]
fn given_authorizer_off_when_checked_should_allow_everything() {
    let off = Authorizer::default();
    let acls = index(&[deny("*", LIT, "User:*", op::ALL)]);
    assert!(off.authorize(&acls, "User:alice", HOST, op::WRITE, TOPIC, "t"));
}

#[test]
fn given_no_binding_when_checked_should_follow_allow_everyone_if_no_acl_found() {
    let acls = AclIndex::default();
    assert!(!settings(&[], false).authorize(&acls, "User:alice", HOST, op::READ, TOPIC, "t"));
    assert!(settings(&[], true).authorize(&acls, "User:alice", HOST, op::READ, TOPIC, "t"));
    // A binding on the resource for someone else means "ACLs exist": no fallback.
    let acls = index(&[allow("t", LIT, "User:bob", op::READ)]);
    assert!(!settings(&[], true).authorize(&acls, "User:alice", HOST, op::READ, TOPIC, "t"));
}

#[test]
fn given_literal_binding_when_checked_should_match_only_that_name_and_principal() {
    let authorizer = settings(&[], false);
    let acls = index(&[allow("orders", LIT, "User:alice", op::READ)]);
    assert!(authorizer.authorize(&acls, "User:alice", HOST, op::READ, TOPIC, "orders"));
    assert!(!authorizer.authorize(&acls, "User:alice", HOST, op::READ, TOPIC, "orders2"));
    assert!(!authorizer.authorize(&acls, "User:bob", HOST, op::READ, TOPIC, "orders"));
    assert!(!authorizer.authorize(&acls, "User:alice", HOST, op::WRITE, TOPIC, "orders"));
    assert!(!authorizer.authorize(&acls, "User:alice", HOST, op::READ, rt::GROUP, "orders"));
}

#[test]
fn given_wildcards_when_checked_should_match_every_name_principal_and_host() {
    let authorizer = settings(&[], false);
    let acls = index(&[allow("*", LIT, "User:*", op::WRITE)]);
    assert!(authorizer.authorize(&acls, "User:anyone", HOST, op::WRITE, TOPIC, "x"));
    assert!(authorizer.authorize(&acls, "User:CN=alice", HOST, op::WRITE, TOPIC, "y"));
    let by_host = index(&[acl(
        TOPIC,
        "t",
        LIT,
        "User:a",
        "10.0.0.2",
        op::READ,
        permission::ALLOW,
    )]);
    assert!(!authorizer.authorize(&by_host, "User:a", HOST, op::READ, TOPIC, "t"));
    assert!(authorizer.authorize(&by_host, "User:a", "10.0.0.2", op::READ, TOPIC, "t"));
}

#[test]
fn given_prefixed_binding_when_checked_should_match_names_that_start_with_it() {
    let authorizer = settings(&[], false);
    let acls = index(&[allow("pay", PRE, "User:alice", op::READ)]);
    assert!(authorizer.authorize(&acls, "User:alice", HOST, op::READ, TOPIC, "pay"));
    assert!(authorizer.authorize(&acls, "User:alice", HOST, op::READ, TOPIC, "payments"));
    assert!(!authorizer.authorize(&acls, "User:alice", HOST, op::READ, TOPIC, "pa"));
    assert!(!authorizer.authorize(&acls, "User:alice", HOST, op::READ, TOPIC, "xpayments"));
}

#[test]
fn given_allow_and_deny_when_both_match_should_deny() {
    let authorizer = settings(&[], false);
    let acls = index(&[
        allow("*", LIT, "User:*", op::ALL),
        deny("secret", PRE, "User:alice", op::READ),
    ]);
    assert!(!authorizer.authorize(&acls, "User:alice", HOST, op::READ, TOPIC, "secret-1"));
    // The deny names READ only: WRITE and DESCRIBE stay allowed (deny implies nothing).
    assert!(authorizer.authorize(&acls, "User:alice", HOST, op::WRITE, TOPIC, "secret-1"));
    assert!(authorizer.authorize(&acls, "User:alice", HOST, op::DESCRIBE, TOPIC, "secret-1"));
    assert!(authorizer.authorize(&acls, "User:bob", HOST, op::READ, TOPIC, "secret-1"));
    let deny_all = index(&[
        allow("t", LIT, "User:alice", op::READ),
        deny("*", LIT, "User:*", op::ALL),
    ]);
    assert!(!authorizer.authorize(&deny_all, "User:alice", HOST, op::READ, TOPIC, "t"));
}

#[test]
fn given_allowed_operations_when_checked_should_imply_describe_and_describe_configs() {
    let authorizer = settings(&[], false);
    for granted in [op::READ, op::WRITE, op::DELETE, op::ALTER, op::ALL] {
        let acls = index(&[allow("t", LIT, "User:a", granted)]);
        assert!(
            authorizer.authorize(&acls, "User:a", HOST, op::DESCRIBE, TOPIC, "t"),
            "{granted}"
        );
    }
    for granted in [op::CREATE, op::DESCRIBE_CONFIGS, op::IDEMPOTENT_WRITE] {
        let acls = index(&[allow("t", LIT, "User:a", granted)]);
        assert!(
            !authorizer.authorize(&acls, "User:a", HOST, op::DESCRIBE, TOPIC, "t"),
            "{granted}"
        );
    }
    let acls = index(&[allow("t", LIT, "User:a", op::ALTER_CONFIGS)]);
    assert!(authorizer.authorize(&acls, "User:a", HOST, op::DESCRIBE_CONFIGS, TOPIC, "t"));
    assert!(!authorizer.authorize(&acls, "User:a", HOST, op::ALTER, TOPIC, "t"));
    let acls = index(&[allow("t", LIT, "User:a", op::DESCRIBE)]);
    assert!(!authorizer.authorize(&acls, "User:a", HOST, op::READ, TOPIC, "t"));
    let all = index(&[allow("t", LIT, "User:a", op::ALL)]);
    for wanted in [
        op::READ,
        op::WRITE,
        op::CREATE,
        op::ALTER_CONFIGS,
        op::IDEMPOTENT_WRITE,
    ] {
        assert!(authorizer.authorize(&all, "User:a", HOST, wanted, TOPIC, "t"));
    }
}

#[test]
fn given_super_user_when_denied_everything_should_still_be_allowed() {
    let authorizer = settings(&["User:admin", "User:CN=ops"], false);
    let acls = index(&[deny("*", LIT, "User:*", op::ALL)]);
    assert!(authorizer.authorize(&acls, "User:admin", HOST, op::DELETE, TOPIC, "t"));
    assert!(authorizer.authorize(
        &acls,
        "User:CN=ops",
        HOST,
        op::ALTER,
        rt::CLUSTER,
        "kafka-cluster"
    ));
    assert!(!authorizer.authorize(&acls, "User:alice", HOST, op::DELETE, TOPIC, "t"));
    assert!(authorizer.authorize_any(&acls, "User:admin", HOST, op::WRITE, TOPIC));
}

#[test]
fn given_resource_type_check_when_an_allow_is_not_dominated_should_allow() {
    let authorizer = settings(&[], false);
    let none = AclIndex::default();
    assert!(!authorizer.authorize_any(&none, "User:a", HOST, op::WRITE, TOPIC));
    let acls = index(&[allow("orders", LIT, "User:a", op::WRITE)]);
    assert!(authorizer.authorize_any(&acls, "User:a", HOST, op::WRITE, TOPIC));
    assert!(!authorizer.authorize_any(&acls, "User:b", HOST, op::WRITE, TOPIC));
    let denied_literal = index(&[
        allow("orders", LIT, "User:a", op::WRITE),
        deny("orders", LIT, "User:a", op::WRITE),
    ]);
    assert!(!authorizer.authorize_any(&denied_literal, "User:a", HOST, op::WRITE, TOPIC));
    let denied_by_prefix = index(&[
        allow("orders", PRE, "User:a", op::WRITE),
        deny("ord", PRE, "User:a", op::ALL),
    ]);
    assert!(!authorizer.authorize_any(&denied_by_prefix, "User:a", HOST, op::WRITE, TOPIC));
    let partly = index(&[
        allow("orders", LIT, "User:a", op::WRITE),
        allow("payments", LIT, "User:a", op::WRITE),
        deny("orders", LIT, "User:a", op::WRITE),
    ]);
    assert!(authorizer.authorize_any(&partly, "User:a", HOST, op::WRITE, TOPIC));
}

/// Cost of one check, printed (run with `cargo test --release -p strom-broker --lib
/// authz::tests::measure -- --ignored --nocapture`). Not a criterion bench: the workspace has
/// no criterion build in its offline registry yet.
#[test]
#[ignore]
fn measure_check_cost() {
    use std::hint::black_box;
    use std::time::Instant;
    let authorizer = settings(&["User:admin"], false);
    let mut bindings = Vec::new();
    for i in 0..1000 {
        bindings.push(allow(
            &format!("topic-{i}"),
            LIT,
            &format!("User:u{i}"),
            op::WRITE,
        ));
        bindings.push(allow(&format!("team{i}-"), PRE, "User:alice", op::READ));
    }
    bindings.push(allow("orders", LIT, "User:alice", op::WRITE));
    bindings.push(deny("secret", PRE, "User:*", op::ALL));
    let acls = index(&bindings);
    let rounds = 2_000_000u32;
    let time = |label: &str, check: &dyn Fn() -> bool| {
        let started = Instant::now();
        let mut allowed = 0u32;
        for _ in 0..rounds {
            allowed += black_box(check()) as u32;
        }
        let ns = started.elapsed().as_nanos() as f64 / rounds as f64;
        println!("{label:<55} {ns:>7.1} ns/check (allowed {allowed})");
    };
    let off = Authorizer::default();
    time("authoriser off", &|| {
        off.authorize(&acls, "User:alice", HOST, op::WRITE, TOPIC, "orders")
    });
    time("super user", &|| {
        authorizer.authorize(&acls, "User:admin", HOST, op::WRITE, TOPIC, "orders")
    });
    time("2002 bindings, literal allow (alice WRITE orders)", &|| {
        authorizer.authorize(&acls, "User:alice", HOST, op::WRITE, TOPIC, "orders")
    });
    time(
        "2002 bindings, prefixed allow (alice READ team7-x)",
        &|| authorizer.authorize(&acls, "User:alice", HOST, op::READ, TOPIC, "team7-events"),
    );
    time("2002 bindings, wildcard-principal deny (secret-1)", &|| {
        authorizer.authorize(&acls, "User:alice", HOST, op::WRITE, TOPIC, "secret-1")
    });
    time("2002 bindings, no binding (denied)", &|| {
        authorizer.authorize(&acls, "User:alice", HOST, op::WRITE, TOPIC, "unknown-topic")
    });
}
