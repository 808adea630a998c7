//! `strom-storage` (being written).
