//! `strom-broker` (being written).
