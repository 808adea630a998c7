//! `strom-client` (being written).
