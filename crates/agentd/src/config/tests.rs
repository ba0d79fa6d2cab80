//! Config loading tests. Each runs inside a `figment::Jail`: its own working directory and
//! environment, serialized with the other jailed tests, so env overrides never leak.

// figment::Jail closures return figment::Result, whose error is large; fine in tests.
#![allow(clippy::result_large_err)]

use std::path::{Path, PathBuf};

use agentd_llm::ProviderKind;
use figment::Jail;

use super::*;
use crate::commands::init::STARTER_CONFIG;

fn load(jail: &mut Jail, yaml: &str) -> Result<Config, ConfigError> {
    jail.create_file("agentd.yaml", yaml).expect("write config");
    Config::load(Path::new("agentd.yaml"))
}

fn error_text(jail: &mut Jail, yaml: &str) -> String {
    match load(jail, yaml) {
        Ok(config) => panic!("expected an error, loaded {config:?}"),
        Err(err) => err.to_string(),
    }
}

#[test]
fn starter_config_loads() {
    Jail::expect_with(|jail| {
        jail.set_env("OPENAI_API_KEY", "sk-from-env");
        let config = load(jail, STARTER_CONFIG).expect("starter config");
        assert_eq!(config.llm.provider, ProviderKind::Openai);
        assert_eq!(config.llm.model.as_deref(), Some("gpt-4o-mini"));
        assert_eq!(config.llm.max_tokens, 4096);
        assert_eq!(config.llm.cache_ttl_s, 3600);
        assert_eq!(
            config.llm.api_key.as_ref().map(|k| k.expose()),
            Some("sk-from-env")
        );
        assert_eq!(config.orchestrator, OrchestratorSettings::default());
        assert_eq!(config.agents["developer"].temperature, Some(0.1));
        assert_eq!(config.agents["tech_lead"].temperature, Some(0.0));
        assert_eq!(config.git.protected_branches, vec!["main".to_owned()]);
        assert_eq!(config.testing.timeout, 600);
        assert_eq!(
            config.deployment,
            agentd_deploy::DeploymentSettings::default()
        );
        assert_eq!(config.memory.backend, agentd_memory::BackendKind::Sqlite);
        // Relative to the config file's directory (here the jail's root).
        assert_eq!(config.memory.path, PathBuf::from(".agentd/memory.db"));
        Ok(())
    });
}

#[test]
fn empty_file_gives_defaults() {
    Jail::expect_with(|jail| {
        let config = load(jail, "# nothing but a comment\n").expect("empty config");
        assert_eq!(config.llm.provider, ProviderKind::Openai);
        assert_eq!(config.orchestrator.max_task_attempts, 3);
        assert!(config.agents.is_empty());
        Ok(())
    });
}

#[test]
fn expands_variables_with_and_without_defaults() {
    Jail::expect_with(|jail| {
        jail.set_env("MY_MODEL", "llama3.1:8b");
        let config = load(
            jail,
            "llm:\n  provider: openai_compatible\n  model: ${MY_MODEL}\n  base_url: ${OLLAMA_URL:-http://127.0.0.1:11434/v1}\n",
        )
        .expect("config");
        assert_eq!(config.llm.model.as_deref(), Some("llama3.1:8b"));
        assert_eq!(
            config.llm.base_url.as_deref(),
            Some("http://127.0.0.1:11434/v1")
        );
        Ok(())
    });
}

#[test]
fn unset_variable_names_the_key_the_variable_and_the_file() {
    Jail::expect_with(|jail| {
        let text = error_text(jail, "llm:\n  api_key: ${AGENTD_TEST_UNSET_KEY}\n");
        insta::assert_snapshot!(text, @"config file agentd.yaml, key `llm.api_key`: environment variable `AGENTD_TEST_UNSET_KEY` is not set (write `${AGENTD_TEST_UNSET_KEY:-default}` to give a default)");
        Ok(())
    });
}

