//! The integration tests: one binary (linked once, not once per scenario), one module per scenario. Each test
//! makes its own cluster; nextest runs each in its own process. A scenario's tests are `-E 'test(/^<module>::/)'`.

mod common;

mod auth;
mod create;
mod engine_guard;
mod examples;
mod failover;
mod faults_checker;
mod faults_kill;
mod faults_partition;
mod faults_pause;
mod faults_slow;
mod host_access;
mod images;
mod join;
mod manual_failover;
mod membership;
mod names;
mod pod_fence;
mod read_write;
mod reshard;
mod scaling;
mod suites;
mod tls;
mod warm;
mod workloads;
