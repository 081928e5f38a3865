//! The dedicated tenants' own files in a whole-node backup: taken beside the copy of the
//! shared file, listed, checked and put back (see the module docs of `backup` for the layout
//! and what a backup of a node with tenant files is consistent to).
//!
//! Invariants, and why:
//! - The set of tenant files a backup must have is the set its copy of the shared file routes
//!   to (its registry's dedicated tenants and their newest promotions): that copy is covered
//!   by the SHA-256 in `backups` and beside it, so a missing part is always found. The
//!   `SHA256SUMS` beside the parts records the set too, with each part's SHA-256, for `list`
//!   (which does not open copies) and for `sha256sum -c`.
//! - A part is used only after it hashes as its `.sha256` and `SHA256SUMS` record, SQLite
//!   finds it whole, and it is that tenant's own file of the node the backup is of.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use super::error::BackupError;
use super::node::{inspect_copy, recorded_checksum};
use super::snapshot::{sha256_file, sync_dir};
use super::{checksum_path, BackupFile};
use crate::ids::{RowId, TenantId};
use crate::store::homes::{dedicated_routes, file_tenant, homes_dir};

/// The file beside the parts that lists each with its SHA-256 (`sha256sum` format).
pub(crate) const MANIFEST: &str = "SHA256SUMS";

/// One dedicated tenant's own file, copied into a whole-node backup.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TenantFileCopy {
    /// The tenant.
    pub tenant: TenantId,
    /// The copy (in `<backup>.tenants/`), its SHA-256 and size.
    pub file: BackupFile,
}

/// One tenant file of a backup as its `SHA256SUMS` lists it.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TenantFilePart {
    /// The tenant its name names, if it names one.
    pub tenant: Option<TenantId>,
    /// The copy.
    pub path: PathBuf,
    /// Its SHA-256 as recorded.
    pub sha256: String,
    /// Whether the file is there now.
    pub present: bool,
}

/// What [`super::verify`] found about one tenant file of a backup.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TenantFileCheck {
    /// The tenant.
    pub tenant: TenantId,
    /// The copy.
    pub path: PathBuf,
    /// Its SHA-256 as hashed now, if it could be read.
    pub sha256: Option<String>,
    /// What is wrong with it; `None` when it hashes as recorded and is that tenant's file,
    /// whole.
    pub problem: Option<String>,
}

/// One tenant file put back by [`super::restore`].
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RestoredTenantFile {
    /// The tenant.
    pub tenant: TenantId,
    /// The copy in the backup it was restored from.
    pub backup: PathBuf,
    /// The copy's SHA-256, checked before anything was changed.
    pub sha256: String,
    /// Where the tenant lives now: its own file in `<db>.tenants/`, named by its route.
    pub path: PathBuf,
}

/// The directory of a backup's tenant files: `<backup>.tenants`, laid out as a node's homes
/// directory is beside its shared file.
pub(crate) fn parts_dir(backup: &Path) -> PathBuf {
    homes_dir(backup)
}

/// A part that passed every check.
#[derive(Debug, Clone)]
pub(crate) struct CheckedPart {
    pub(crate) tenant: TenantId,
    /// Its name (the route's file), in the backup and, if free, in the node.
    pub(crate) name: String,
    pub(crate) path: PathBuf,
    pub(crate) sha256: String,
}

/// Every part a backup should have, each checked, and what is wrong with the set.
pub(crate) struct PartsCheck {
    /// (tenant, path, SHA-256 as hashed now, the check's outcome), in tenant order.
    pub(crate) parts: Vec<(CheckedPart, Result<(), BackupError>)>,
    /// A route without a file, a missing `SHA256SUMS`, or one listing other files.
    pub(crate) set: Option<BackupError>,
}

impl PartsCheck {
    /// The parts, or the first problem found.
    pub(crate) fn into_result(self) -> Result<Vec<CheckedPart>, BackupError> {
        if let Some(e) = self.set {
            return Err(e);
        }
        self.parts
            .into_iter()
            .map(|(part, result)| result.map(|()| part))
            .collect()
    }

    /// The checks for a report.
    pub(crate) fn reports(&self) -> Vec<TenantFileCheck> {
        self.parts
            .iter()
            .map(|(part, result)| TenantFileCheck {
                tenant: part.tenant.clone(),
                path: part.path.clone(),
                sha256: (!part.sha256.is_empty()).then(|| part.sha256.clone()),
                problem: result.as_ref().err().map(ToString::to_string),
            })
            .collect()
    }

    /// One line saying what is wrong, or `None`.
    pub(crate) fn problem(&self) -> Option<String> {
        let mut problems: Vec<String> = Vec::new();
        if let Some(e) = &self.set {
            problems.push(e.to_string());
        }
        for (part, result) in &self.parts {
            if let Err(e) = result {
                problems.push(format!("tenant {}'s file: {e}", part.tenant));
            }
        }
        (!problems.is_empty()).then(|| problems.join("; "))
    }
}

