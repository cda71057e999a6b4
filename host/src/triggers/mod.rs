//! Triggers: what makes the host run a component. Today HTTP; queue and
//! timer triggers follow the same pattern (an event in, a fresh instance,
//! the component's export called under its limits).

pub mod http;