#[test]
fn unknown_keys_are_errors_naming_key_and_file() {
    Jail::expect_with(|jail| {
        let top = error_text(jail, "lm:\n  model: x\n");
        assert!(top.contains("agentd.yaml"), "{top}");
        assert!(top.contains("unknown field: found `lm`"), "{top}");

        let nested = error_text(jail, "llm:\n  modle: gpt-4o\n");
        insta::assert_snapshot!(nested, @r"
        invalid configuration in agentd.yaml:
          - key `llm.modle` (from the file): unknown field: found `modle`, expected `one of `provider`, `api_key`, `model`, `base_url`, `temperature`, `max_tokens`, `cache_ttl_s`, `cache_max_entries`, `cassette`, `timeout_s`, `first_byte_timeout_s`, `max_retries`, `max_retry_wait_s`, `max_concurrency`, `prices``
        ");

        let role = error_text(jail, "agents:\n  developer:\n    temprature: 0.1\n");
        assert!(role.contains("key `agents.developer.temprature`"), "{role}");
        assert!(role.contains("`temprature`"), "{role}");
        Ok(())
    });
}

#[test]
fn wrong_types_name_the_key() {
    Jail::expect_with(|jail| {
        let text = error_text(
            jail,
            "llm:\n  max_tokens: lots\norchestrator:\n  max_task_attempts: -1\n",
        );
        assert!(
            text.contains("key `llm.max_tokens` (from the file)"),
            "{text}"
        );
        assert!(text.contains("string \"lots\""), "{text}");

        let deploy = error_text(jail, "deployment:\n  type: ftp\n");
        assert!(deploy.contains("key `deployment"), "{deploy}");
        assert!(deploy.contains("ci_cd"), "lists the valid types: {deploy}");

        let provider = error_text(jail, "llm:\n  provider: openia\n");
        assert!(provider.contains("key `llm.provider`"), "{provider}");
        assert!(
            provider.contains("openai_compatible"),
            "lists the valid values: {provider}"
        );
        Ok(())
    });
}

#[test]
fn env_overrides_win_over_the_file_and_are_not_expanded() {
    Jail::expect_with(|jail| {
        jail.set_env("AGENTD_LLM__MODEL", "gpt-4.1");
        jail.set_env("AGENTD_LLM__MAX_TOKENS", "123");
        jail.set_env("AGENTD_AGENTS__QA__TEMPERATURE", "0.7");
        jail.set_env("AGENTD_ORCHESTRATOR__CHECK_INTERVAL", "${NOT_EXPANDED}");
        let text = error_text(jail, "llm:\n  model: gpt-4o-mini\n");
        assert!(
            text.contains("key `orchestrator.check_interval` (from environment variable AGENTD_ORCHESTRATOR__CHECK_INTERVAL)"),
            "{text}"
        );

        jail.set_env("AGENTD_ORCHESTRATOR__CHECK_INTERVAL", "2.5");
        let config = load(jail, "llm:\n  model: gpt-4o-mini\n").expect("config");
        assert_eq!(config.llm.model.as_deref(), Some("gpt-4.1"));
        assert_eq!(config.llm.max_tokens, 123);
        assert_eq!(config.agents["qa"].temperature, Some(0.7));
        assert_eq!(config.orchestrator.check_interval, 2.5);
        Ok(())
    });
}

#[test]
fn agentd_variables_without_a_section_are_not_overrides() {
    Jail::expect_with(|jail| {
        jail.set_env("AGENTD_REQUIRE_ALL", "1");
        jail.set_env("AGENTD_CONFIG", "other.yaml");
        load(jail, "llm:\n  model: m\n").expect("unrelated AGENTD_ variables are ignored");
        Ok(())
    });
}

#[test]
fn invalid_yaml_reports_the_position() {
    Jail::expect_with(|jail| {
        let text = error_text(jail, "llm:\n  model: [unclosed\n");
        assert!(
            text.starts_with("config file agentd.yaml is not valid YAML"),
            "{text}"
        );
        assert!(text.contains("line"), "{text}");

        let scalar = error_text(jail, "just a string\n");
        assert!(
            scalar.contains("the top level must be a mapping"),
            "{scalar}"
        );
        Ok(())
    });
}

#[test]
fn missing_file_is_a_read_error_naming_it() {
    let err = Config::load(Path::new("/nonexistent/agentd.yaml")).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err.to_string().contains("/nonexistent/agentd.yaml"));
}

#[test]
fn relative_paths_are_relative_to_the_config_file() {
    Jail::expect_with(|jail| {
        jail.create_dir("conf")?;
        jail.create_file(
            "conf/agentd.yaml",
            "llm:\n  provider: replay\n  cassette: tapes/run.jsonl\n",
        )?;
        let config = Config::load(Path::new("conf/agentd.yaml")).expect("config");
        assert_eq!(
            config.llm.cassette,
            Some(PathBuf::from("conf/tapes/run.jsonl"))
        );

        jail.create_file(
            "conf/full.yaml",
            "file_system:\n  workspace_path: ws\nmemory:\n  path: db/agentd.db\ndeployment:\n  type: ci_cd\n  repo_path: repo\n",
        )?;
        let config = Config::load(Path::new("conf/full.yaml")).expect("config");
        assert_eq!(config.file_system.workspace_path, PathBuf::from("conf/ws"));
        assert_eq!(config.memory.path, PathBuf::from("conf/db/agentd.db"));
        match &config.deployment {
            agentd_deploy::DeploymentSettings::CiCd(ci) => {
                assert_eq!(ci.repo_path, PathBuf::from("conf/repo"))
            }
            other => panic!("expected ci_cd, got {other:?}"),
        }

        jail.create_file("conf/abs.yaml", "llm:\n  cassette: /srv/run.jsonl\n")?;
        let config = Config::load(Path::new("conf/abs.yaml")).expect("config");
        assert_eq!(config.llm.cassette, Some(PathBuf::from("/srv/run.jsonl")));
        Ok(())
    });
}

#[test]
fn the_api_key_never_shows_in_debug_output() {
    Jail::expect_with(|jail| {
        jail.set_env("SECRET_FOR_TEST", "test-key-0123456789abcdef");
        let config = load(jail, "llm:\n  api_key: ${SECRET_FOR_TEST}\n").expect("config");
        let debug = format!("{config:?}");
        assert!(!debug.contains("test-key-0123456789abcdef"), "{debug}");
        assert!(debug.contains("***"), "{debug}");
        Ok(())
    });
}
