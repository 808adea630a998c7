//! The schema registry's REST API (Confluent's) against the real binary, over loopback
//! HTTP: register, lookup, versions, ids, config, modes, soft and permanent delete, kill -9
//! and restart, and malformed requests answered with Confluent's error codes.

mod broker_support;
mod http_support;
mod registry_support;

use http_support::{parse_response, raw_exchange, request};
use registry_support::*;
use serde_json::{json, Value};

fn user_v1() -> String {
    avro_record("User", &[json!({"name": "name", "type": "string"})])
}

/// v1 plus a field with a default: backward compatible.
fn user_v2() -> String {
    avro_record(
        "User",
        &[
            json!({"name": "name", "type": "string"}),
            json!({"name": "age", "type": "int", "default": 0}),
        ],
    )
}

#[test]
fn given_schemas_when_registered_should_serve_them_by_subject_version_and_id() {
    let registry = RegistryBroker::start();
    assert_eq!(registry.ok("GET", "/subjects", None), json!([]));
    assert_eq!(
        registry.ok("GET", "/schemas/types", None),
        json!(["JSON", "PROTOBUF", "AVRO"])
    );

    let id1 = registry.register("users-value", &user_v1(), None);
    // The same schema again: the same id, no new version.
    assert_eq!(registry.register("users-value", &user_v1(), None), id1);
    // The same schema under another subject: the same id.
    assert_eq!(registry.register("audit-value", &user_v1(), None), id1);
    let id2 = registry.register("users-value", &user_v2(), None);
    assert_ne!(id1, id2);

    assert_eq!(
        registry.ok("GET", "/subjects", None),
        json!(["audit-value", "users-value"])
    );
    assert_eq!(
        registry.ok("GET", "/subjects/users-value/versions", None),
        json!([1, 2])
    );
    let latest = registry.ok("GET", "/subjects/users-value/versions/latest", None);
    assert_eq!(latest["subject"], "users-value");
    assert_eq!(latest["version"], 2);
    assert_eq!(latest["id"], id2);
    assert!(
        latest.get("schemaType").is_none(),
        "AVRO is left out: {latest}"
    );
    let first = registry.ok("GET", "/subjects/users-value/versions/1", None);
    assert_eq!(first["id"], id1);
    let text = registry.call("GET", "/subjects/users-value/versions/1/schema", None);
    assert_eq!(text.status, 200);
    let parsed: Value = serde_json::from_slice(&text.body).expect("the schema's JSON");
    assert_eq!(parsed["name"], "User");

    // Lookup by schema.
    let found = registry.ok(
        "POST",
        "/subjects/users-value",
        Some(&json!({"schema": user_v2()})),
    );
    assert_eq!(
        (found["version"].clone(), found["id"].clone()),
        (json!(2), json!(id2))
    );
    let unknown = avro_record("Other", &[json!({"name": "x", "type": "long"})]);
    registry.fails(
        "POST",
        "/subjects/users-value",
        Some(&json!({"schema": unknown})),
        404,
        40403,
    );

    // By id.
    let by_id = registry.ok("GET", &format!("/schemas/ids/{id1}"), None);
    let schema: Value = serde_json::from_str(by_id["schema"].as_str().unwrap()).unwrap();
    assert_eq!(schema["fields"][0]["name"], "name");
    let raw = registry.call("GET", &format!("/schemas/ids/{id1}/schema"), None);
    assert_eq!(raw.status, 200);
    assert_eq!(
        registry.ok("GET", &format!("/schemas/ids/{id1}/subjects"), None),
        json!(["audit-value", "users-value"])
    );
    assert_eq!(
        registry.ok("GET", &format!("/schemas/ids/{id1}/versions"), None),
        json!([{"subject": "audit-value", "version": 1}, {"subject": "users-value", "version": 1}])
    );
    registry.fails("GET", "/schemas/ids/999", None, 404, 40403);

    let all = registry.ok("GET", "/schemas", None);
    assert_eq!(all.as_array().unwrap().len(), 3, "{all}");
    let latest = registry.ok("GET", "/schemas?subjectPrefix=users&latestOnly=true", None);
    assert_eq!(latest.as_array().unwrap().len(), 1, "{latest}");
    assert_eq!(latest[0]["id"], id2);
}

