//! Repository creation, branches, tags and history: all gix.

use std::path::Path;

use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
use gix::refs::{FullName, Target};

use super::{head_state, open_repo, repo_info, resolve_commit, short_branch};
use crate::error::{Result, VcsError};
use crate::settings::VcsSettings;
use crate::types::{BranchInfo, CommitInfo, RepoInfo};

/// The author and committer signature for a new object, stamped now.
pub(crate) fn signature(settings: &VcsSettings) -> gix::actor::Signature {
    gix::actor::Signature {
        name: settings.author_name.as_str().into(),
        email: settings.author_email.as_str().into(),
        time: gix::date::Time::now_local_or_utc(),
    }
}

/// `refs/heads/<name>`, validated. Names starting with `-` are refused so that they can never
/// be mistaken for options by the `git` program.
pub(crate) fn branch_ref_name(name: &str) -> Result<FullName> {
    let invalid = || VcsError::InvalidRefName {
        name: name.to_owned(),
    };
    if name.is_empty() || name.starts_with('-') || name.starts_with("refs/") {
        return Err(invalid());
    }
    FullName::try_from(format!("refs/heads/{name}")).map_err(|_| invalid())
}

/// Moves (or creates) reference `name` to `new`, provided it currently is `expected`.
pub(crate) fn update_ref(
    settings: &VcsSettings,
    repo: &gix::Repository,
    name: FullName,
    new: gix::ObjectId,
    expected: PreviousValue,
    reflog_message: &str,
) -> Result<()> {
    let operation = format!("update reference {}", name.as_bstr());
    let edit = RefEdit {
        change: Change::Update {
            log: LogChange {
                mode: RefLog::AndReference,
                force_create_reflog: false,
                message: reflog_message.into(),
            },
            expected,
            new: Target::Object(new),
        },
        name,
        deref: false,
    };
    let committer = signature(settings);
    let mut time_buf = gix::date::parse::TimeBuf::default();
    repo.edit_references_as([edit], Some(committer.to_ref(&mut time_buf)))
        .map_err(VcsError::gix(operation))?;
    Ok(())
}

pub(crate) fn init(settings: &VcsSettings, path: &Path) -> Result<RepoInfo> {
    let not_empty = path
        .read_dir()
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    if not_empty {
        return Err(VcsError::DestinationNotEmpty {
            path: path.to_path_buf(),
        });
    }
    let repo = gix::init(path).map_err(VcsError::gix(format!("init {}", path.display())))?;
    let head_target = branch_ref_name(&settings.initial_branch)?;
    let head_target_name = head_target.clone();
    let edit = RefEdit {
        change: Change::Update {
            log: LogChange::default(),
            expected: PreviousValue::Any,
            new: Target::Symbolic(head_target),
        },
        name: FullName::try_from("HEAD").map_err(VcsError::gix("name HEAD"))?,
        deref: false,
    };
    repo.edit_references_as([edit], None)
        .map_err(VcsError::gix("point HEAD at the initial branch"))?;
    // A root commit lets feature branches start at once, even when the initial branch is
    // protected (and so could never receive a first commit).
    let empty_tree = repo
        .write_object(gix::objs::Tree::empty())
        .map_err(VcsError::gix("write the empty tree"))?
        .detach();
    let root = super::commit::write_commit(
        settings,
        &repo,
        empty_tree,
        Vec::new(),
        "Initialize repository\n",
    )?;
    update_ref(
        settings,
        &repo,
        head_target_name,
        root,
        PreviousValue::MustNotExist,
        "commit (initial): Initialize repository",
    )?;
    repo_info(&open_repo(path)?)
}

/// The commit a local branch points to.
pub(crate) fn branch_id(repo: &gix::Repository, name: &str) -> Result<gix::ObjectId> {
    let full_name = branch_ref_name(name)?;
    let mut reference = repo
        .try_find_reference(full_name.as_ref())
        .map_err(VcsError::gix(format!("find branch {name}")))?
        .ok_or_else(|| VcsError::RevisionNotFound {
            rev: name.to_owned(),
        })?;
    let id = reference
        .peel_to_id()
        .map_err(VcsError::gix(format!("peel branch {name}")))?;
    Ok(id.detach())
}

pub(crate) fn create_branch(
    settings: &VcsSettings,
    repo: &gix::Repository,
    name: &str,
    start: Option<&str>,
) -> Result<()> {
    let full_name = branch_ref_name(name)?;
    let exists = repo
        .try_find_reference(full_name.as_ref())
        .map_err(VcsError::gix(format!("find branch {name}")))?
        .is_some();
    if exists {
        return Err(VcsError::AlreadyExists {
            name: full_name.as_bstr().to_string(),
        });
    }
    let start_rev = start.unwrap_or("HEAD");
    let target = resolve_commit(repo, start_rev)?;
    update_ref(
        settings,
        repo,
        full_name,
        target,
        PreviousValue::MustNotExist,
        &format!("branch: Created from {start_rev}"),
    )
}

