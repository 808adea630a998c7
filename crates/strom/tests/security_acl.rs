//! ACLs end to end with the real binary: an anonymous super user on a PLAINTEXT listener
//! administers; alice and bob authenticate with SASL/PLAIN on a SASL_PLAINTEXT listener and
//! get exactly what their ACLs allow, with Kafka's error codes for the rest.

mod broker_support;

use std::net::{SocketAddr, TcpListener};

use broker_support::*;
use bytes::Bytes;
use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use strom_broker::sasl::scram::ScramMechanism;

const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const CLUSTER: i8 = 4;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const ALLOW: i8 = 3;
const DENY: i8 = 2;
const ALL: i8 = 2;
const READ: i8 = 3;
const WRITE: i8 = 4;
const DESCRIBE: i8 = 8;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

struct Cluster {
    broker: TestBroker,
    sasl: SocketAddr,
    _temp: tempfile::TempDir,
}

fn start_with(temp: tempfile::TempDir, plain: u16, sasl: u16, extra: &[&str]) -> Cluster {
    let listeners =
        format!("listeners=PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl}");
    let mut settings = vec![
        listeners.as_str(),
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users=User:ANONYMOUS;User:admin",
        "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256",
    ];
    settings.extend_from_slice(extra);
    let broker = TestBroker::start_in(&temp.path().join("data"), plain, &settings);
    Cluster {
        broker,
        sasl: format!("127.0.0.1:{sasl}").parse().unwrap(),
        _temp: temp,
    }
}

fn start() -> Cluster {
    start_with(tempfile::tempdir().unwrap(), free_port(), free_port(), &[])
}

fn add_user(admin: &mut Conn, user: &str, password: &str) {
    let salt = format!("salt-of-{user}").into_bytes();
    let salted = ScramMechanism::Sha256.salted_password(password.as_bytes(), &salt, 4096);
    let request = AlterUserScramCredentialsRequest::default().with_upsertions(vec![
        ScramCredentialUpsertion::default()
            .with_name(s(user))
            .with_mechanism(1)
            .with_iterations(4096)
            .with_salt(Bytes::from(salt))
            .with_salted_password(Bytes::from(salted)),
    ]);
    let response: AlterUserScramCredentialsResponse =
        admin.call(ApiKey::AlterUserScramCredentials, 0, &request);
    assert_eq!(response.results[0].error_code, 0, "{response:?}");
}

/// A SASL/PLAIN connection as `user`.
fn login(addr: SocketAddr, user: &str, password: &str) -> Conn {
    let mut conn = Conn::plain(addr);
    let handshake: SaslHandshakeResponse = conn.call(
        ApiKey::SaslHandshake,
        1,
        &SaslHandshakeRequest::default().with_mechanism(s("PLAIN")),
    );
    assert_eq!(handshake.error_code, 0);
    let authenticate: SaslAuthenticateResponse = conn.call(
        ApiKey::SaslAuthenticate,
        2,
        &SaslAuthenticateRequest::default()
            .with_auth_bytes(Bytes::from(format!("\0{user}\0{password}"))),
    );
    assert_eq!(authenticate.error_code, 0, "{authenticate:?}");
    conn
}

fn acl(
    resource_type: i8,
    name: &str,
    pattern: i8,
    principal: &str,
    operation: i8,
    permission: i8,
) -> AclCreation {
    AclCreation::default()
        .with_resource_type(resource_type)
        .with_resource_name(s(name))
        .with_resource_pattern_type(pattern)
        .with_principal(s(principal))
        .with_host(s("*"))
        .with_operation(operation)
        .with_permission_type(permission)
}

fn create_acls(conn: &mut Conn, creations: Vec<AclCreation>) -> CreateAclsResponse {
    conn.call(
        ApiKey::CreateAcls,
        3,
        &CreateAclsRequest::default().with_creations(creations),
    )
}

fn describe_all(conn: &mut Conn) -> DescribeAclsResponse {
    conn.call(
        ApiKey::DescribeAcls,
        3,
        &DescribeAclsRequest::default()
            .with_resource_type_filter(1)
            .with_resource_name_filter(None)
            .with_pattern_type_filter(1)
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_operation(1)
            .with_permission_type(1),
    )
}

