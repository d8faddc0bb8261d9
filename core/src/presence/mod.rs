//! Presence: the group state machine (who is here, one alert per absence, camera health; its
//! types are re-exported here), the group shared between nodes ([`sync`]), zones, unknown
//! ids, activity.

pub mod activity;
mod group;
pub mod sync;
pub mod unknown;
pub mod zones;

pub use group::*;
