//! The `agentd.yaml` contract: loading, `${VAR}` expansion, `AGENTD_<SECTION>__<KEY>`
//! overrides, and errors that name the key and the file.
//!
//! Order of precedence (later wins): the YAML file, then environment overrides. Expansion
//! of `${VAR}` happens on the file's string values only, before the overrides are merged,
//! so an override is taken literally.
//!
//! Each section's type lives in the crate that owns the subsystem (e.g.
//! [`agentd_llm::LlmSettings`]); this module only assembles them, so the config reference
//! (`docs/config.md`) and the types cannot drift apart (a test checks it).

mod expand;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use agentd_deploy::DeploymentSettings;
pub use agentd_orchestrator::OrchestratorSettings;
use figment::providers::Env;
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Serialize};

pub use expand::{ExpandError, expand};

/// The prefix of environment overrides: `AGENTD_LLM__MODEL=gpt-4o` sets `llm.model`.
pub const ENV_PREFIX: &str = "AGENTD_";

/// Everything `agentd` reads from `agentd.yaml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The LLM provider every agent thinks through.
    pub llm: agentd_llm::LlmSettings,
    /// The repository the agents work on, and who may move which branch.
    pub git: agentd_vcs::GitSettings,
    /// The workspace the agents may read and write, and its limits.
    pub file_system: agentd_fsmanager::FileSystemSettings,
    /// The orchestrator's loop, concurrency, budgets and alerts.
    pub orchestrator: OrchestratorSettings,
    /// Per-role overrides of the LLM parameters, keyed by role name (`ceo`, `developer`, …).
    pub agents: BTreeMap<String, AgentSettings>,
    /// How the project's tests are found and run.
    pub testing: agentd_testrunner::TestingSettings,
    /// Where merged work is deployed: `ci_cd`, `direct`, `docker` or `none`.
    pub deployment: agentd_deploy::DeploymentSettings,
    /// The store that remembers everything: SQLite (default) or PostgreSQL.
    pub memory: agentd_memory::MemorySettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            llm: Default::default(),
            git: Default::default(),
            // Without a `file_system` section the agents work in the config file's directory.
            file_system: agentd_fsmanager::FileSystemSettings::new("."),
            orchestrator: Default::default(),
            agents: Default::default(),
            testing: Default::default(),
            deployment: Default::default(),
            memory: Default::default(),
        }
    }
}

/// One entry of the `agents` section: LLM parameters for one role. Unset keys fall back
/// to the `llm` section.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSettings {
    /// Sampling temperature for this role.
    pub temperature: Option<f32>,
    /// Maximum output tokens per call for this role.
    pub max_tokens: Option<u32>,
    /// Model for this role (e.g. a cheaper model for reviewers).
    pub model: Option<String>,
    /// For a role of your own (any name that is not a built-in role): what it is
    /// responsible for (required). For a built-in role: extra instructions appended to
    /// its system prompt.
    pub description: Option<String>,
}

/// Why the configuration could not be loaded. Every variant names the file; the
/// `Invalid` variant lists each bad key with the reason.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid YAML, or its top level is not a mapping.
    #[error("config file {path} is not valid YAML: {message}")]
    Syntax {
        /// The config file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A `${VAR}` reference could not be expanded.
    #[error("config file {path}, key `{key}`: {source}")]
    Expand {
        /// The config file.
        path: PathBuf,
        /// The dotted key whose value holds the reference.
        key: String,
        /// What was wrong with it.
        source: ExpandError,
    },
    /// Unknown keys, wrong types or missing values.
    #[error("invalid configuration in {path}:\n{problems}")]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// One line per problem: the key, where its value came from, and what is wrong.
        problems: String,
    },
}