#[test]
fn given_compatibility_levels_when_set_should_gate_registrations_and_answer_checks() {
    let registry = RegistryBroker::start();
    assert_eq!(
        registry.ok("GET", "/config", None),
        json!({"compatibilityLevel": "BACKWARD"})
    );
    registry.register("orders-value", &user_v1(), None);
    // A field whose type changes: incompatible under BACKWARD.
    let changed = avro_record("User", &[json!({"name": "name", "type": "int"})]);
    let check = registry.ok(
        "POST",
        "/compatibility/subjects/orders-value/versions/latest?verbose=true",
        Some(&json!({"schema": changed})),
    );
    assert_eq!(check["is_compatible"], false, "{check}");
    assert!(!check["messages"].as_array().unwrap().is_empty(), "{check}");
    let check = registry.ok(
        "POST",
        "/compatibility/subjects/orders-value/versions/1",
        Some(&json!({"schema": user_v2()})),
    );
    assert_eq!(check, json!({"is_compatible": true}));
    registry.fails(
        "POST",
        "/subjects/orders-value/versions",
        Some(&json!({"schema": changed})),
        409,
        409,
    );

    // Subject level: NONE lets it in; the global level is untouched.
    assert_eq!(
        registry.ok(
            "PUT",
            "/config/orders-value",
            Some(&json!({"compatibility": "NONE"}))
        ),
        json!({"compatibility": "NONE"})
    );
    assert_eq!(
        registry.ok("GET", "/config/orders-value", None),
        json!({"compatibilityLevel": "NONE"})
    );
    registry.register("orders-value", &changed, None);
    registry.fails("GET", "/config/other", None, 404, 40408);
    assert_eq!(
        registry.ok("GET", "/config/other?defaultToGlobal=true", None),
        json!({"compatibilityLevel": "BACKWARD"})
    );
    assert_eq!(
        registry.ok(
            "PUT",
            "/config",
            Some(&json!({"compatibility": "FULL_TRANSITIVE"}))
        ),
        json!({"compatibility": "FULL_TRANSITIVE"})
    );
    assert_eq!(
        registry.ok("DELETE", "/config/orders-value", None),
        json!({"compatibilityLevel": "NONE"})
    );
    assert_eq!(
        registry.ok("GET", "/config/orders-value?defaultToGlobal=true", None),
        json!({"compatibilityLevel": "FULL_TRANSITIVE"})
    );
    registry.fails(
        "PUT",
        "/config",
        Some(&json!({"compatibility": "SIDEWAYS"})),
        422,
        42203,
    );
}

