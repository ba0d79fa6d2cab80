//! The offline main job: agents with roles take a task from the CEO to a deployed merge,
//! with no API key and no network.
//!
//! ```text
//! cargo run -p agentd --example tdd_pipeline                       # replay the shipped cassette
//! cargo run -p agentd --example tdd_pipeline -- --dir /tmp/run1    # in a directory of your choice
//! cargo run -p agentd --example tdd_pipeline -- --record           # re-record examples/tdd/cassette.jsonl
//! cargo run -p agentd --example tdd_pipeline -- --live --config my.yaml   # a real provider, recorded
//! cargo run -p agentd --example tdd_pipeline -- --replay --config my.yaml  # that recording, offline
//! ```
//!
//! `--live` records to `tdd-live.cassette.jsonl` (or `--cassette FILE`); `--replay` with the
//! same `--config` and cassette replays it without a key or network.
//!
//! Every run writes a fresh directory (default `target/agentd-demo/run-<time>`): the seed
//! crate `calc` on `main`, a bare `origin`, and the `agentd.yaml` used, so the same
//! pipeline can be run again with the real binary: `agentd run --once --config <dir>/agentd.yaml`.
//! Exit status 0 only when the change was merged into `main` and deployed to `origin`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use agentd::demo::{self, LlmSource};
use agentd::logging::{self, LogFormat, LogOptions, Rotation};

struct Args {
    dir: Option<PathBuf>,
    source: LlmSource,
}

const USAGE: &str =
    "usage: tdd_pipeline [--dir DIR] [--record | --live --config FILE [--cassette FILE]]";

fn parse_args() -> Result<Args, String> {
    let mut dir = None;
    let mut record = false;
    let mut live = false;
    let mut replay = false;
    let mut config = None;
    let mut cassette = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--dir" => dir = Some(PathBuf::from(value("--dir")?)),
            "--record" => record = true,
            "--live" => live = true,
            "--replay" => replay = true,
            "--config" => config = Some(PathBuf::from(value("--config")?)),
            "--cassette" => cassette = Some(PathBuf::from(value("--cassette")?)),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let cassette =
        std::path::absolute(cassette.unwrap_or_else(|| PathBuf::from("tdd-live.cassette.jsonl")))
            .map_err(|e| format!("--cassette: {e}"))?;
    let source = match (record, live, replay, config) {
        (false, false, false, None) => LlmSource::Replay,
        (true, false, false, None) => LlmSource::Record(demo::shipped_cassette()),
        (false, true, false, Some(config)) => LlmSource::Live { config, cassette },
        (false, false, true, Some(config)) => LlmSource::ReplayLive { config, cassette },
        (false, true, false, None) | (false, false, true, None) => {
            return Err(format!("--live and --replay need --config FILE\n{USAGE}"));
        }
        _ => return Err(USAGE.to_owned()),
    };
    Ok(Args { dir, source })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tdd_pipeline failed: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let root = args.dir.unwrap_or_else(demo::fresh_run_dir);
    let dir = demo::prepare(&root, &demo::shipped_cassette())?;
    let _log = logging::init(&LogOptions {
        format: LogFormat::Auto,
        verbosity: 0,
        file: Some(dir.log.clone()),
        rotation: Rotation::default(),
    })?;
    let mode = match &args.source {
        LlmSource::Replay => format!("replaying {}", demo::shipped_cassette().display()),
        LlmSource::Record(cassette) => {
            format!("scripted backend, recording to {}", cassette.display())
        }
        LlmSource::Live { config, cassette } => format!(
            "provider of {}, recording to {}",
            config.display(),
            cassette.display()
        ),
        LlmSource::ReplayLive { config, cassette } => format!(
            "replaying {} with the llm settings of {}",
            cassette.display(),
            config.display()
        ),
    };
    println!("agentd TDD pipeline in {} ({mode})", dir.root.display());
    println!("goal: {}\n", demo::scripted::GOAL);
    let outcome = demo::run(&dir, &args.source).await?;
    let verified = demo::verify(&dir);
    let mut out = std::io::stdout().lock();
    demo::write_report(&dir, &outcome, verified.as_ref().ok(), &mut out)?;
    demo::check_outcome(&outcome)?;
    let verified = verified?;
    println!(
        "\nDone in {:.1}s: {} merged into main and deployed to origin.",
        started.elapsed().as_secs_f64(),
        verified.feature_branches.join(", ")
    );
    Ok(())
}
