//! Client quotas (placeholder until the quota manager lands).

use crate::config::SecuritySettings;

pub struct QuotaManager {}

impl QuotaManager {
    pub fn new(_settings: &SecuritySettings) -> Self {
        QuotaManager {}
    }
}