#[test]
fn given_modes_when_set_should_refuse_or_import_writes() {
    let registry = RegistryBroker::start();
    assert_eq!(
        registry.ok("GET", "/mode", None),
        json!({"mode": "READWRITE"})
    );
    // IMPORT into an empty registry: ids and versions are kept as given.
    assert_eq!(
        registry.ok("PUT", "/mode", Some(&json!({"mode": "IMPORT"}))),
        json!({"mode": "IMPORT"})
    );
    let imported = registry.ok(
        "POST",
        "/subjects/imported-value/versions",
        Some(&json!({"schema": user_v1(), "id": 100, "version": 7})),
    );
    assert_eq!(imported["id"], 100);
    assert_eq!(
        registry.ok("GET", "/subjects/imported-value/versions", None),
        json!([7])
    );
    assert_eq!(
        registry.ok("GET", "/schemas/ids/100", None)["schema"].is_string(),
        true
    );
    // Back to READWRITE: the next id follows the imported one; ids cannot be given.
    registry.ok("PUT", "/mode", Some(&json!({"mode": "READWRITE"})));
    assert_eq!(registry.register("fresh-value", &user_v2(), None), 101);
    registry.fails(
        "POST",
        "/subjects/fresh-value/versions",
        Some(&json!({"schema": user_v1(), "id": 5})),
        422,
        42205,
    );
    // IMPORT on a registry with subjects needs force.
    registry.fails("PUT", "/mode", Some(&json!({"mode": "IMPORT"})), 422, 42205);

    // READONLY on a subject refuses writes there only.
    registry.ok(
        "PUT",
        "/mode/fresh-value",
        Some(&json!({"mode": "READONLY"})),
    );
    assert_eq!(
        registry.ok("GET", "/mode/fresh-value", None),
        json!({"mode": "READONLY"})
    );
    registry.fails(
        "POST",
        "/subjects/fresh-value/versions",
        Some(&json!({"schema": user_v1()})),
        422,
        42205,
    );
    registry.fails("DELETE", "/subjects/fresh-value", None, 422, 42205);
    registry.register("other-value", &user_v1(), None);
    registry.fails("GET", "/mode/other-value", None, 404, 40409);
    assert_eq!(
        registry.ok("GET", "/mode/other-value?defaultToGlobal=true", None),
        json!({"mode": "READWRITE"})
    );
    registry.fails(
        "PUT",
        "/mode",
        Some(&json!({"mode": "SOMETIMES"})),
        422,
        42204,
    );
    assert_eq!(
        registry.ok("DELETE", "/mode/fresh-value", None),
        json!({"mode": "READONLY"})
    );
    registry.register("fresh-value", &user_v1(), None);
}

#[test]
fn given_versions_when_deleted_soft_then_permanent_should_follow_confluent_rules() {
    let registry = RegistryBroker::start();
    let id1 = registry.register("s-value", &user_v1(), None);
    registry.register("s-value", &user_v2(), None);

    // A version: soft, again soft (40406), then permanent.
    registry.fails(
        "DELETE",
        "/subjects/s-value/versions/1?permanent=true",
        None,
        404,
        40407,
    );
    assert_eq!(
        registry.ok("DELETE", "/subjects/s-value/versions/1", None),
        json!(1)
    );
    registry.fails("DELETE", "/subjects/s-value/versions/1", None, 404, 40406);
    assert_eq!(
        registry.ok("GET", "/subjects/s-value/versions", None),
        json!([2])
    );
    assert_eq!(
        registry.ok("GET", "/subjects/s-value/versions?deleted=true", None),
        json!([1, 2])
    );
    registry.fails("GET", "/subjects/s-value/versions/1", None, 404, 40402);
    assert_eq!(
        registry.ok("GET", "/subjects/s-value/versions/1?deleted=true", None)["id"],
        id1
    );
    assert_eq!(
        registry.ok(
            "DELETE",
            "/subjects/s-value/versions/1?permanent=true",
            None
        ),
        json!(1)
    );
    assert_eq!(
        registry.ok("GET", "/subjects/s-value/versions?deleted=true", None),
        json!([2])
    );
    registry.fails("GET", &format!("/schemas/ids/{id1}"), None, 404, 40403);

    // A subject: permanent first is refused, soft, soft again (40404), permanent.
    registry.fails(
        "DELETE",
        "/subjects/s-value?permanent=true",
        None,
        404,
        40405,
    );
    assert_eq!(registry.ok("DELETE", "/subjects/s-value", None), json!([2]));
    registry.fails("DELETE", "/subjects/s-value", None, 404, 40404);
    assert_eq!(registry.ok("GET", "/subjects", None), json!([]));
    assert_eq!(
        registry.ok("GET", "/subjects?deleted=true", None),
        json!(["s-value"])
    );
    registry.fails("GET", "/subjects/s-value/versions", None, 404, 40401);
    assert_eq!(
        registry.ok("DELETE", "/subjects/s-value?permanent=true", None),
        json!([2])
    );
    assert_eq!(
        registry.ok("GET", "/subjects?deleted=true", None),
        json!([])
    );
    registry.fails("DELETE", "/subjects/s-value", None, 404, 40401);
    // Registering again starts at version 1.
    registry.register("s-value", &user_v1(), None);
    assert_eq!(
        registry.ok("GET", "/subjects/s-value/versions", None),
        json!([1])
    );
}

