//! examples/cqrs: an `orders` write database captured by the agent, `cdc-agent apply`
//! keeping a read model in a second database, the example's query service answering from it,
//! and its notifier publishing one record per shipped order, exactly once.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cqrs_example::notifier::{self, Notification};
use cqrs_example::query::{self, CustomerTotals, LineView, OrderView};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::common::agent::Agent;
use crate::common::cdc::TopicTail;
use crate::common::pgcase::PgCase;
use crate::common::{pg_connect, stack_env, unique_name, wait_until, FreshPgDb};

/// Polls `check` until it returns `Some`; after [`CATCH_UP`], panics naming `what`, with
/// apply's log.
async fn wait_for<T, F, Fut>(apply: &ApplyProcess, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < CATCH_UP,
            "timed out after {CATCH_UP:?} waiting for {what}; apply's log:\n{}",
            apply.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The example's folder.
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/cqrs");
/// How long each stage may take to catch up.
const CATCH_UP: Duration = Duration::from_secs(180);
/// Records the workload leaves in the `orders` topic: 4 creates, 2 updates to paid, 1
/// delete and its tombstone, 2 updates to shipped, 1 update of a shipped order.
const ORDERS_RECORDS: usize = 11;

#[tokio::test(flavor = "multi_thread")]
async fn the_cqrs_example_answers_from_its_read_model_and_notifies_each_shipped_order_once() {
    let schema = std::fs::read_to_string(format!("{EXAMPLE}/schema.sql")).unwrap();
    let PgCase {
        admin,
        name,
        cfg,
        db,
        cleanup: _cleanup,
    } = PgCase::new(
        "cqrs",
        &format!("{schema}\nCREATE PUBLICATION cdc_pub FOR TABLE customers, orders, order_lines;"),
        "",
    )
    .await;
    let read_db = FreshPgDb::create("cqrs_read").await;
    let agent = Agent::start(&cfg);
    let apply = ApplyProcess::start(&name, &read_db.url);

    // The read side: the example's query service over the read model.
    let reader = pg_connect(&read_db.url).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop_query, stopped) = tokio::sync::oneshot::channel::<()>();
    let query_service = tokio::spawn(query::serve(listener, Arc::new(reader), async {
        let _ = stopped.await;
    }));

    // The event side: the example's notifier.
    let config = notifier::Config {
        bootstrap_servers: stack_env("KAFKA_BOOTSTRAP"),
        registry_url: stack_env("SCHEMA_REGISTRY_URL"),
        orders_topic: format!("{name}.public.orders"),
        notifications_topic: format!("{name}.notifications"),
        group_id: unique_name("cqrs_notifier"),
        transactional_id: unique_name("cqrs_notifier_tx"),
    };
    let (stop_notifier, stopped) = tokio::sync::oneshot::channel::<()>();
    let notifier_task = {
        let config = config.clone();
        tokio::spawn(async move {
            notifier::run(&config, async {
                let _ = stopped.await;
            })
            .await
        })
    };

    agent.wait_streaming(Duration::from_secs(60));
    run_workload(&db.url);

    // The query service's answers equal the totals computed from the write database ...
    let want: Vec<CustomerTotals> = admin
        .query(query::CUSTOMER_TOTALS, &[&None::<i32>])
        .await
        .unwrap()
        .iter()
        .map(|r| CustomerTotals {
            customer_id: r.get(0),
            name: r.get(1),
            orders: r.get(2),
            total: r.get(3),
        })
        .collect();
    // ... which are the workload's: 3 × 12.50 + 10 × 1.20 + 49.90; 12.50 + 4 × 7.50; a
    // cancelled order counts for nothing.
    let totals: Vec<(i32, i64, &str)> = want
        .iter()
        .map(|c| (c.customer_id, c.orders, c.total.as_str()))
        .collect();
    assert_eq!(totals, [(1, 2, "99.40"), (2, 1, "42.50"), (3, 0, "0.00")]);
    let http = reqwest::Client::new();
    let answer = |path: String| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move {
            let response = http.get(&url).send().await.ok()?;
            let status = response.status().as_u16();
            Some((status, response.text().await.ok()?))
        }
    };
    wait_for(
        &apply,
        "GET /customers to equal the write side's totals",
        || {
            let answer = answer("/customers".into());
            let want = &want;
            async move {
                let (status, body) = answer.await?;
                let have: Vec<CustomerTotals> = serde_json::from_str(&body).ok()?;
                (status == 200 && &have == want).then_some(())
            }
        },
    )
    .await;
    let shipped = OrderView {
        id: 101,
        customer_id: 1,
        status: "shipped".into(),
        total: "49.50".into(),
        lines: vec![line(1, "BOOK-1", 3, "12.50"), line(2, "PEN-3", 10, "1.20")],
    };
    wait_for(&apply, "GET /orders/101 to show the order shipped", || {
        let answer = answer("/orders/101".into());
        let shipped = &shipped;
        async move {
            let (_, body) = answer.await?;
            (serde_json::from_str::<OrderView>(&body).ok()? == *shipped).then_some(())
        }
    })
    .await;
    for id in [1, 2, 3] {
        let (status, body) = answer(format!("/customers/{id}/totals")).await.unwrap();
        let have: CustomerTotals = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("/customers/{id}/totals ({status}): {e}: {body}"));
        assert_eq!(have, want[id as usize - 1]);
    }
    let (status, body) = answer("/orders/104".into()).await.unwrap();
    assert_eq!(
        status, 404,
        "the cancelled order is gone from the read model: {body}"
    );
    let (status, _) = answer("/customers/9/totals".into()).await.unwrap();
    assert_eq!(status, 404);

    // Exactly the expected notifications: wait until the notifier's committed offset is past
    // every record of the orders topic (offsets and notifications commit together), then read
    // the notifications topic to its end.
    let mut orders = TopicTail::open(&config.orders_topic, CATCH_UP);
    let start = Instant::now();
    let mut last = -1;
    while orders.seen < ORDERS_RECORDS || !orders.caught_up() {
        last = orders
            .poll(Duration::from_millis(500))
            .iter()
            .map(|r| r.offset)
            .fold(last, i64::max);
        assert!(
            start.elapsed() < CATCH_UP,
            "the orders topic has {} records, {ORDERS_RECORDS} expected",
            orders.seen
        );
    }
    assert_eq!(orders.seen, ORDERS_RECORDS, "records of the orders topic");
    let group = committed_reader(&config.group_id);
    wait_until(
        CATCH_UP,
        "the notifier to commit past the orders topic",
        || {
            assert!(
                !notifier_task.is_finished(),
                "the notifier stopped early; see the test output"
            );
            let committed = committed_offset(&group, &config.orders_topic);
            async move { (committed > last).then_some(()) }
        },
    )
    .await;
    let mut notifications = TopicTail::open(&config.notifications_topic, CATCH_UP);
    let mut records = Vec::new();
    let start = Instant::now();
    while !notifications.caught_up() {
        records.extend(notifications.poll(Duration::from_millis(500)));
        assert!(
            start.elapsed() < CATCH_UP,
            "notifications topic not read to its end"
        );
    }
    let mut seen: Vec<(String, String, i32, i32)> = records
        .iter()
        .map(|r| {
            let key = String::from_utf8(r.key.clone().unwrap()).unwrap();
            let n: Notification = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
            assert!(n.shipped_at_ms > 0, "{n:?}");
            (key, n.kind, n.order_id, n.customer_id)
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("101".into(), "order_shipped".into(), 101, 1),
            ("103".into(), "order_shipped".into(), 103, 2),
        ]
    );

    // Both stop cleanly on their shutdown signal.
    let _ = stop_notifier.send(());
    notifier_task
        .await
        .unwrap()
        .expect("the notifier ends without error");
    let _ = stop_query.send(());
    query_service.await.unwrap().unwrap();
    drop(apply);
}

