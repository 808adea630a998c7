//! Remote log metadata: which segments of a partition are in the object store, with their
//! offsets, leader epochs and copy/delete state (Kafka's RemoteLogSegmentMetadata states),
//! kept as one JSON manifest object per partition next to its segments.

use serde::{Deserialize, Serialize};

/// Kafka's `RemoteLogSegmentState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SegmentState {
    CopySegmentStarted,
    CopySegmentFinished,
    DeleteSegmentStarted,
    DeleteSegmentFinished,
}

/// One segment in the remote tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteSegment {
    /// Names the segment's objects, so a re-copy by another leader never overwrites one.
    pub segment_id: String,
    pub base_offset: i64,
    /// Last offset in the segment (inclusive).
    pub end_offset: i64,
    pub size_bytes: u64,
    pub max_timestamp_ms: i64,
    /// Leader epoch of the leader that copied it.
    pub leader_epoch: i32,
    pub state: SegmentState,
    /// Whether a producer snapshot was copied with it.
    pub has_producer_snapshot: bool,
}

/// The remote log metadata of one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionManifest {
    pub version: u32,
    /// The highest leader epoch that wrote this manifest; a leader of an older epoch is
    /// fenced and copies nothing.
    pub leader_epoch: i32,
    /// Oldest first; offsets never overlap among finished segments.
    pub segments: Vec<RemoteSegment>,
}

impl Default for PartitionManifest {
    fn default() -> Self {
        PartitionManifest {
            version: 1,
            leader_epoch: -1,
            segments: Vec::new(),
        }
    }
}

impl PartitionManifest {
    fn finished(&self) -> impl Iterator<Item = &RemoteSegment> {
        self.segments
            .iter()
            .filter(|segment| segment.state == SegmentState::CopySegmentFinished)
    }

    /// One past the last offset copied (0 when nothing is), where the next copy starts.
    pub fn copied_below(&self) -> i64 {
        self.finished()
            .map(|segment| segment.end_offset + 1)
            .max()
            .unwrap_or(0)
    }

    /// First offset held remotely, if any segment is.
    pub fn log_start_offset(&self) -> Option<i64> {
        self.finished().map(|segment| segment.base_offset).min()
    }

    /// Remote bytes (finished segments).
    pub fn size_bytes(&self) -> u64 {
        self.finished().map(|segment| segment.size_bytes).sum()
    }

    pub fn finished_count(&self) -> usize {
        self.finished().count()
    }

    /// The finished segment holding `offset`, or the first one after it.
    pub fn segment_for(&self, offset: i64) -> Option<&RemoteSegment> {
        self.finished()
            .filter(|segment| segment.end_offset >= offset)
            .min_by_key(|segment| segment.base_offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(base: i64, end: i64, state: SegmentState) -> RemoteSegment {
        RemoteSegment {
            segment_id: format!("s{base}"),
            base_offset: base,
            end_offset: end,
            size_bytes: 100,
            max_timestamp_ms: -1,
            leader_epoch: 0,
            state,
            has_producer_snapshot: false,
        }
    }

    #[test]
    fn given_finished_and_started_segments_when_asked_should_count_only_finished_ones() {
        let manifest = PartitionManifest {
            version: 1,
            leader_epoch: 3,
            segments: vec![
                segment(0, 9, SegmentState::CopySegmentFinished),
                segment(10, 19, SegmentState::CopySegmentFinished),
                segment(20, 29, SegmentState::CopySegmentStarted),
            ],
        };
        assert_eq!(manifest.copied_below(), 20);
        assert_eq!(manifest.log_start_offset(), Some(0));
        assert_eq!(manifest.segment_for(12).map(|s| s.base_offset), Some(10));
        assert_eq!(manifest.segment_for(25), None);
        let text = serde_json::to_string(&manifest).unwrap();
        assert!(text.contains("COPY_SEGMENT_STARTED"), "{text}");
        assert_eq!(
            serde_json::from_str::<PartitionManifest>(&text).unwrap(),
            manifest
        );
    }
}