fn metadata(conn: &mut Conn, topics: Option<&[&str]>) -> MetadataResponse {
    let request = MetadataRequest::default()
        .with_topics(topics.map(|names| {
            names
                .iter()
                .map(|n| MetadataRequestTopic::default().with_name(Some(topic_name(n))))
                .collect()
        }))
        .with_allow_auto_topic_creation(true);
    conn.call(ApiKey::Metadata, 12, &request)
}

/// Admin set-up shared by the tests: users alice and bob, topics orders, secret-1 and
/// other, alice may write and read `orders`, read group `g1`, and is denied `secret*`.
fn set_up(cluster: &Cluster) -> Conn {
    let mut admin = cluster.broker.connect();
    add_user(&mut admin, "alice", "alice-secret");
    add_user(&mut admin, "bob", "bob-secret");
    for topic in ["orders", "secret-1", "other"] {
        create_topic(&mut admin, topic, 1, &[]);
    }
    let response = create_acls(
        &mut admin,
        vec![
            acl(TOPIC, "orders", LITERAL, "User:alice", WRITE, ALLOW),
            acl(TOPIC, "orders", LITERAL, "User:alice", READ, ALLOW),
            acl(GROUP, "g1", LITERAL, "User:alice", READ, ALLOW),
            acl(TOPIC, "*", LITERAL, "User:alice", DESCRIBE, ALLOW),
            acl(TOPIC, "secret", PREFIXED, "User:alice", ALL, DENY),
        ],
    );
    assert!(
        response.results.iter().all(|r| r.error_code == 0),
        "{response:?}"
    );
    admin
}

#[test]
fn given_acls_when_alice_produces_and_fetches_should_get_exactly_what_is_allowed() {
    let cluster = start();
    let mut admin = set_up(&cluster);
    let mut alice = login(cluster.sasl, "alice", "alice-secret");

    assert_eq!(produce(&mut alice, "orders", 0, batch("a", 2, 1_000)).0, 0);
    assert_eq!(
        produce(&mut alice, "other", 0, batch("a", 1, 1_000)).0,
        29,
        "no WRITE on other"
    );
    assert_eq!(
        produce(&mut alice, "secret-1", 0, batch("a", 1, 1_000)).0,
        29,
        "prefixed DENY beats the wildcard DESCRIBE and gives no WRITE"
    );
    let (error, high_watermark, records) = fetch(&mut alice, "orders", 0, 0);
    assert_eq!((error, high_watermark), (0, 2));
    assert_eq!(decode_values(&records).len(), 2);
    assert_eq!(fetch(&mut alice, "other", 0, 0).0, 29, "no READ on other");

    // A mixed fetch answers each topic on its own.
    let mut mixed = fetch_request("orders", 0, 0, 0, 0);
    mixed
        .topics
        .extend(fetch_request("other", 0, 0, 0, 0).topics);
    let response: FetchResponse = alice.call(ApiKey::Fetch, 11, &mixed);
    let codes: Vec<(String, i16)> = response
        .responses
        .iter()
        .map(|t| (t.topic.to_string(), t.partitions[0].error_code))
        .collect();
    assert!(codes.contains(&("orders".to_string(), 0)), "{codes:?}");
    assert!(codes.contains(&("other".to_string(), 29)), "{codes:?}");

    // Bob has no ACL at all: denied everywhere (allow.everyone.if.no.acl.found is off).
    let mut bob = login(cluster.sasl, "bob", "bob-secret");
    assert_eq!(produce(&mut bob, "orders", 0, batch("b", 1, 1_000)).0, 29);
    // The admin (super user) can still do everything.
    assert_eq!(
        produce(&mut admin, "secret-1", 0, batch("x", 1, 1_000)).0,
        0
    );
    assert!(
        cluster.broker.log().contains("authorization denied"),
        "denials are logged"
    );
}