fn line(line_no: i32, sku: &str, qty: i32, unit_price: &str) -> LineView {
    LineView {
        line_no,
        sku: sku.into(),
        qty,
        unit_price: unit_price.into(),
    }
}

/// Runs the example's workload.sql with psql, as its run script does (one transaction per
/// statement or BEGIN/COMMIT block).
fn run_workload(url: &str) {
    let psql = std::env::var("PG_BIN_DIR")
        .map(|dir| format!("{dir}/psql"))
        .unwrap_or_else(|_| "psql".into());
    let out = Command::new(psql)
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f"])
        .arg(format!("{EXAMPLE}/workload.sql"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "workload.sql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A consumer of `group` that reads its committed offsets and never joins it.
fn committed_reader(group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", stack_env("KAFKA_BOOTSTRAP"))
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap()
}

/// The group's committed offset of partition 0 of `topic`; -1 when none.
fn committed_offset(group: &BaseConsumer, topic: &str) -> i64 {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    match group.committed_offsets(tpl, Duration::from_secs(10)) {
        Ok(list) => match list.find_partition(topic, 0).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o,
            _ => -1,
        },
        Err(_) => -1,
    }
}

/// `cdc-agent apply` from the table topics of source `name` into `target_url`, with the keys
/// of the example's apply.toml; killed when dropped.
struct ApplyProcess {
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl ApplyProcess {
    fn start(name: &str, target_url: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("apply.toml");
        std::fs::write(
            &config,
            format!(
                "[kafka]\nbootstrap_servers = \"{kafka}\"\n\
                 [schema_registry]\nurl = \"{registry}\"\n\
                 [source]\ntopics = [\"{name}.public.customers\", \"{name}.public.orders\", \
                 \"{name}.public.order_lines\"]\n\
                 [target]\nkind = \"postgres\"\nurl = \"{target_url}\"\n\
                 [apply]\nname = \"orders-read-model\"\nbatch_max_ms = 50\n",
                kafka = stack_env("KAFKA_BOOTSTRAP"),
                registry = stack_env("SCHEMA_REGISTRY_URL"),
            ),
        )
        .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_cdc-agent"))
            .args(["apply", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info,librdkafka=warn,rdkafka=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("apply.log")).unwrap())
            .spawn()
            .unwrap();
        ApplyProcess { child, dir }
    }
}

impl ApplyProcess {
    /// Its log so far.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("apply.log")).unwrap_or_default()
    }
}

impl Drop for ApplyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
