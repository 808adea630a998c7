//! Brokers that leave for good (Kafka's UnregisterBroker, issue 19): the registration is
//! removed from the image, so the broker is no longer listed by Metadata or
//! DescribeCluster and may not lead, be in an ISR or receive new replicas.
//!
//! As in Kafka, unregistering does not move replicas: a broker that still hosts some
//! stays in their replica lists (under-replicated until reassigned). Moving them first is
//! the operator's job, which `strom cluster decommission` does with reassignments before it
//! unregisters. Pure, like the rest of [`Controller`].

use crate::controller::{Controller, Decision};
use crate::image::MetadataImage;
use crate::record::MetadataRecord;

impl Controller {
    /// Unregisters `broker_id`: what a controlled shutdown writes (fenced when it was not,
    /// and the `PartitionChange`s that take it out of every leadership and ISR; an ISR it
    /// alone is in keeps it, leader -1, as on a crash), then `UnregisterBroker`, in one
    /// entry. `false` (and no records) when it is not registered: Kafka's
    /// BROKER_ID_NOT_REGISTERED.
    pub fn unregister_broker(&self, image: &MetadataImage, broker_id: i32) -> Decision<bool> {
        if image.broker(broker_id).is_none() {
            return Decision {
                records: Vec::new(),
                response: false,
            };
        }
        let mut records = self.controlled_shutdown(image, broker_id).records;
        records.push(MetadataRecord::UnregisterBroker { broker_id });
        Decision {
            records,
            response: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::ids::SeededIds;

    fn image_with(records: &[MetadataRecord]) -> MetadataImage {
        let mut image = MetadataImage::empty();
        image.apply_entry(0, records).unwrap();
        image
    }

    fn broker(broker_id: i32) -> MetadataRecord {
        MetadataRecord::RegisterBroker {
            broker_id,
            host: "localhost".to_string(),
            port: 9000 + broker_id as u16,
            rack: None,
            listeners: Vec::new(),
        }
    }

    const TOPIC: Uuid = Uuid::from_u128(7);

    fn cluster(leader: i32, isr: Vec<i32>) -> MetadataImage {
        image_with(&[
            MetadataRecord::ClusterId {
                cluster_id: "abcdefghijklmnopqrstuv".to_string(),
            },
            broker(1),
            broker(2),
            broker(3),
            MetadataRecord::Topic {
                name: "orders".to_string(),
                topic_id: TOPIC,
            },
            MetadataRecord::Partition {
                topic_id: TOPIC,
                partition: 0,
                replicas: vec![1, 2, 3],
                leader,
                leader_epoch: 0,
                isr,
            },
        ])
    }

    fn controller() -> Controller {
        Controller::new(1, Box::new(SeededIds::new(1)))
    }

    #[test]
    fn given_registered_leader_when_unregistered_should_move_leadership_and_remove_it() {
        let image = cluster(2, vec![2, 1, 3]);
        let decision = controller().unregister_broker(&image, 2);
        assert!(decision.response);
        assert_eq!(
            decision.records.last(),
            Some(&MetadataRecord::UnregisterBroker { broker_id: 2 })
        );
        let mut after = image.clone();
        after.apply_entry(100, &decision.records).unwrap();
        assert!(after.broker(2).is_none());
        assert_eq!(after.broker_ids(), vec![1, 3]);
        let state = after.partition(TOPIC, 0).unwrap();
        assert_eq!(state.leader, 1);
        assert_eq!(state.isr, vec![1, 3]);
        assert_eq!(state.leader_epoch, 1);
    }

    #[test]
    fn given_unknown_broker_when_unregistered_should_refuse_without_records() {
        let image = cluster(1, vec![1, 2, 3]);
        let decision = controller().unregister_broker(&image, 9);
        assert!(!decision.response);
        assert!(decision.records.is_empty());
    }

    #[test]
    fn given_unregistered_broker_when_record_applied_twice_should_refuse_the_second() {
        let mut image = cluster(1, vec![1, 2, 3]);
        let record = MetadataRecord::UnregisterBroker { broker_id: 3 };
        image.apply(&record).unwrap();
        assert!(image.apply(&record).is_err());
        // Registering the id again brings it back, unfenced (a new broker).
        image.apply(&broker(3)).unwrap();
        assert!(image.is_broker_unfenced(3));
    }
}
