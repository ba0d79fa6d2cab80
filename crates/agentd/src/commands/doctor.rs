//! `agentd doctor`: check each part the daemon depends on and say what is wrong.

use std::io::Write;
use std::path::Path;

use crate::config::Config;

/// The outcome of one check.
struct Check {
    name: &'static str,
    ok: bool,
    detail: String,
}

/// Runs every check, prints one line each, and returns whether all passed.
pub async fn run(config_path: &Path, out: &mut dyn Write) -> anyhow::Result<bool> {
    let mut checks = Vec::new();
    match Config::load(config_path) {
        Err(err) => checks.push(Check {
            name: "config",
            ok: false,
            detail: format!("{err:#}"),
        }),
        Ok(config) => {
            checks.push(Check {
                name: "config",
                ok: true,
                detail: format!(
                    "{} (provider {}, model {})",
                    config_path.display(),
                    config.llm.provider,
                    config
                        .llm
                        .model
                        .as_deref()
                        .or(config.llm.provider.default_model())
                        .unwrap_or("unset"),
                ),
            });
            checks.push(check_llm(&config).await);
        }
    }
    for check in &checks {
        let mark = if check.ok { "ok  " } else { "FAIL" };
        writeln!(out, "{mark} {:<8} {}", check.name, check.detail)?;
    }
    Ok(checks.iter().all(|check| check.ok))
}

async fn check_llm(config: &Config) -> Check {
    let detail = match agentd_llm::build_client(&config.llm) {
        Err(err) => Err(err.to_string()),
        Ok(llm) => match llm.client().probe().await {
            Ok(report) => Ok(format!(
                "{} at {}: {}",
                report.provider, report.endpoint, report.detail
            )),
            Err(err) => Err(err.to_string()),
        },
    };
    match detail {
        Ok(detail) => Check {
            name: "llm",
            ok: true,
            detail,
        },
        Err(detail) => Check {
            name: "llm",
            ok: false,
            detail,
        },
    }
}
