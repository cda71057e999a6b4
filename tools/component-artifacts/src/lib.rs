//! Paths of the components built for the tests, one constant per component
//! crate in `components/` or `components/probes/` (e.g. `STATUS`, `HELLO`,
//! `MISBEHAVE`, `KV_PROBE`).
include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
