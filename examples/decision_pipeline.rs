//! The decision pipeline, offline: a proposal goes to the V-team (CFO, Risk, Legal and
//! Tech Lead judge it in parallel, each by criteria of its own), the CEO decides from
//! their verdicts, and the approval creates the project's task, which then runs through
//! the TDD pipeline to a merge on `main` deployed to `origin`.
//!
//! ```text
//! cargo run -p agentd --example decision_pipeline                 # replay examples/decision/cassette.jsonl
//! cargo run -p agentd --example decision_pipeline -- --dir /tmp/d # in a directory of your choice
//! cargo run -p agentd --example decision_pipeline -- --record     # re-record the cassette (scripted backend)
//! ```
//!
//! Exit status 0 only when the proposal was approved and its task merged and deployed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use agentd::demo::{self, LlmSource};
use agentd::logging::{self, LogFormat, LogOptions, Rotation};

#[tokio::main]
async fn main() -> ExitCode {
    let mut dir = None;
    let mut record = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.len()) {
            ("--record", _) => record = true,
            ("--dir", 1..) => dir = args.next().map(PathBuf::from),
            _ => {
                eprintln!("usage: decision_pipeline [--dir DIR] [--record]");
                return ExitCode::from(2);
            }
        }
    }
    match run(dir, record).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("decision_pipeline failed: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(dir: Option<PathBuf>, record: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let cassette = demo::shipped_decision_cassette();
    let dir = demo::prepare(&dir.unwrap_or_else(demo::fresh_run_dir), &cassette)?;
    let _log = logging::init(&LogOptions {
        format: LogFormat::Auto,
        verbosity: 0,
        file: Some(dir.log.clone()),
        rotation: Rotation::default(),
    })?;
    let source = if record {
        LlmSource::Record(cassette.clone())
    } else {
        LlmSource::Replay
    };
    println!(
        "agentd decision pipeline in {} ({} {})",
        dir.root.display(),
        if record { "recording to" } else { "replaying" },
        cassette.display()
    );
    println!("proposal: {}\n", demo::scripted::PROPOSAL);
    let outcome = demo::run_decision(&dir, &source).await?;
    let verified = demo::verify(&dir);
    let mut out = std::io::stdout().lock();
    demo::write_report(&dir, &outcome, verified.as_ref().ok(), &mut out)?;
    demo::check_outcome(&outcome)?;
    verified?;
    println!(
        "\nDone in {:.1}s: approved by the V-team and the CEO, built test-first, merged and deployed.",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
