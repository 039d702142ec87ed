//! The fault-injection suite: real network faults (Toxiproxy) between the agent and
//! PostgreSQL, MariaDB, the schema registry and Kafka (a broker of the suite's own), under a ~2k rows/s write load, in both delivery
//! modes. What a case does and asserts: `case.rs`; how to run it and the results:
//! docs/reliability.md.
//!
//! Every test is `#[ignore]`d: `cargo test` (and so `scripts/test`) lists them as ignored and
//! runs none, because the full matrix takes about half an hour. `scripts/test-faults` builds
//! Toxiproxy, runs them (`--ignored`; `--slice` picks one fault per service) one at a time and
//! writes the results table. They are `#[serial(faults)]` as well: each case measures recovery
//! times, which a second case running beside it on the same cores would distort.

#[path = "../common/mod.rs"]
mod common;

mod broker;
mod brokers;
mod case;
mod cluster;
mod http_fault;
mod load;
mod toxiproxy;

/// The five faults of one service in one delivery mode, one test each.
macro_rules! faults {
    ($service:expr, $mode:expr) => {
        use crate::case::{run, Fault};
        use serial_test::serial;

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        #[serial(faults)]
        #[ignore = "fault-injection suite: scripts/test-faults"]
        async fn a_200ms_latency_loses_nothing_and_recovers_within_30s() {
            run($service, Fault::Latency, $mode).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        #[serial(faults)]
        #[ignore = "fault-injection suite: scripts/test-faults"]
        async fn a_100kb_per_s_bandwidth_limit_loses_nothing_and_recovers_within_30s() {
            run($service, Fault::Bandwidth, $mode).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        #[serial(faults)]
        #[ignore = "fault-injection suite: scripts/test-faults"]
        async fn a_30s_cut_is_named_in_readyz_loses_nothing_and_recovers_within_30s() {
            run($service, Fault::Cut, $mode).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        #[serial(faults)]
        #[ignore = "fault-injection suite: scripts/test-faults"]
        async fn connections_reset_mid_stream_lose_nothing_and_recover_within_30s() {
            run($service, Fault::Reset, $mode).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        #[serial(faults)]
        #[ignore = "fault-injection suite: scripts/test-faults"]
        async fn a_30s_half_open_connection_is_named_in_readyz_loses_nothing_and_recovers_within_30s(
        ) {
            run($service, Fault::HalfOpen, $mode).await;
        }
    };
}

/// The registry's own faults beside the five TCP ones: it answers HTTP 500, or slowly. In a
/// module where [`faults!`] brought `run`, `Fault` and `serial` into scope.
macro_rules! registry_faults {
    ($mode:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        #[serial(faults)]
        #[ignore = "fault-injection suite: scripts/test-faults"]
        async fn http_500_answers_for_30s_are_named_in_readyz_lose_nothing_and_recover_within_30s()
        {
            run(crate::case::Service::Registry, Fault::Http500, $mode).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        #[serial(faults)]
        #[ignore = "fault-injection suite: scripts/test-faults"]
        async fn answers_5s_late_lose_nothing_and_recover_within_30s() {
            run(crate::case::Service::Registry, Fault::Slow, $mode).await;
        }
    };
}

mod postgresql {
    mod exactly_once {
        faults!(
            crate::case::Service::Postgres,
            crate::case::Mode::ExactlyOnce
        );
    }
    mod at_least_once {
        faults!(
            crate::case::Service::Postgres,
            crate::case::Mode::AtLeastOnce
        );
    }
}

mod mariadb {
    mod exactly_once {
        faults!(
            crate::case::Service::MariaDb,
            crate::case::Mode::ExactlyOnce
        );
    }
    mod at_least_once {
        faults!(
            crate::case::Service::MariaDb,
            crate::case::Mode::AtLeastOnce
        );
    }
}

mod registry {
    mod exactly_once {
        faults!(
            crate::case::Service::Registry,
            crate::case::Mode::ExactlyOnce
        );
        registry_faults!(crate::case::Mode::ExactlyOnce);
    }
    mod at_least_once {
        faults!(
            crate::case::Service::Registry,
            crate::case::Mode::AtLeastOnce
        );
        registry_faults!(crate::case::Mode::AtLeastOnce);
    }
}

mod kafka {
    mod exactly_once {
        faults!(crate::case::Service::Kafka, crate::case::Mode::ExactlyOnce);
    }
    mod at_least_once {
        faults!(crate::case::Service::Kafka, crate::case::Mode::AtLeastOnce);
    }
}

/// Kafka itself failing (a cluster of the suite's own): `tests/faults/brokers.rs`, run by
/// scripts/test-brokers (scripts/test-faults skips them).
mod broker_failures {
    use serial_test::serial;

    /// Kills of the run: `CDC_BROKER_KILLS` (scripts/test-brokers --kills), default 20.
    fn kills() -> usize {
        std::env::var("CDC_BROKER_KILLS")
            .ok()
            .and_then(|k| k.parse().ok())
            .unwrap_or(20)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[serial(faults)]
    #[ignore = "broker cases: scripts/test-brokers"]
    async fn killing_partition_leaders_and_the_transaction_coordinator_during_commits_loses_and_duplicates_nothing(
    ) {
        crate::brokers::kills(kills()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[serial(faults)]
    #[ignore = "broker cases: scripts/test-brokers"]
    async fn a_full_log_dir_is_reported_loses_and_duplicates_nothing_and_recovers_once_kafka_has_space(
    ) {
        crate::brokers::disk_full().await;
    }
}