#[test]
fn given_a_reference_when_registered_should_resolve_it_and_protect_its_target() {
    let registry = RegistryBroker::start();
    let address = json!({"type": "record", "name": "Address", "namespace": "shop",
        "fields": [{"name": "city", "type": "string"}]})
    .to_string();
    registry.register("address", &address, None);
    let customer = json!({"type": "record", "name": "Customer", "namespace": "shop",
        "fields": [{"name": "home", "type": "shop.Address"}]})
    .to_string();
    let body = json!({"schema": customer,
        "references": [{"name": "shop.Address", "subject": "address", "version": 1}]});
    let id = registry.ok("POST", "/subjects/customer-value/versions", Some(&body))["id"].clone();
    let by_id = registry.ok("GET", &format!("/schemas/ids/{id}"), None);
    assert_eq!(
        by_id["references"],
        json!([{"name": "shop.Address", "subject": "address", "version": 1}])
    );
    assert_eq!(
        registry.ok("GET", "/subjects/address/versions/1/referencedby", None),
        json!([id])
    );
    registry.fails("DELETE", "/subjects/address/versions/1", None, 422, 42206);
    // A reference to nothing is an invalid schema.
    let dangling = json!({"schema": customer,
        "references": [{"name": "shop.Address", "subject": "nowhere", "version": 1}]});
    registry.fails(
        "POST",
        "/subjects/other-value/versions",
        Some(&dangling),
        422,
        42201,
    );
}

#[test]
fn given_registry_state_when_broker_killed_and_restarted_should_keep_everything() {
    let mut registry = RegistryBroker::start();
    let id1 = registry.register("a-value", &user_v1(), None);
    let id2 = registry.register("a-value", &user_v2(), None);
    let id3 = registry.register(
        "b-value",
        &avro_record("B", &[json!({"name": "b", "type": "long"})]),
        None,
    );
    registry.ok(
        "PUT",
        "/config/a-value",
        Some(&json!({"compatibility": "FULL"})),
    );
    registry.ok("PUT", "/config", Some(&json!({"compatibility": "FORWARD"})));
    registry.ok("PUT", "/mode/b-value", Some(&json!({"mode": "READONLY"})));
    registry.ok("DELETE", "/subjects/a-value/versions/1", None);
    let before: Vec<Value> = snapshot(&registry);

    registry.kill_and_restart();
    assert_eq!(snapshot(&registry), before);
    assert_eq!(
        registry.ok("GET", &format!("/schemas/ids/{id3}/subjects"), None),
        json!(["b-value"])
    );
    // The same schema keeps its id; a new one takes the next id, never a used one.
    assert_eq!(registry.register("c-value", &user_v2(), None), id2);
    // user_v1 is still known (a-value version 1 is only soft-deleted): its id again.
    assert_eq!(registry.register("c-value", &user_v1(), None), id1);
    let third = avro_record(
        "User",
        &[
            json!({"name": "name", "type": "string"}),
            json!({"name": "city", "type": "string", "default": ""}),
        ],
    );
    let id4 = registry.register("d-value", &third, None);
    assert!(id4 > id3, "{id4} after {id1} {id2} {id3}");
    registry.fails(
        "POST",
        "/subjects/b-value/versions",
        Some(&json!({"schema": user_v1()})),
        422,
        42205,
    );

    registry.kill_and_restart();
    assert_eq!(
        registry.ok("GET", "/subjects/c-value/versions", None),
        json!([1, 2])
    );
}