#[test]
fn given_acls_when_alice_asks_for_metadata_should_hide_what_she_cannot_describe() {
    let cluster = start();
    let _admin = set_up(&cluster);
    let mut alice = login(cluster.sasl, "alice", "alice-secret");

    let all = metadata(&mut alice, None);
    let mut names: Vec<String> = all
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
        .collect();
    names.sort();
    assert_eq!(names, ["orders", "other"], "secret-1 is hidden");

    let named = metadata(&mut alice, Some(&["secret-1", "orders", "brand-new"]));
    let code = |name: &str| {
        named
            .topics
            .iter()
            .find(|t| t.name.as_deref().map(|n| n.as_str()) == Some(name))
            .map(|t| t.error_code)
    };
    assert_eq!(code("secret-1"), Some(29));
    assert_eq!(code("orders"), Some(0));
    assert_eq!(code("brand-new"), Some(29), "auto-create needs CREATE");
    let mut admin = cluster.broker.connect();
    let check = metadata(&mut admin, Some(&["brand-new"]));
    // The admin's own request may auto-create it; alice's must not have.
    assert_eq!(check.topics.len(), 1);

    let mut bob = login(cluster.sasl, "bob", "bob-secret");
    assert!(metadata(&mut bob, None).topics.is_empty());

    // KIP-430: the operations alice may perform on `orders` (READ, WRITE, DESCRIBE).
    let with_operations: MetadataResponse = alice.call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(topic_name("orders")))
            ]))
            .with_include_topic_authorized_operations(true),
    );
    assert_eq!(
        with_operations.topics[0].topic_authorized_operations,
        (1 << READ) | (1 << WRITE) | (1 << DESCRIBE)
    );
}

#[test]
fn given_acls_when_alice_uses_groups_and_admin_apis_should_get_group_and_cluster_errors() {
    let cluster = start();
    let _admin = set_up(&cluster);
    let mut alice = login(cluster.sasl, "alice", "alice-secret");

    let coordinator: FindCoordinatorResponse = alice.call(
        ApiKey::FindCoordinator,
        2,
        &FindCoordinatorRequest::default().with_key(s("g2")),
    );
    assert_eq!(coordinator.error_code, 30, "no DESCRIBE on group g2");
    let join = JoinGroupRequest::default()
        .with_group_id(GroupId(s("g2")))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(s("consumer"));
    let response: JoinGroupResponse = alice.call(ApiKey::JoinGroup, 5, &join);
    assert_eq!(response.error_code, 30);
    let coordinator: FindCoordinatorResponse = alice.call(
        ApiKey::FindCoordinator,
        2,
        &FindCoordinatorRequest::default().with_key(s("g1")),
    );
    assert_eq!(coordinator.error_code, 0, "READ on g1 implies DESCRIBE");

    // KIP-848: every subscribed topic needs DESCRIBE.
    let heartbeat = |topics: &[&str]| {
        ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(s("g1")))
            .with_member_id(s(""))
            .with_member_epoch(0)
            .with_rebalance_timeout_ms(30_000)
            .with_subscribed_topic_names(Some(topics.iter().map(|t| topic_name(t)).collect()))
            .with_topic_partitions(Some(vec![]))
    };
    let refused: ConsumerGroupHeartbeatResponse = alice.call(
        ApiKey::ConsumerGroupHeartbeat,
        0,
        &heartbeat(&["orders", "secret-1"]),
    );
    assert_eq!(refused.error_code, 29);
    assert!(refused.error_message.unwrap().contains("secret-1"));
    let joined: ConsumerGroupHeartbeatResponse =
        alice.call(ApiKey::ConsumerGroupHeartbeat, 0, &heartbeat(&["orders"]));
    assert!(
        joined.error_code != 29 && joined.error_code != 30,
        "{joined:?}"
    );

    let create: CreateTopicsResponse = alice.call(
        ApiKey::CreateTopics,
        7,
        &CreateTopicsRequest::default().with_topics(vec![
            create_topics_request::CreatableTopic::default()
                .with_name(topic_name("alices-own"))
                .with_num_partitions(1)
                .with_replication_factor(-1),
        ]),
    );
    assert_eq!(create.topics[0].error_code, 29);
    // Kafka's AdminClient needs DescribeCluster to reach any broker; as in Kafka it answers
    // without DESCRIBE on the cluster, naming no cluster operations.
    let cluster_info: DescribeClusterResponse = alice.call(
        ApiKey::DescribeCluster,
        0,
        &DescribeClusterRequest::default().with_include_cluster_authorized_operations(true),
    );
    assert_eq!(cluster_info.error_code, 0);
    assert_eq!(cluster_info.brokers.len(), 1);
    assert_eq!(cluster_info.cluster_authorized_operations, 0);
    assert_eq!(describe_all(&mut alice).error_code, 31);
    let denied = create_acls(
        &mut alice,
        vec![acl(TOPIC, "*", LITERAL, "User:alice", ALL, ALLOW)],
    );
    assert_eq!(
        denied.results[0].error_code, 31,
        "alice cannot grant herself"
    );
    let idempotent: InitProducerIdResponse = alice.call(
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000),
    );
    assert_eq!(
        idempotent.error_code, 0,
        "WRITE on a topic allows idempotence"
    );
    let mut bob = login(cluster.sasl, "bob", "bob-secret");
    let idempotent: InitProducerIdResponse = bob.call(
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000),
    );
    assert_eq!(idempotent.error_code, 31);
}

