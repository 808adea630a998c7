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
    /// One past the last offset retention deleted from the remote tier (0: none), so a
    /// deleted segment still counts as copied and is never copied again.
    #[serde(default)]
    pub deleted_below: i64,
}

impl Default for PartitionManifest {
    fn default() -> Self {
        PartitionManifest {
            version: 1,
            leader_epoch: -1,
            segments: Vec::new(),
            deleted_below: 0,
        }
    }
}

impl PartitionManifest {
    fn finished(&self) -> impl Iterator<Item = &RemoteSegment> {
        self.segments
            .iter()
            .filter(|segment| segment.state == SegmentState::CopySegmentFinished)
    }

    /// One past the last offset copied (0 when nothing is), where the next copy starts;
    /// segments retention deleted count as copied.
    pub fn copied_below(&self) -> i64 {
        self.finished()
            .map(|segment| segment.end_offset + 1)
            .max()
            .unwrap_or(0)
            .max(self.deleted_below)
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

    /// Total retention on the remote tier, oldest segment first (Kafka's RemoteLogManager):
    /// the finished segments to delete because their newest record is older than
    /// `retention_ms`, then while the partition's size (remote segments plus
    /// `local_only_bytes`, the local data not copied yet) exceeds `retention_bytes` by at
    /// least the next segment. -1 turns a limit off; a segment without timestamps (-1) is
    /// never old. Stops at the first segment kept, so the remote log stays contiguous.
    pub fn retention_breaches(
        &self,
        now_ms: i64,
        retention_ms: i64,
        retention_bytes: i64,
        local_only_bytes: u64,
    ) -> Vec<&RemoteSegment> {
        let mut oldest_first: Vec<&RemoteSegment> = self.finished().collect();
        oldest_first.sort_by_key(|segment| segment.base_offset);
        let mut doomed = 0usize;
        if retention_ms >= 0 {
            let cutoff_ms = now_ms.saturating_sub(retention_ms);
            doomed = oldest_first
                .iter()
                .take_while(|segment| {
                    segment.max_timestamp_ms >= 0 && segment.max_timestamp_ms < cutoff_ms
                })
                .count();
        }
        if retention_bytes >= 0 {
            let remaining: u64 = oldest_first[doomed..]
                .iter()
                .map(|segment| segment.size_bytes)
                .sum();
            let mut excess = (remaining + local_only_bytes) as i64 - retention_bytes;
            for segment in &oldest_first[doomed..] {
                if excess < segment.size_bytes as i64 {
                    break;
                }
                excess -= segment.size_bytes as i64;
                doomed += 1;
            }
        }
        oldest_first.truncate(doomed);
        oldest_first
    }

    /// The finished segment holding `offset`, or the first one after it.
    pub fn segment_for(&self, offset: i64) -> Option<&RemoteSegment> {
        self.finished_from(offset).into_iter().next()
    }

    /// The finished segments holding `offset` or later ones, oldest first.
    pub fn finished_from(&self, offset: i64) -> Vec<&RemoteSegment> {
        let mut segments: Vec<&RemoteSegment> = self
            .finished()
            .filter(|segment| segment.end_offset >= offset)
            .collect();
        segments.sort_by_key(|segment| segment.base_offset);
        segments
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

    fn timed(base: i64, end: i64, max_timestamp_ms: i64) -> RemoteSegment {
        RemoteSegment {
            max_timestamp_ms,
            ..segment(base, end, SegmentState::CopySegmentFinished)
        }
    }

    fn bases(segments: Vec<&RemoteSegment>) -> Vec<i64> {
        segments.iter().map(|segment| segment.base_offset).collect()
    }

    #[test]
    fn given_retention_limits_when_breached_should_delete_the_oldest_segments_only() {
        let manifest = PartitionManifest {
            version: 1,
            leader_epoch: 0,
            deleted_below: 0,
            // 100 bytes each; the newest record of each at 1_000 * its index.
            segments: vec![
                timed(20, 29, 3_000),
                timed(0, 9, 1_000),
                timed(10, 19, 2_000),
                segment(30, 39, SegmentState::CopySegmentStarted),
            ],
        };
        // By time: older than 2_500 at now = 5_000 with 2_500 kept.
        assert_eq!(
            bases(manifest.retention_breaches(5_000, 2_500, -1, 0)),
            [0, 10]
        );
        // By size: 300 remote + 50 local, 150 allowed: two whole segments go, not three.
        assert_eq!(
            bases(manifest.retention_breaches(5_000, -1, 150, 50)),
            [0, 10]
        );
        // Exactly at the limit: nothing.
        assert!(manifest.retention_breaches(5_000, -1, 350, 50).is_empty());
        // Both: time takes the first, size the next.
        assert_eq!(
            bases(manifest.retention_breaches(1_500, 0, 100, 0)),
            [0, 10]
        );
        // Limits off, and a segment without timestamps is never old.
        assert!(manifest.retention_breaches(5_000, -1, -1, 0).is_empty());
        let untimed = PartitionManifest {
            segments: vec![timed(0, 9, -1), timed(10, 19, 1_000)],
            ..manifest.clone()
        };
        assert!(untimed.retention_breaches(5_000, 0, -1, 0).is_empty());
    }

    #[test]
    fn given_finished_and_started_segments_when_asked_should_count_only_finished_ones() {
        let manifest = PartitionManifest {
            version: 1,
            leader_epoch: 3,
            deleted_below: 0,
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
