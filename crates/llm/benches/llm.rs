//! Cache-hit latency, client overhead over bare reqwest, and throughput under the
//! concurrency limit, all against a loopback server.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use agentd_llm::{ChatRequest, LlmSettings, ProviderKind, build_client};
use common::{Reply, Server, openai_text, settings};
use criterion::{Criterion, criterion_group, criterion_main};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn cache_hit(c: &mut Criterion) {
    let rt = runtime();
    let server = rt.block_on(Server::start());
    server.always(Reply::json(openai_text("cached answer", "stop")));
    let mut config = settings(ProviderKind::Openai, server.url("/v1"));
    config.cache_ttl_s = 3600;
    let client = build_client(&config).unwrap().client();
    let request = ChatRequest::new(
        "You are a helpful assistant.",
        "What is the capital of France?",
    );
    rt.block_on(client.chat(request.clone())).unwrap();
    c.bench_function("cache_hit", |b| {
        b.to_async(&rt).iter(|| {
            let request = request.clone();
            let client = Arc::clone(&client);
            async move {
                let response = client.chat(request).await.unwrap();
                assert!(response.from_cache);
            }
        });
    });
}

fn overhead(c: &mut Criterion) {
    let rt = runtime();
    let server = rt.block_on(Server::start());
    server.always(Reply::json(openai_text("hello", "stop")));
    let client = build_client(&settings(ProviderKind::Openai, server.url("/v1")))
        .unwrap()
        .client();
    let request = ChatRequest::new("You are a helpful assistant.", "hello");
    let bare = reqwest::Client::new();
    let url = server.url("/v1/chat/completions");
    let body = serde_json::json!({
        "model": "gpt-4o", "max_completion_tokens": 256, "temperature": 0.0,
        "messages": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "hello"}]
    });
    let mut group = c.benchmark_group("per_call");
    group.bench_function("bare_reqwest", |b| {
        b.to_async(&rt).iter(|| {
            let (bare, url, body) = (bare.clone(), url.clone(), body.clone());
            async move {
                let response = bare
                    .post(url)
                    .bearer_auth("k")
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let value: serde_json::Value = response.json().await.unwrap();
                assert!(value.get("choices").is_some());
            }
        });
    });
    group.bench_function("agentd_client", |b| {
        b.to_async(&rt).iter(|| {
            let (client, request) = (Arc::clone(&client), request.clone());
            async move {
                client.chat(request).await.unwrap();
            }
        });
    });
    group.finish();
}

fn concurrency(c: &mut Criterion) {
    let rt = runtime();
    let server = rt.block_on(Server::start());
    server.always(Reply::json(openai_text("slow", "stop")).delayed(Duration::from_millis(50)));
    let mut group = c.benchmark_group("1000_calls_50ms_server");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for limit in [16_usize, 64, 256] {
        let config = LlmSettings {
            max_concurrency: limit,
            ..settings(ProviderKind::Openai, server.url("/v1"))
        };
        let client = build_client(&config).unwrap().client();
        let ideal = Duration::from_millis(50) * u32::try_from(1000_usize.div_ceil(limit)).unwrap();
        group.bench_function(
            format!("limit_{limit}_ideal_{}ms", ideal.as_millis()),
            |b| {
                b.to_async(&rt).iter_custom(|iterations| {
                    let client = Arc::clone(&client);
                    async move {
                        let mut total = Duration::ZERO;
                        for _ in 0..iterations {
                            let started = Instant::now();
                            let calls = (0..1000).map(|i| {
                                let client = Arc::clone(&client);
                                tokio::spawn(async move {
                                    client.chat(ChatRequest::new("s", format!("q{i}"))).await
                                })
                            });
                            for call in futures::future::join_all(calls).await {
                                call.unwrap().unwrap();
                            }
                            total += started.elapsed();
                        }
                        total
                    }
                });
            },
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = cache_hit, overhead, concurrency
}
criterion_main!(benches);
