//! Costs the deployer adds around a deploy: durable history writes (fsync + rename),
//! picking the previous good revision, and revision validation.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use agentd_deploy::{
    DeploymentAction, DeploymentHistory, DeploymentRecord, DeploymentState, FileDeploymentHistory,
    Revision, good_revisions,
};
use criterion::{Criterion, criterion_group, criterion_main};

fn record(i: usize) -> DeploymentRecord {
    DeploymentRecord {
        id: format!("id-{i}"),
        action: DeploymentAction::Deploy,
        backend: "direct".to_owned(),
        environment: "production".to_owned(),
        revision: format!("{i:040x}"),
        idempotency_key: format!("task-{i}"),
        state: DeploymentState::Succeeded,
        previous_revision: None,
        started_at: chrono::Utc::now(),
        finished_at: None,
        steps: Vec::new(),
        error: None,
        rollback: None,
        recovered: false,
    }
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let history = runtime
        .block_on(FileDeploymentHistory::open(dir.path().join("h.json")))
        .unwrap();
    for i in 0..100 {
        runtime.block_on(history.save(&record(i))).unwrap();
    }
    let mut next = 100;
    c.bench_function(
        "history save, fsync+rename (history grows from 100 records)",
        |b| {
            b.iter(|| {
                next += 1;
                runtime.block_on(history.save(&record(next))).unwrap();
            });
        },
    );
    let records: Vec<DeploymentRecord> = (0..1000).map(record).collect();
    c.bench_function("good_revisions over 1000 records", |b| {
        b.iter(|| good_revisions(std::hint::black_box(&records)));
    });
    c.bench_function("Revision::parse (ref name)", |b| {
        b.iter(|| Revision::parse(std::hint::black_box("release/v1.2.3-rc1")));
    });
}

criterion_group! {
    name = deploy;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(deploy);
