//! Paths of the components built for the tests, one constant per component
//! crate in `components/` (e.g. `STATUS`, `HELLO`, `MISBEHAVE`).
include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