impl Config {
    /// Loads `path`, expands `${VAR}` references from the process environment, and applies
    /// `AGENTD_<SECTION>__<KEY>` overrides. Relative paths in the file are taken relative
    /// to the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Self::load_with_env(path, &|name| std::env::var(name).ok())
    }

    /// [`Config::load`] with an explicit variable lookup for `${VAR}` expansion (the
    /// `AGENTD_…` overrides still come from the process environment).
    pub fn load_with_env(
        path: &Path,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config: Config = extract(path, &text, lookup)?;
        config.resolve_relative_paths(path.parent().unwrap_or(Path::new(".")));
        Ok(config)
    }

    fn resolve_relative_paths(&mut self, base: &Path) {
        let resolve_opt = |path: &mut Option<PathBuf>| {
            if let Some(p) = path.as_mut() {
                *p = resolve(base, p);
            }
        };
        resolve_opt(&mut self.llm.cassette);
        resolve_opt(&mut self.file_system.git_repo_path);
        resolve_opt(&mut self.file_system.backup_path);
        self.file_system.workspace_path = resolve(base, &self.file_system.workspace_path);
        if self.memory.backend == agentd_memory::BackendKind::Sqlite {
            self.memory.path = resolve(base, &self.memory.path);
        }
        match &mut self.deployment {
            DeploymentSettings::CiCd(ci) => ci.repo_path = resolve(base, &ci.repo_path),
            DeploymentSettings::Direct(direct) => {
                direct.key_path = resolve(base, &direct.key_path);
                direct.known_hosts_path = resolve(base, &direct.known_hosts_path);
            }
            DeploymentSettings::Docker(docker) => {
                docker.dockerfile = resolve(base, &docker.dockerfile);
                docker.context = resolve(base, &docker.context);
                resolve_opt(&mut docker.compose_file);
            }
            DeploymentSettings::None {} => {}
        }
    }
}

fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() || base.as_os_str().is_empty() {
        path.to_owned()
    } else {
        base.join(path)
    }
}

/// Parses, expands and merges overrides into any section-shaped type; [`Config::load`]
/// is this with [`Config`].
fn extract<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<T, ConfigError> {
    let parsed: Option<Value> =
        serde_norway::from_str(text).map_err(|err| ConfigError::Syntax {
            path: path.to_owned(),
            message: err.to_string(),
        })?;
    let dict = match parsed {
        // An empty file (or one holding only comments) is an empty configuration.
        None => Dict::new(),
        Some(Value::Dict(_, dict)) => dict,
        Some(other) => {
            return Err(ConfigError::Syntax {
                path: path.to_owned(),
                message: format!(
                    "the top level must be a mapping of sections, found {}",
                    other.to_actual()
                ),
            });
        }
    };
    let mut dict = dict;
    for (key, value) in dict.iter_mut() {
        expand_value(value, key, lookup).map_err(|(key, source)| ConfigError::Expand {
            path: path.to_owned(),
            key,
            source,
        })?;
    }
    Figment::new()
        .merge(ExpandedFile {
            path: path.to_owned(),
            dict,
        })
        .merge(env_overrides())
        .extract()
        .map_err(|err| ConfigError::Invalid {
            path: path.to_owned(),
            problems: describe(err),
        })
}

/// `AGENTD_<SECTION>__<KEY>` variables. Only names with a `__` are overrides, so that
/// unrelated variables such as `AGENTD_REQUIRE_ALL` are not mistaken for config keys.
fn env_overrides() -> Env {
    Env::prefixed(ENV_PREFIX)
        .filter(|key| key.as_str().contains("__"))
        .split("__")
}

fn expand_value(
    value: &mut Value,
    key: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), (String, ExpandError)> {
    match value {
        Value::String(_, text) => {
            *text = expand(text, lookup).map_err(|err| (key.to_owned(), err))?;
        }
        Value::Dict(_, dict) => {
            for (child, value) in dict.iter_mut() {
                expand_value(value, &format!("{key}.{child}"), lookup)?;
            }
        }
        Value::Array(_, items) => {
            for (index, value) in items.iter_mut().enumerate() {
                expand_value(value, &format!("{key}[{index}]"), lookup)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// One line per figment error, e.g. ``key `llm.temperature` (from environment variable
/// AGENTD_LLM__TEMPERATURE): invalid type …``.
fn describe(errors: figment::Error) -> String {
    let mut out = String::new();
    for err in errors {
        let key = if err.path.is_empty() {
            "(top level)".to_owned()
        } else {
            err.path.join(".")
        };
        // Only two providers exist: the file, and the environment overrides, whose
        // variable name is rebuilt here (figment's own rendering loses the `__`).
        let origin = match err.metadata.as_ref().map(|md| &md.source) {
            None => None,
            Some(Some(figment::Source::File(_))) => Some("the file".to_owned()),
            Some(_) => Some(format!(
                "environment variable {ENV_PREFIX}{}",
                err.path.join("__").to_uppercase()
            )),
        };
        let _ = match origin {
            Some(origin) => writeln!(out, "  - key `{key}` (from {origin}): {}", err.kind),
            None => writeln!(out, "  - key `{key}`: {}", err.kind),
        };
    }
    out.trim_end().to_owned()
}

/// The YAML file after expansion, as a figment provider that names the file in errors.
struct ExpandedFile {
    path: PathBuf,
    dict: Dict,
}

impl Provider for ExpandedFile {
    fn metadata(&self) -> Metadata {
        Metadata::from("config file", self.path.as_path())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

#[cfg(test)]
mod tests;
