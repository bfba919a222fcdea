//! The framework's own suite, run by its own harness: the CLI against a
//! demo harness with known outcomes, and the example services' incidents
//! through real cargo and the JSON report.

#[path = "harness/support.rs"]
mod support;

#[path = "harness/adoption.rs"]
mod adoption;
#[path = "harness/app.rs"]
mod app;
#[path = "harness/chaos.rs"]
mod chaos;
#[path = "harness/cli.rs"]
mod cli;
#[path = "harness/e2e_incidents.rs"]
mod e2e_incidents;
#[path = "harness/e2e_leftovers.rs"]
mod e2e_leftovers;
#[path = "harness/e2e_nextest.rs"]
mod e2e_nextest;
#[path = "harness/enums.rs"]
mod enums;
#[path = "harness/env.rs"]
mod env;
#[path = "harness/hosted.rs"]
mod hosted;
#[path = "harness/incidents.rs"]
mod incidents;
#[path = "harness/layers.rs"]
mod layers;
#[path = "harness/leftovers.rs"]
mod leftovers;
#[path = "harness/libtest.rs"]
mod libtest;
#[path = "harness/load_incidents.rs"]
mod load_incidents;
#[path = "harness/outages.rs"]
mod outages;
#[path = "harness/postgres.rs"]
mod postgres;
#[path = "harness/publish.rs"]
mod publish;
#[path = "harness/redis.rs"]
mod redis;
#[path = "harness/shared_server.rs"]
mod shared_server;
#[path = "harness/signals.rs"]
mod signals;

verily::main!();