pub(crate) fn list_branches(repo: &gix::Repository) -> Result<Vec<BranchInfo>> {
    let (current, _) = head_state(repo)?;
    let platform = repo
        .references()
        .map_err(VcsError::gix("list references"))?;
    let mut branches = Vec::new();
    for reference in platform
        .local_branches()
        .map_err(VcsError::gix("list local branches"))?
    {
        let mut reference = reference.map_err(|err| VcsError::Gix {
            operation: "read a local branch".to_owned(),
            source: Box::new(err),
        })?;
        let full_name = reference.name().as_bstr().to_string();
        let id = reference
            .peel_to_id()
            .map_err(VcsError::gix(format!("peel {full_name}")))?;
        branches.push(BranchInfo {
            name: short_branch(&full_name).to_owned(),
            head: id.to_string(),
            is_current: current.as_deref() == Some(full_name.as_str()),
        });
    }
    branches.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(branches)
}

pub(crate) fn delete_branch(repo: &gix::Repository, name: &str) -> Result<()> {
    let full_name = branch_ref_name(name)?;
    let (current, _) = head_state(repo)?;
    if current.as_deref() == Some(full_name.as_bstr().to_string().as_str()) {
        return Err(VcsError::BranchCheckedOut {
            branch: name.to_owned(),
            worktree: super::workdir(repo)?,
        });
    }
    let reference = repo
        .try_find_reference(full_name.as_ref())
        .map_err(VcsError::gix(format!("find branch {name}")))?
        .ok_or_else(|| VcsError::RevisionNotFound {
            rev: name.to_owned(),
        })?;
    reference
        .delete()
        .map_err(VcsError::gix(format!("delete branch {name}")))
}

pub(crate) fn log(
    repo: &gix::Repository,
    rev: Option<&str>,
    limit: usize,
) -> Result<Vec<CommitInfo>> {
    let start = match rev {
        Some(rev) => resolve_commit(repo, rev)?,
        None => match head_state(repo)?.1 {
            Some(id) => id,
            None => return Ok(Vec::new()),
        },
    };
    let walk = repo
        .rev_walk([start])
        .all()
        .map_err(VcsError::gix("walk history"))?;
    let mut commits = Vec::new();
    for info in walk.take(limit) {
        let info = info.map_err(VcsError::gix("walk history"))?;
        let commit = info
            .object()
            .map_err(VcsError::gix(format!("read commit {}", info.id)))?;
        commits.push(commit_info(&commit)?);
    }
    Ok(commits)
}

pub(crate) fn commit_info(commit: &gix::Commit<'_>) -> Result<CommitInfo> {
    let id = commit.id;
    let decoded = commit
        .decode()
        .map_err(VcsError::gix(format!("decode commit {id}")))?;
    let message = decoded.message.to_string();
    let time = commit
        .time()
        .map_err(VcsError::gix(format!("read time of commit {id}")))?
        .seconds;
    let author = decoded
        .author()
        .map_err(VcsError::gix(format!("read author of {id}")))?;
    Ok(CommitInfo {
        id: id.to_string(),
        parents: decoded.parents().map(|p| p.to_string()).collect(),
        author_name: author.name.to_string(),
        author_email: author.email.to_string(),
        time,
        summary: message.lines().next().unwrap_or_default().to_owned(),
        message,
    })
}

pub(crate) fn tag(
    settings: &VcsSettings,
    repo: &gix::Repository,
    name: &str,
    rev: &str,
    message: Option<&str>,
) -> Result<String> {
    let invalid = || VcsError::InvalidRefName {
        name: name.to_owned(),
    };
    if name.is_empty() || name.starts_with('-') {
        return Err(invalid());
    }
    let full_name = FullName::try_from(format!("refs/tags/{name}")).map_err(|_| invalid())?;
    if repo
        .try_find_reference(full_name.as_ref())
        .map_err(VcsError::gix(format!("find tag {name}")))?
        .is_some()
    {
        return Err(VcsError::AlreadyExists {
            name: full_name.as_bstr().to_string(),
        });
    }
    let target = resolve_commit(repo, rev)?;
    let reference = match message {
        Some(message) => {
            let tagger = signature(settings);
            let mut time_buf = gix::date::parse::TimeBuf::default();
            repo.tag(
                name,
                target,
                gix::object::Kind::Commit,
                Some(tagger.to_ref(&mut time_buf)),
                ensure_trailing_newline(message),
                PreviousValue::MustNotExist,
            )
            .map_err(VcsError::gix(format!("create tag {name}")))?
        }
        None => repo
            .tag_reference(name, target, PreviousValue::MustNotExist)
            .map_err(VcsError::gix(format!("create tag {name}")))?,
    };
    Ok(reference.id().to_string())
}

pub(crate) fn ensure_trailing_newline(text: &str) -> String {
    if text.ends_with('\n') {
        text.to_owned()
    } else {
        format!("{text}\n")
    }
}