fn snapshot(registry: &RegistryBroker) -> Vec<Value> {
    vec![
        registry.ok("GET", "/subjects?deleted=true", None),
        registry.ok("GET", "/subjects/a-value/versions?deleted=true", None),
        registry.ok("GET", "/subjects/a-value/versions", None),
        registry.ok("GET", "/subjects/a-value/versions/latest", None),
        registry.ok("GET", "/subjects/b-value/versions/1", None),
        registry.ok("GET", "/config", None),
        registry.ok("GET", "/config/a-value", None),
        registry.ok("GET", "/mode/b-value", None),
    ]
}

#[test]
fn given_malformed_requests_when_sent_should_answer_confluent_error_codes() {
    let registry = RegistryBroker::start();
    registry.register("m-value", &user_v1(), None);
    let addr = registry.registry;
    let post = |path: &str, content_type: &str, body: &[u8]| {
        request(addr, "POST", path, &[("content-type", content_type)], body)
    };

    // Bodies: not JSON, not an object, wrong field type, no schema, an invalid schema.
    let response = post("/subjects/m-value/versions", CONTENT_TYPE, b"{\"schema\": ");
    assert_error(&response, 400, 400, "truncated JSON");
    let response = post("/subjects/m-value/versions", CONTENT_TYPE, b"[1,2]");
    assert_error(&response, 422, 422, "array body");
    let response = post(
        "/subjects/m-value/versions",
        CONTENT_TYPE,
        br#"{"schema": 5}"#,
    );
    assert_error(&response, 422, 422, "schema not a string");
    let response = post("/subjects/m-value/versions", CONTENT_TYPE, b"{}");
    assert_error(&response, 422, 42201, "no schema");
    registry.fails(
        "POST",
        "/subjects/m-value/versions",
        Some(&json!({"schema": "{\"type\": \"record\", \"name\": "})),
        422,
        42201,
    );
    registry.fails(
        "POST",
        "/subjects/m-value/versions",
        Some(&json!({"schema": user_v1(), "schemaType": "XML"})),
        422,
        42201,
    );
    let response = post("/subjects/m-value/versions", "text/plain", b"{}");
    assert_error(&response, 415, 415, "text/plain");
    // The other accepted media types.
    for content_type in ["application/json", "application/octet-stream"] {
        let body = json!({"schema": user_v1()}).to_string();
        let response = post("/subjects/m-value/versions", content_type, body.as_bytes());
        assert_eq!(response.status, 200, "{content_type}: {}", response.text());
    }

    // Unknown subjects, versions and ids; bad versions.
    registry.fails("GET", "/subjects/nothing/versions", None, 404, 40401);
    registry.fails("GET", "/subjects/nothing/versions/1", None, 404, 40401);
    registry.fails("GET", "/subjects/m-value/versions/9", None, 404, 40402);
    for bad in ["0", "-2", "abc", "99999999999"] {
        registry.fails(
            "GET",
            &format!("/subjects/m-value/versions/{bad}"),
            None,
            422,
            42202,
        );
    }
    registry.fails("DELETE", "/subjects/m-value/versions/abc", None, 422, 42202);
    registry.fails(
        "POST",
        "/subjects/nothing",
        Some(&json!({"schema": user_v1()})),
        404,
        40401,
    );
    registry.fails("GET", "/schemas/ids/abc", None, 404, 40403);
    registry.fails("GET", "/no/such/route", None, 404, 404);
    registry.fails("PATCH", "/subjects", None, 405, 405);
    registry.fails("PUT", "/config", Some(&json!({})), 422, 42203);
    registry.fails(
        "PUT",
        "/mode/m-value",
        Some(&json!({"mode": 3})),
        422,
        42204,
    );

    // A body over the limit is refused from its declared length, before it is read.
    let head = format!(
        "POST /subjects/m-value/versions HTTP/1.1\r\nHost: x\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\n\r\n",
        3 * 1024 * 1024
    );
    let raw = raw_exchange(addr, head.as_bytes());
    let response = parse_response(&raw).expect("an answer");
    assert_error(&response, 413, 413, "oversized body");

    // Still serving, state intact.
    assert_eq!(
        registry.ok("GET", "/subjects/m-value/versions", None),
        json!([1])
    );
}