#[test]
fn given_acl_admin_when_describing_deleting_and_restarting_should_keep_the_log_truth() {
    let temp = tempfile::tempdir().unwrap();
    let (plain, sasl) = (free_port(), free_port());
    let data = temp.path().join("data");
    let mut cluster = start_with(temp, plain, sasl, &[]);
    let mut admin = set_up(&cluster);

    let described = describe_all(&mut admin);
    assert_eq!(described.error_code, 0);
    let count: usize = described.resources.iter().map(|r| r.acls.len()).sum();
    assert_eq!(count, 5);
    // Creating an existing binding again is a success that changes nothing.
    let again = create_acls(
        &mut admin,
        vec![acl(TOPIC, "orders", LITERAL, "User:alice", WRITE, ALLOW)],
    );
    assert_eq!(again.results[0].error_code, 0);
    let count: usize = describe_all(&mut admin)
        .resources
        .iter()
        .map(|r| r.acls.len())
        .sum();
    assert_eq!(count, 5);

    // A MATCH filter finds the literal and wildcard bindings that apply to `orders`.
    let matching: DescribeAclsResponse = admin.call(
        ApiKey::DescribeAcls,
        2,
        &DescribeAclsRequest::default()
            .with_resource_type_filter(TOPIC)
            .with_resource_name_filter(Some(s("orders")))
            .with_pattern_type_filter(2)
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_operation(1)
            .with_permission_type(1),
    );
    let names: Vec<String> = matching
        .resources
        .iter()
        .map(|r| r.resource_name.to_string())
        .collect();
    assert_eq!(names, ["*", "orders"], "{matching:?}");

    // Invalid bindings are refused one by one with INVALID_REQUEST and a message.
    let invalid = create_acls(
        &mut admin,
        vec![
            acl(TOPIC, "t", 2, "User:alice", READ, ALLOW),
            acl(TOPIC, "t", LITERAL, "alice", READ, ALLOW),
            acl(
                CLUSTER,
                "not-the-cluster",
                LITERAL,
                "User:alice",
                READ,
                ALLOW,
            ),
            acl(TOPIC, "t", LITERAL, "User:alice", READ, ALLOW),
        ],
    );
    let codes: Vec<i16> = invalid.results.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, [42, 42, 42, 0]);
    assert!(invalid.results[1]
        .error_message
        .as_ref()
        .unwrap()
        .contains("principal"));

    // Delete alice's WRITE on orders: her produce is refused from then on.
    let deleted: DeleteAclsResponse = admin.call(
        ApiKey::DeleteAcls,
        3,
        &DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()
            .with_resource_type_filter(TOPIC)
            .with_resource_name_filter(Some(s("orders")))
            .with_pattern_type_filter(LITERAL)
            .with_principal_filter(Some(s("User:alice")))
            .with_host_filter(None)
            .with_operation(WRITE)
            .with_permission_type(ALLOW)]),
    );
    assert_eq!(deleted.filter_results[0].error_code, 0);
    assert_eq!(deleted.filter_results[0].matching_acls.len(), 1);
    let mut alice = login(cluster.sasl, "alice", "alice-secret");
    assert_eq!(produce(&mut alice, "orders", 0, batch("a", 1, 1_000)).0, 29);
    assert_eq!(
        fetch(&mut alice, "orders", 0, 0).0,
        0,
        "READ is still there"
    );

    // The metadata log is the truth: a restart keeps exactly the remaining bindings.
    drop(alice);
    drop(admin);
    cluster.broker.stop();
    let listeners =
        format!("listeners=PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl}");
    cluster.broker = TestBroker::start_in(
        &data,
        plain,
        &[
            listeners.as_str(),
            "authorizer.class.name=strom",
            "super.users=User:ANONYMOUS",
        ],
    );
    let mut admin = cluster.broker.connect();
    let count: usize = describe_all(&mut admin)
        .resources
        .iter()
        .map(|r| r.acls.len())
        .sum();
    assert_eq!(
        count, 5,
        "4 left from set-up + the valid one from the mixed request"
    );
    let mut alice = login(cluster.sasl, "alice", "alice-secret");
    assert_eq!(produce(&mut alice, "orders", 0, batch("a", 1, 1_000)).0, 29);
    assert_eq!(fetch(&mut alice, "orders", 0, 0).0, 0);
}

