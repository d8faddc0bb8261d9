//! Delivery and I/O: the event schema and sinks, the bounded spool, Redis connections and the
//! shared gallery, secrets, file watching, worker threads.

pub mod delivery;
pub mod events;
pub mod homeassistant;
pub mod mqtt;
pub mod redis_store;
pub mod secrets;
pub mod sinks;
pub mod telegram;
pub mod watch;
pub mod worker;