/// Checks the tenant files of the backup `backup`, whose copy of the shared file was taken on
/// node `node_id` at schema version `version` (the caller has checked that copy). A backup
/// whose copy routes no tenant to a file of its own has none (every backup taken before
/// tenant files existed); `Err` only when the copy's routes cannot be read.
pub(crate) fn check_parts(
    backup: &Path,
    node_id: RowId,
    version: i64,
) -> Result<PartsCheck, BackupError> {
    let routes = {
        let conn = Connection::open_with_flags(
            backup,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .and_then(|c| dedicated_routes(&c));
        conn.map_err(|e| BackupError::NotANode {
            path: backup.to_path_buf(),
            reason: format!("cannot read its tenants' routes: {e}"),
        })?
    };
    let dir = parts_dir(backup);
    let manifest_path = dir.join(MANIFEST);
    let manifest = read_manifest(&manifest_path);
    let set_problem = |reason: String| BackupError::TenantFiles {
        path: backup.to_path_buf(),
        reason,
    };
    let mut set = None;
    let mut parts = Vec::new();
    let mut named: Vec<String> = Vec::new();
    for (tenant, file) in routes {
        let Some(name) = file else {
            set.get_or_insert(set_problem(format!(
                "its registry says tenant {tenant} has a file of its own, but no promotion \
                 names one"
            )));
            continue;
        };
        named.push(name.clone());
        let path = dir.join(&name);
        let listed = match &manifest {
            Ok(lines) => Some(lines.iter().find(|(_, n)| *n == name).map(|(s, _)| s)),
            Err(_) => None,
        };
        let mut part = CheckedPart {
            tenant: tenant.clone(),
            name,
            path: path.clone(),
            sha256: String::new(),
        };
        let result = (|| {
            if !path.is_file() {
                return Err(BackupError::NotFound { path: path.clone() });
            }
            let (found, _) = sha256_file(&path).map_err(|e| BackupError::NotANode {
                path: path.clone(),
                reason: format!("cannot read it: {e}"),
            })?;
            part.sha256.clone_from(&found);
            let beside = recorded_checksum(&path)?;
            if beside != found {
                return Err(BackupError::ChecksumMismatch {
                    path: path.clone(),
                    recorded_in: checksum_path(&path).display().to_string(),
                    expected: beside,
                    found,
                });
            }
            match listed {
                Some(Some(sha)) if *sha != found => {
                    return Err(BackupError::ChecksumMismatch {
                        path: path.clone(),
                        recorded_in: manifest_path.display().to_string(),
                        expected: sha.clone(),
                        found,
                    })
                }
                Some(None) => {
                    return Err(set_problem(format!(
                        "{} does not list {}",
                        manifest_path.display(),
                        path.display()
                    )))
                }
                _ => {}
            }
            let info = inspect_copy(&path)?;
            let not_its = |reason: String| BackupError::TenantFiles {
                path: path.clone(),
                reason,
            };
            match &info.tenant_file {
                Some(owner) if *owner == tenant => {}
                Some(owner) => return Err(not_its(format!("it is tenant {owner}'s own file"))),
                None => return Err(not_its("it is not a tenant's own file".into())),
            }
            if info.node_id != node_id {
                return Err(not_its(format!(
                    "it belongs to node {}, the backup to node {node_id}",
                    info.node_id
                )));
            }
            if info.schema_version != version {
                return Err(not_its(format!(
                    "it is at schema version {}, the backup at {version}",
                    info.schema_version
                )));
            }
            Ok(())
        })();
        parts.push((part, result));
    }
    match manifest {
        Ok(lines) => {
            let extra: Vec<&str> = lines
                .iter()
                .map(|(_, n)| n.as_str())
                .filter(|n| !named.iter().any(|m| m == n))
                .collect();
            if !extra.is_empty() {
                set.get_or_insert(set_problem(format!(
                    "{} lists {}, which its registry routes no tenant to",
                    manifest_path.display(),
                    extra.join(", ")
                )));
            }
        }
        Err(reason) if !named.is_empty() => {
            set.get_or_insert(set_problem(format!(
                "its registry routes {} tenants to files of their own, but {reason}",
                named.len()
            )));
        }
        Err(_) => {}
    }
    Ok(PartsCheck { parts, set })
}

/// The lines of a `SHA256SUMS`: (SHA-256, file name); the reason it cannot be read.
fn read_manifest(path: &Path) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{} cannot be read: {e}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (sha, name) = line
                .split_once("  ")
                .ok_or_else(|| format!("{}: a line is not `<sha256>  <file>`", path.display()))?;
            if sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!(
                    "{}: a line does not start with a SHA-256",
                    path.display()
                ));
            }
            Ok((sha.to_ascii_lowercase(), name.to_owned()))
        })
        .collect()
}

/// The parts a backup's `SHA256SUMS` lists (none when it has none, or it cannot be read).
pub(crate) fn listed_parts(backup: &Path) -> Vec<TenantFilePart> {
    let dir = parts_dir(backup);
    read_manifest(&dir.join(MANIFEST))
        .unwrap_or_default()
        .into_iter()
        .map(|(sha256, name)| {
            let path = dir.join(&name);
            TenantFilePart {
                tenant: file_tenant(&name),
                present: path.is_file(),
                path,
                sha256,
            }
        })
        .collect()
}

/// Writes `SHA256SUMS` for the parts, whole under a temporary name, renamed, and the
/// directory synced (as a `.sha256` is written).
pub(crate) fn write_manifest(dir: &Path, parts: &[TenantFileCopy]) -> std::io::Result<()> {
    let mut text = String::new();
    for part in parts {
        let name = part
            .file
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        text.push_str(&format!("{}  {name}\n", part.file.sha256));
    }
    let path = dir.join(MANIFEST);
    let partial = dir.join(format!("{MANIFEST}.partial"));
    {
        let mut out = std::fs::File::create(&partial)?;
        std::io::Write::write_all(&mut out, text.as_bytes())?;
        out.sync_all()?;
    }
    std::fs::rename(&partial, &path)?;
    sync_dir(&path)
}

/// Removes a backup's tenant files (best effort): the parts named like tenant files, their
/// `.sha256`, `SHA256SUMS`, and the directory if nothing else is left in it.
pub(crate) fn remove_parts(backup: &Path) {
    let dir = parts_dir(backup);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let base = name
            .strip_suffix(".sha256")
            .or_else(|| name.strip_suffix(".partial"))
            .unwrap_or(&name);
        if base == MANIFEST || file_tenant(base).is_some() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let _ = std::fs::remove_dir(&dir);
}
