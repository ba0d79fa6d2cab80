//! `agentd init [DIR]`: write a commented starter `agentd.yaml`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The starter configuration, with a comment on every key.
pub const STARTER_CONFIG: &str = include_str!("../starter.yaml");

/// Writes `dir/agentd.yaml` atomically. An existing file is kept unless `force` is set,
/// and the file never appears half-written (temp file + fsync + rename).
pub fn run(dir: &Path, force: bool, out: &mut dyn Write) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))?;
    let target = dir.join("agentd.yaml");
    let mut temp = tempfile::Builder::new()
        .prefix(".agentd.yaml.")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    temp.write_all(STARTER_CONFIG.as_bytes())?;
    temp.as_file().sync_all()?;
    if force {
        temp.persist(&target)
            .with_context(|| format!("cannot write {}", target.display()))?;
    } else if let Err(err) = temp.persist_noclobber(&target) {
        if err.error.kind() == std::io::ErrorKind::AlreadyExists {
            bail!(
                "{} already exists; pass --force to overwrite it",
                target.display()
            );
        }
        return Err(err.error).with_context(|| format!("cannot write {}", target.display()));
    }
    writeln!(out, "wrote {}", target.display())?;
    writeln!(
        out,
        "next: set OPENAI_API_KEY (or edit the llm section), then `agentd doctor`"
    )?;
    Ok(target)
}