mod cluster_support;

/// Three nodes, each with its registry listener on its own port.
fn registry_cluster() -> (cluster_support::Cluster, Vec<std::net::SocketAddr>) {
    use cluster_support::{Cluster, Role, NODES};
    let cluster = Cluster::start_custom(
        &[Role::Combined; NODES as usize],
        &[],
        Some(Box::new(|_, ports| {
            vec![format!(
                "schema.registry.listener=127.0.0.1:{}",
                ports.extra
            )]
        })),
    );
    let addrs = (1..=NODES)
        .map(|id| {
            format!("127.0.0.1:{}", cluster.ports(id).extra)
                .parse()
                .unwrap()
        })
        .collect();
    (cluster, addrs)
}

#[test]
fn given_three_nodes_when_writing_anywhere_should_forward_to_one_writer_and_survive_its_kill() {
    use std::time::Duration;
    let wait = Duration::from_secs(40);
    let (mut cluster, addrs) = registry_cluster();
    // A write on every node: one id sequence, whichever node leads _schemas.
    let mut ids = Vec::new();
    for (index, addr) in addrs.iter().enumerate() {
        let schema = avro_record(
            &format!("R{index}"),
            &[json!({"name": "f", "type": "long"})],
        );
        let body = json!({"schema": schema});
        let path = format!("/subjects/s{index}-value/versions");
        let response = until_ok(wait, || call_at(*addr, "POST", &path, Some(&body)));
        assert_eq!(
            response.status,
            200,
            "{addr}: {}\n{}",
            response.text(),
            cluster.logs()
        );
        ids.push(response.json()["id"].as_i64().unwrap());
    }
    assert_eq!(ids, vec![1, 2, 3], "one writer gives ids out once");
    // Every node serves every schema from its replica.
    for addr in &addrs {
        for id in &ids {
            let path = format!("/schemas/ids/{id}");
            let response = until_ok(wait, || call_at(*addr, "GET", &path, None));
            assert_eq!(response.status, 200, "{addr} {path}: {}", response.text());
        }
    }

    // A fourth broker, added later, holds no replica of _schemas: it forwards reads too.
    cluster.add_broker(4);
    let fourth: std::net::SocketAddr = format!("127.0.0.1:{}", cluster.ports(4).extra)
        .parse()
        .unwrap();
    let response = until_ok(wait, || call_at(fourth, "GET", "/schemas/ids/2", None));
    assert_eq!(
        response.status,
        200,
        "{}\n{}",
        response.text(),
        cluster.logs()
    );
    assert_eq!(
        call_at(fourth, "GET", "/subjects", None).json(),
        json!(["s0-value", "s1-value", "s2-value"])
    );

    // kill -9 the writer: another node takes over with everything.
    let metadata = cluster.wait_for(|m| {
        cluster_support::partition_of(m, "_schemas", 0).is_some_and(|p| p.leader_id.0 > 0)
    });
    let leader = cluster_support::partition_of(&metadata, "_schemas", 0)
        .unwrap()
        .leader_id
        .0;
    cluster.kill(leader);
    let survivor = addrs[if leader == 1 { 1 } else { 0 }];
    let schema = avro_record("After", &[json!({"name": "f", "type": "long"})]);
    let body = json!({"schema": schema});
    let response = until_ok(wait, || {
        call_at(
            survivor,
            "POST",
            "/subjects/after-value/versions",
            Some(&body),
        )
    });
    assert_eq!(
        response.status,
        200,
        "{}\n{}",
        response.text(),
        cluster.logs()
    );
    assert_eq!(response.json()["id"], 4, "no id given twice");
    for (index, id) in ids.iter().enumerate() {
        let path = format!("/subjects/s{index}-value/versions/latest");
        let found = until_ok(wait, || call_at(survivor, "GET", &path, None));
        assert_eq!(found.json()["id"], *id, "{path}");
    }
}

