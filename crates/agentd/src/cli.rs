//! The command line: `agentd [--config FILE] <command>`.
//!
//! Exit codes: 0 on success, 1 when the command failed, 2 for a usage or configuration
//! error (clap's own convention for usage errors).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::commands;
use crate::config::{Config, ConfigError};
use crate::logging::{self, LogFormat, LogOptions, Rotation};

/// AI agents with roles working on a repository around the clock.
#[derive(Debug, Parser)]
#[command(name = "agentd", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// The configuration file.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "AGENTD_CONFIG",
        default_value = "agentd.yaml"
    )]
    pub config: PathBuf,

    /// Log format on stderr (`auto`: text on a terminal, JSON lines otherwise).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,

    /// Also write JSON-lines logs to this file, rotated at 100 MB; rotated files older
    /// than 7 days are deleted.
    #[arg(long, global = true, value_name = "FILE")]
    pub log_file: Option<PathBuf>,

    /// More log output (-v: info, -vv: debug, -vvv: trace). `RUST_LOG` overrides it.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented starter agentd.yaml into DIR (default: the current directory).
    Init {
        /// Where to write agentd.yaml.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Overwrite an existing agentd.yaml.
        #[arg(long)]
        force: bool,
    },
    /// Run the agents: a daemon until SIGTERM, or `--once` to drain the queue and exit.
    Run(commands::run::RunArgs),
    /// Enqueue a task and print its id.
    Submit(commands::submit::SubmitArgs),
    /// Agents, queue depths, failures, budget, and LLM requests/tokens/cost.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Send one prompt through the configured LLM client and print the answer.
    Ask(commands::ask::AskArgs),
    /// Check the configuration, the LLM provider, git, the test framework and the store.
    Doctor,
    /// List tasks in the store.
    Tasks(commands::tasks::TasksArgs),
    /// Show one task: its record, history, follow-ups, pipeline steps and result.
    Task {
        /// The task id (from `agentd tasks` or `agentd submit`).
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a project's tests and print the report (exit 0 only when they pass).
    Test(commands::test::TestArgs),
}

/// Parses the process arguments, runs the command, and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The daemon always keeps a log file: by default in its data directory.
    let default_log = match &cli.command {
        Command::Run(_) if cli.log_file.is_none() => Config::load(&cli.config)
            .ok()
            .map(|config| crate::app::data_dir(&config).join("logs/agentd.log")),
        _ => None,
    };
    let options = LogOptions {
        format: cli.log_format,
        verbosity: cli.verbose,
        file: cli.log_file.clone().or(default_log),
        rotation: Rotation::default(),
    };
    let _log_guard = match logging::init(&options) {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let mut stdout = std::io::stdout().lock();
    match run(cli, &mut stdout) {
        Ok(code) => code,
        Err(err) => {
            let _ = stdout.flush();
            eprintln!("error: {err:#}");
            if err.downcast_ref::<ConfigError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Runs a parsed command, writing its output to `out`.
pub fn run(cli: Cli, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Init { dir, force } => {
            commands::init::run(&dir, force, out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Ask(args) => {
            let config = load_config(&cli.config)?;
            runtime()?.block_on(commands::ask::run(&config, &args, out))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => {
            let config = load_config(&cli.config)?;
            let ok = runtime()?.block_on(commands::run::run(config, &args, out))?;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Submit(args) => {
            let config = load_config(&cli.config)?;
            runtime()?.block_on(commands::submit::run(config, &args, out))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { json } => {
            let config = load_config(&cli.config)?;
            runtime()?.block_on(commands::status::run(config, json, out))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Tasks(args) => {
            let config = load_config(&cli.config)?;
            runtime()?.block_on(async {
                match open_existing_store(&config).await? {
                    Some(stores) => commands::tasks::list(stores.tasks.as_ref(), &args, out).await,
                    None => Ok(writeln!(
                        out,
                        "no tasks (the store {} does not exist yet)",
                        config.memory.path.display()
                    )?),
                }
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Task { id, json } => {
            let config = load_config(&cli.config)?;
            runtime()?.block_on(async {
                let Some(stores) = open_existing_store(&config).await? else {
                    anyhow::bail!(
                        "no task with id {id}: the store {} does not exist yet",
                        config.memory.path.display()
                    );
                };
                commands::tasks::show(stores.tasks.as_ref(), &stores.memory, &id, json, out).await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Test(args) => {
            // The config is optional here: without one, defaults and the current directory.
            let (settings, path) = if cli.config.exists() {
                let config = load_config(&cli.config)?;
                (config.testing, config.file_system.workspace_path)
            } else {
                (Default::default(), PathBuf::from("."))
            };
            let green = runtime()?.block_on(commands::test::run(settings, path, &args, out))?;
            Ok(if green {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Doctor => {
            let healthy = runtime()?.block_on(commands::doctor::run(&cli.config, out))?;
            Ok(if healthy {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

fn load_config(path: &Path) -> anyhow::Result<Config> {
    if !path.exists() {
        return Err(anyhow::Error::new(ConfigError::Read {
            path: path.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such file (create one with `agentd init`, or pass --config FILE)",
            ),
        }));
    }
    Ok(Config::load(path)?)
}

/// Opens the configured store for reading; `None` when its SQLite file does not exist yet
/// (a read-only command must not create it).
async fn open_existing_store(config: &Config) -> anyhow::Result<Option<agentd_memory::Stores>> {
    if config.memory.backend == agentd_memory::BackendKind::Sqlite && !config.memory.path.exists() {
        return Ok(None);
    }
    let stores = config
        .memory
        .open(std::sync::Arc::new(agentd_memory::SystemClock))
        .await
        .with_context(|| format!("cannot open the {:?} store", config.memory.backend))?;
    Ok(Some(stores))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
