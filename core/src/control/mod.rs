//! Operating a site: access tokens and roles of the runner's API, and the state the API
//! shows (cameras, presence, alerts, maps).

pub mod api;
pub mod auth;
pub mod site;
