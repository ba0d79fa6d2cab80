//! The `agentd` daemon and CLI, as a library so its commands can be tested and embedded.
//!
//! This crate is the top layer: it loads [`config::Config`] from `agentd.yaml`, wires the
//! concrete backends of the lower crates (`agentd-llm`, …) and runs the command the user
//! asked for. It owns no agent logic of its own.
//!
//! - [`app`]: wiring the configured backends into a [`agentd_orchestrator::TaskOrchestrator`].
//! - [`cli`]: the clap command line, logging set-up and exit codes.
//! - [`config`]: the `agentd.yaml` contract (expansion, env overrides, errors).
//! - [`demo`]: the offline main job (TDD pipeline on a fresh workspace, replayed from a cassette).
//! - [`commands`]: one module per subcommand.
//! - [`logging`]: stderr and rotated JSON-lines log files.
//! - [`observe`]: metrics and status over HTTP, the live status line, status snapshots.

pub mod app;
pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod logging;
pub mod observe;
