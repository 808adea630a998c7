//! Every refusal the authoriser builds encodes at every version the broker serves: a field
//! set that a version cannot carry would make the encoder fail and close the client's
//! connection instead of answering `*_AUTHORIZATION_FAILED`.

use std::sync::Arc;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use strom_controller::MetadataImage;
use strom_protocol::versions::supported_range;

use super::apis;
use super::{Authorizer, Check};
use crate::config::SecuritySettings;

fn denying() -> Authorizer {
    Authorizer::new(&SecuritySettings {
        authorizer_enabled: true,
        ..SecuritySettings::default()
    })
}

fn check(authorizer: &Authorizer) -> Check<'_> {
    Check::new(
        authorizer,
        || Arc::new(MetadataImage::empty()),
        "User:mallory",
        "10.1.2.3:5555".parse().unwrap(),
    )
}

fn encodes_at_every_version<T: Encodable>(api_key: ApiKey, response: &T) {
    let (min, max) = supported_range(api_key).expect("served");
    for version in min..=max {
        crate::response::encode_frame(api_key, version, 1, response)
            .unwrap_or_else(|e| panic!("{api_key:?} v{version}: {e}"));
    }
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn topic(text: &str) -> TopicName {
    TopicName(s(text))
}

#[test]
fn given_everything_denied_when_refusals_are_encoded_should_fit_every_served_version() {
    let authorizer = denying();
    let check = check(&authorizer);
    assert!(check.active());

    let mut produce = ProduceRequest::default().with_topic_data(vec![
        produce_request::TopicProduceData::default()
            .with_name(topic("t"))
            .with_partition_data(vec![produce_request::PartitionProduceData::default()]),
    ]);
    let denied = apis::produce(&check, &mut produce);
    assert_eq!(denied.len(), 1);
    encodes_at_every_version(
        ApiKey::Produce,
        &ProduceResponse::default().with_responses(denied),
    );

    let mut fetch = FetchRequest::default().with_topics(vec![fetch_request::FetchTopic::default()
        .with_topic(topic("t"))
        .with_partitions(vec![fetch_request::FetchPartition::default()])]);
    let apis::FetchDenial::Topics(denied) = apis::fetch(&check, &mut fetch) else {
        panic!("a consumer fetch is refused per topic")
    };
    encodes_at_every_version(
        ApiKey::Fetch,
        &FetchResponse::default().with_responses(denied),
    );

    let mut metadata = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(topic("t"))),
    ]));
    let denial = apis::metadata(&check, &mut metadata, 12, true);
    let mut response = MetadataResponse::default();
    apis::metadata_answer(&check, denial, &mut response);
    assert_eq!(response.topics.len(), 1);
    encodes_at_every_version(ApiKey::Metadata, &response);

    let mut list = ListOffsetsRequest::default().with_topics(vec![
        list_offsets_request::ListOffsetsTopic::default()
            .with_name(topic("t"))
            .with_partitions(vec![list_offsets_request::ListOffsetsPartition::default()]),
    ]);
    let denied = apis::list_offsets(&check, &mut list);
    encodes_at_every_version(
        ApiKey::ListOffsets,
        &ListOffsetsResponse::default().with_topics(denied),
    );

    let mut epochs = OffsetForLeaderEpochRequest::default().with_topics(vec![
        offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
            .with_topic(topic("t"))
            .with_partitions(vec![Default::default()]),
    ]);
    let denied = apis::offset_for_leader_epoch(&check, &mut epochs);
    encodes_at_every_version(
        ApiKey::OffsetForLeaderEpoch,
        &OffsetForLeaderEpochResponse::default().with_topics(denied),
    );

    let mut create = CreateTopicsRequest::default().with_topics(vec![
        create_topics_request::CreatableTopic::default().with_name(topic("t")),
    ]);
    let denied = apis::create_topics(&check, &mut create);
    encodes_at_every_version(
        ApiKey::CreateTopics,
        &CreateTopicsResponse::default().with_topics(denied),
    );

    let mut delete = DeleteTopicsRequest::default().with_topic_names(vec![topic("t")]);
    let denied = apis::delete_topics(&check, &mut delete);
    encodes_at_every_version(
        ApiKey::DeleteTopics,
        &DeleteTopicsResponse::default().with_responses(denied),
    );

    let mut partitions = CreatePartitionsRequest::default().with_topics(vec![
        create_partitions_request::CreatePartitionsTopic::default().with_name(topic("t")),
    ]);
    let denied = apis::create_partitions(&check, &mut partitions);
    encodes_at_every_version(
        ApiKey::CreatePartitions,
        &CreatePartitionsResponse::default().with_results(denied),
    );

    let mut configs = DescribeConfigsRequest::default().with_resources(vec![
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s("t")),
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(s("1")),
    ]);
    let denied = apis::describe_configs(&check, &mut configs);
    assert_eq!(denied.len(), 2);
    encodes_at_every_version(
        ApiKey::DescribeConfigs,
        &DescribeConfigsResponse::default().with_results(denied),
    );

    // The two alter APIs: every refused resource leaves the request and is answered with
    // its own type, name and the matching *_AUTHORIZATION_FAILED code.
    let mut alter = AlterConfigsRequest::default().with_resources(vec![
        alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s("t")),
        alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(s("1")),
    ]);
    let denied = apis::alter_configs(&check, &mut alter);
    assert!(alter.resources.is_empty());
    let answered: Vec<(i8, &str, i16)> = denied
        .iter()
        .map(|r| (r.resource_type, r.resource_name.as_str(), r.error_code))
        .collect();
    assert_eq!(answered, vec![(2, "t", 29), (4, "1", 31)]);
    encodes_at_every_version(
        ApiKey::AlterConfigs,
        &AlterConfigsResponse::default().with_responses(denied),
    );
    let mut incremental = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s("t")),
    ]);
    let denied = apis::incremental_alter_configs(&check, &mut incremental);
    assert!(incremental.resources.is_empty());
    assert_eq!(denied[0].error_code, 29);
    assert_eq!(denied[0].resource_name.as_str(), "t");
    encodes_at_every_version(
        ApiKey::IncrementalAlterConfigs,
        &IncrementalAlterConfigsResponse::default().with_responses(denied),
    );

    let mut records = DeleteRecordsRequest::default().with_topics(vec![
        delete_records_request::DeleteRecordsTopic::default()
            .with_name(topic("t"))
            .with_partitions(vec![Default::default()]),
    ]);
    let denied = apis::delete_records(&check, &mut records);
    encodes_at_every_version(
        ApiKey::DeleteRecords,
        &DeleteRecordsResponse::default().with_topics(denied),
    );

    let mut commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(topic("t"))
                .with_partitions(vec![Default::default()]),
        ]);
    let Err(refused) = apis::offset_commit(&check, &mut commit) else {
        panic!("the group is refused")
    };
    encodes_at_every_version(ApiKey::OffsetCommit, &refused);

    for version in 1..=7 {
        let mut fetch_offsets = OffsetFetchRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_topics(Some(vec![
                offset_fetch_request::OffsetFetchRequestTopic::default()
                    .with_name(topic("t"))
                    .with_partition_indexes(vec![0]),
            ]));
        let Err(refused) = apis::offset_fetch(&check, &mut fetch_offsets, version) else {
            panic!("the group is refused")
        };
        crate::response::encode_frame(ApiKey::OffsetFetch, version, 1, &refused)
            .unwrap_or_else(|e| panic!("OffsetFetch v{version}: {e}"));
    }
    let mut batched = OffsetFetchRequest::default().with_groups(vec![
        offset_fetch_request::OffsetFetchRequestGroup::default().with_group_id(GroupId(s("g"))),
    ]);
    let denied = apis::offset_fetch(&check, &mut batched, 8).unwrap();
    for version in 8..=9 {
        crate::response::encode_frame(
            ApiKey::OffsetFetch,
            version,
            1,
            &OffsetFetchResponse::default().with_groups(denied.clone()),
        )
        .unwrap();
    }

    for version in 0..=3 {
        let mut find = FindCoordinatorRequest::default().with_key(s("g"));
        let (Some(code), _) = apis::find_coordinator(&check, &mut find, version) else {
            panic!("refused")
        };
        let refused = FindCoordinatorResponse::default()
            .with_error_code(code)
            .with_node_id(BrokerId(-1))
            .with_port(-1);
        crate::response::encode_frame(ApiKey::FindCoordinator, version, 1, &refused).unwrap();
    }
    let mut find = FindCoordinatorRequest::default().with_coordinator_keys(vec![s("g")]);
    let (_, denied) = apis::find_coordinator(&check, &mut find, 4);
    for version in 4..=6 {
        crate::response::encode_frame(
            ApiKey::FindCoordinator,
            version,
            1,
            &FindCoordinatorResponse::default().with_coordinators(denied.clone()),
        )
        .unwrap();
    }

    let mut groups = DescribeGroupsRequest::default().with_groups(vec![GroupId(s("g"))]);
    let denied = apis::describe_groups(&check, &mut groups);
    encodes_at_every_version(
        ApiKey::DescribeGroups,
        &DescribeGroupsResponse::default().with_groups(denied),
    );
    let mut groups = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("g"))]);
    let denied = apis::delete_groups(&check, &mut groups);
    encodes_at_every_version(
        ApiKey::DeleteGroups,
        &DeleteGroupsResponse::default().with_results(denied),
    );

    // Whole-request refusals, as the router builds them.
    encodes_at_every_version(
        ApiKey::JoinGroup,
        &JoinGroupResponse::default()
            .with_error_code(30)
            .with_generation_id(-1),
    );
    encodes_at_every_version(
        ApiKey::SyncGroup,
        &SyncGroupResponse::default().with_error_code(30),
    );
    encodes_at_every_version(
        ApiKey::Heartbeat,
        &HeartbeatResponse::default().with_error_code(30),
    );
    encodes_at_every_version(
        ApiKey::LeaveGroup,
        &LeaveGroupResponse::default().with_error_code(30),
    );
    encodes_at_every_version(
        ApiKey::InitProducerId,
        &InitProducerIdResponse::default()
            .with_error_code(31)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    );
    encodes_at_every_version(
        ApiKey::DescribeCluster,
        &DescribeClusterResponse::default().with_error_code(31),
    );
    encodes_at_every_version(
        ApiKey::DescribeLogDirs,
        &DescribeLogDirsResponse::default().with_error_code(31),
    );
    encodes_at_every_version(ApiKey::Fetch, &FetchResponse::default().with_error_code(31));
    encodes_at_every_version(
        ApiKey::OffsetDelete,
        &OffsetDeleteResponse::default().with_error_code(30),
    );
    encodes_at_every_version(
        ApiKey::DescribeAcls,
        &DescribeAclsResponse::default().with_error_code(31),
    );
    encodes_at_every_version(
        ApiKey::DescribeClientQuotas,
        &DescribeClientQuotasResponse::default()
            .with_error_code(31)
            .with_entries(None),
    );
    encodes_at_every_version(
        ApiKey::DescribeUserScramCredentials,
        &DescribeUserScramCredentialsResponse::default().with_error_code(31),
    );
    encodes_at_every_version(
        ApiKey::ConsumerGroupHeartbeat,
        &ConsumerGroupHeartbeatResponse::default().with_error_code(30),
    );
}
