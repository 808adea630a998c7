//! `strom-controller` (being written).
