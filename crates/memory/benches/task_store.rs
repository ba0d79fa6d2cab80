//! Task store throughput and claim latency.
//!
//! - `lifecycle/*`: full task lifecycles (enqueue + claim + complete) per second, one at a time
//!   (`single`: three separate commits) and `batched` (64 tasks enqueued in one call, then 64
//!   concurrent workers whose claims and completions share group commits), with
//!   `synchronous` NORMAL and FULL.
//! - `raw_sqlite/*`: single-row INSERT transactions on a bare connection on the same disk: the
//!   ceiling one commit per operation can reach.
//! - `claim/depth_*`: latency of one claim with 10, 10,000 and 1,000,000 pending tasks.
//!
//! A summary with rates and the lifecycle/raw ratio is printed at the end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentd_memory::{NewTask, SqliteOptions, SqliteStore, Synchronous, SystemClock, TaskStore};
use criterion::{Criterion, Throughput, criterion_group};
use serde_json::json;

const LEASE: Duration = Duration::from_secs(60);
const BATCH: usize = 64;

/// Accumulated (operations, time) per benchmark, for the summary.
static RATES: Mutex<BTreeMap<String, (u64, Duration)>> = Mutex::new(BTreeMap::new());

fn note(name: &str, operations: u64, elapsed: Duration) {
    let mut rates = RATES.lock().unwrap();
    let entry = rates.entry(name.to_owned()).or_default();
    entry.0 += operations;
    entry.1 += elapsed;
}

fn rate(name: &str) -> Option<f64> {
    RATES
        .lock()
        .unwrap()
        .get(name)
        .map(|(ops, time)| *ops as f64 / time.as_secs_f64())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn open(dir: &tempfile::TempDir, name: &str, synchronous: Synchronous) -> Arc<dyn TaskStore> {
    let options = SqliteOptions {
        synchronous,
        ..SqliteOptions::default()
    };
    Arc::new(
        SqliteStore::open(dir.path().join(name), options, Arc::new(SystemClock))
            .await
            .unwrap(),
    )
}

async fn single_lifecycle(store: &Arc<dyn TaskStore>) {
    store
        .enqueue(vec![NewTask::new("dev", json!({"n": 1}))])
        .await
        .unwrap();
    let claimed = store.claim("dev", "w", LEASE).await.unwrap().unwrap();
    store
        .complete(&claimed.task.id, claimed.token, json!("ok"))
        .await
        .unwrap();
}

async fn batched_lifecycles(store: &Arc<dyn TaskStore>) {
    let tasks = (0..BATCH)
        .map(|n| NewTask::new("dev", json!({ "n": n })))
        .collect();
    store.enqueue(tasks).await.unwrap();
    let workers: Vec<_> = (0..BATCH)
        .map(|w| {
            let store = Arc::clone(store);
            tokio::spawn(async move {
                let claimed = store
                    .claim("dev", &format!("w{w}"), LEASE)
                    .await
                    .unwrap()
                    .unwrap();
                store
                    .complete(&claimed.task.id, claimed.token, json!("ok"))
                    .await
                    .unwrap();
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
}

fn lifecycles(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("lifecycle");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(3));
    for (sync_name, synchronous) in [("normal", Synchronous::Normal), ("full", Synchronous::Full)] {
        let store = rt.block_on(open(&dir, &format!("single-{sync_name}.db"), synchronous));
        group.throughput(Throughput::Elements(1));
        let name = format!("single/{sync_name}");
        group.bench_function(&name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                rt.block_on(async {
                    for _ in 0..iters {
                        single_lifecycle(&store).await;
                    }
                });
                let elapsed = start.elapsed();
                note(&format!("lifecycle/{name}"), iters, elapsed);
                elapsed
            });
        });
        let store = rt.block_on(open(&dir, &format!("batched-{sync_name}.db"), synchronous));
        group.throughput(Throughput::Elements(BATCH as u64));
        let name = format!("batched/{sync_name}");
        group.bench_function(&name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                rt.block_on(async {
                    for _ in 0..iters {
                        batched_lifecycles(&store).await;
                    }
                });
                let elapsed = start.elapsed();
                note(&format!("lifecycle/{name}"), iters * BATCH as u64, elapsed);
                elapsed
            });
        });
    }
    group.finish();
}

fn raw_sqlite(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("raw_sqlite");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(1));
    for (sync_name, synchronous) in [("normal", Synchronous::Normal), ("full", Synchronous::Full)] {
        let conn =
            rusqlite::Connection::open(dir.path().join(format!("raw-{sync_name}.db"))).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", synchronous.pragma_value())
            .unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
            .unwrap();
        let name = format!("single_row_txn/{sync_name}");
        group.bench_function(&name, |b| {
            b.iter_custom(|iters| {
                let mut insert = conn
                    .prepare_cached("INSERT INTO t (v) VALUES (?1)")
                    .unwrap();
                let start = Instant::now();
                for _ in 0..iters {
                    insert.execute(["payload"]).unwrap();
                }
                let elapsed = start.elapsed();
                note(&format!("raw_sqlite/{name}"), iters, elapsed);
                elapsed
            });
        });
    }
    group.finish();
}

fn claim_latency(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("claim");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for depth in [10usize, 10_000, 1_000_000] {
        let store = rt.block_on(open(
            &dir,
            &format!("depth-{depth}.db"),
            Synchronous::Normal,
        ));
        let fill_start = Instant::now();
        rt.block_on(async {
            let mut left = depth;
            while left > 0 {
                let n = left.min(20_000);
                let tasks = (0..n)
                    .map(|i| {
                        NewTask::new("dev", json!({ "i": i }))
                            .with_priority(agentd_memory::Priority(5 + (i % 3) as u8))
                    })
                    .collect();
                store.enqueue(tasks).await.unwrap();
                left -= n;
            }
        });
        eprintln!(
            "queue depth {depth}: filled in {:.1?}",
            fill_start.elapsed()
        );
        let name = format!("depth_{depth}");
        group.bench_function(&name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut timed = Duration::ZERO;
                    for _ in 0..iters {
                        // Refill first (untimed), so the depth stays constant.
                        store
                            .enqueue(vec![NewTask::new("dev", json!({}))])
                            .await
                            .unwrap();
                        let start = Instant::now();
                        let claimed = store.claim("dev", "w", LEASE).await.unwrap();
                        timed += start.elapsed();
                        assert!(claimed.is_some());
                    }
                    note(&format!("claim/{name}"), iters, timed);
                    timed
                })
            });
        });
    }
    group.finish();
}

fn summary() {
    println!("\n=== summary ===");
    for (name, (ops, time)) in RATES.lock().unwrap().iter() {
        let per_second = *ops as f64 / time.as_secs_f64();
        let latency_us = time.as_secs_f64() * 1e6 / *ops as f64;
        println!("{name:32} {per_second:>12.0} /s   {latency_us:>9.1} us each");
    }
    for sync_name in ["normal", "full"] {
        if let Some(raw) = rate(&format!("raw_sqlite/single_row_txn/{sync_name}")) {
            for kind in ["single", "batched"] {
                if let Some(lifecycles) = rate(&format!("lifecycle/{kind}/{sync_name}")) {
                    println!(
                        "{kind} lifecycles / raw single-row txns ({sync_name}): {:.3}",
                        lifecycles / raw
                    );
                }
            }
        }
    }
}

criterion_group!(benches, lifecycles, raw_sqlite, claim_latency);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    summary();
}