#[test]
fn given_authorizer_off_when_anyone_asks_should_allow_and_acl_apis_still_work() {
    let broker = TestBroker::start(&[]);
    let mut conn = broker.connect();
    create_topic(&mut conn, "t", 1, &[]);
    let created = create_acls(
        &mut conn,
        vec![acl(TOPIC, "t", LITERAL, "User:*", ALL, DENY)],
    );
    assert_eq!(created.results[0].error_code, 0);
    // Stored, but nothing is enforced without authorizer.class.name.
    assert_eq!(produce(&mut conn, "t", 0, batch("v", 1, 1_000)).0, 0);
}

#[test]
fn given_truncated_acl_requests_should_close_only_that_connection() {
    let cluster = start();
    let mut admin = set_up(&cluster);
    let bodies: Vec<(ApiKey, Vec<u8>)> = {
        use kafka_protocol::protocol::Encodable;
        let mut create = bytes::BytesMut::new();
        CreateAclsRequest::default()
            .with_creations(vec![acl(TOPIC, "orders", LITERAL, "User:x", READ, ALLOW)])
            .encode(&mut create, 1)
            .unwrap();
        let mut delete = bytes::BytesMut::new();
        DeleteAclsRequest::default()
            .with_filters(vec![
                DeleteAclsFilter::default().with_resource_name_filter(Some(s("orders")))
            ])
            .encode(&mut delete, 1)
            .unwrap();
        let mut describe = bytes::BytesMut::new();
        DescribeAclsRequest::default()
            .with_resource_name_filter(Some(s("orders")))
            .encode(&mut describe, 1)
            .unwrap();
        vec![
            (ApiKey::CreateAcls, create.to_vec()),
            (ApiKey::DeleteAcls, delete.to_vec()),
            (ApiKey::DescribeAcls, describe.to_vec()),
        ]
    };
    for (api_key, body) in bodies {
        let mut conn = cluster.broker.connect();
        let truncated = &body[..body.len() - 3];
        let mut frame = Vec::new();
        let header_len = 2 + 2 + 4 + 2;
        frame.extend_from_slice(&((header_len + truncated.len()) as i32).to_be_bytes());
        frame.extend_from_slice(&(api_key as i16).to_be_bytes());
        frame.extend_from_slice(&1i16.to_be_bytes());
        frame.extend_from_slice(&7i32.to_be_bytes());
        frame.extend_from_slice(&(-1i16).to_be_bytes());
        frame.extend_from_slice(truncated);
        conn.send_raw(&frame).unwrap();
        assert!(conn.is_closed_by_broker(), "{api_key:?}");
    }
    // Everyone else is still served and nothing was changed.
    assert_eq!(
        describe_all(&mut admin)
            .resources
            .iter()
            .map(|r| r.acls.len())
            .sum::<usize>(),
        5
    );
}