#[test]
fn given_json_and_protobuf_schemas_when_registered_should_keep_their_type_and_references() {
    let registry = RegistryBroker::start();
    let json_schema =
        json!({"type": "object", "properties": {"a": {"type": "string"}}}).to_string();
    let json_id = registry.register("j-value", &json_schema, Some("JSON"));
    let answer = registry.ok("GET", "/subjects/j-value/versions/1", None);
    assert_eq!(answer["schemaType"], "JSON", "{answer}");
    assert_eq!(
        registry.ok("GET", &format!("/schemas/ids/{json_id}"), None)["schemaType"],
        "JSON"
    );
    // Looked up as JSON it is found; read as Avro it is no valid schema.
    let lookup = json!({"schema": json_schema, "schemaType": "JSON"});
    assert_eq!(
        registry.ok("POST", "/subjects/j-value", Some(&lookup))["id"],
        json_id
    );
    let as_avro = json!({"schema": json_schema});
    registry.fails("POST", "/subjects/j-value", Some(&as_avro), 422, 42201);

    let common = "syntax = \"proto3\";\npackage shop;\nmessage Money { int64 cents = 1; }\n";
    registry.register("common.proto", common, Some("PROTOBUF"));
    let order = "syntax = \"proto3\";\npackage shop;\nimport \"common.proto\";\nmessage Order { string id = 1; Money total = 2; }\n";
    let body = json!({"schema": order, "schemaType": "PROTOBUF",
        "references": [{"name": "common.proto", "subject": "common.proto", "version": 1}]});
    let order_id =
        registry.ok("POST", "/subjects/orders-value/versions", Some(&body))["id"].clone();
    let by_id = registry.ok("GET", &format!("/schemas/ids/{order_id}"), None);
    assert_eq!(by_id["schemaType"], "PROTOBUF", "{by_id}");
    assert_eq!(by_id["references"][0]["subject"], "common.proto");
    // format=serialized: the base64 FileDescriptorProto, which names the message.
    let serialized = registry.ok(
        "GET",
        &format!("/schemas/ids/{order_id}?format=serialized"),
        None,
    );
    use base64::Engine as _;
    let descriptor = base64::engine::general_purpose::STANDARD
        .decode(serialized["schema"].as_str().unwrap())
        .expect("base64");
    assert!(descriptor.windows(5).any(|w| w == b"Order"), "{serialized}");
    let version = registry.ok(
        "GET",
        "/subjects/orders-value/versions/1?format=serialized",
        None,
    );
    assert_eq!(version["schema"], serialized["schema"]);
    // Looked up again (the same text, the same references): the same version.
    let found = registry.ok("POST", "/subjects/orders-value", Some(&body));
    assert_eq!(found["id"], order_id);
    registry.fails(
        "POST",
        "/subjects/bad-value/versions",
        Some(&json!({"schema": "message {", "schemaType": "PROTOBUF"})),
        422,
        42201,
    );
}

#[test]
fn given_spacing_differences_when_registered_should_be_one_schema_and_normalize_should_be_accepted()
{
    let registry = RegistryBroker::start();
    let id = registry.register("n-value", &user_v1(), None);
    let spaced = user_v1().replace(',', " ,\n  ").replace(':', " : ");
    assert_eq!(registry.register("n-value", &spaced, None), id);
    assert_eq!(
        registry.ok("GET", "/subjects/n-value/versions", None),
        json!([1])
    );
    let normalized = registry.ok(
        "POST",
        "/subjects/n-value/versions?normalize=true",
        Some(&json!({"schema": spaced})),
    );
    assert!(normalized["id"].is_i64(), "{normalized}");
    let found = registry.ok(
        "POST",
        "/subjects/n-value?normalize=true",
        Some(&json!({"schema": user_v1()})),
    );
    assert_eq!(found["subject"], "n-value");
}
