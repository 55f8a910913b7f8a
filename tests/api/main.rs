//! parley's integration tests, one binary: each test starts the real application on port 0 (see `helpers`)
//! and talks to it over real sockets, against embedded SQLite and a real PostgreSQL.

mod helpers;

mod access_control;
mod agent_tools;
mod agents;
mod bench;
mod cli;
mod config_and_process;
mod db_outage;
mod deploy_files;
mod encryption;
mod exact_words;
mod feedback_route;
mod fuzz;
mod gcs;
mod history_route;
mod metrics_routes;
mod migrations;
mod openapi;
mod persistence;
mod preemptive;
mod probes_and_pages;
mod provisioning;
mod recording_orphans;
mod recording_ownership;
mod recordings;
mod robustness;
mod sessions_route;
mod slow_readers;
mod soak;
mod store_transactions;
mod twilio;
mod voice_barge_in;
mod voice_failures;
mod voice_lifecycle;
mod voice_protocol;
mod voice_session;
