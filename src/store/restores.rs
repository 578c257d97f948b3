//! What each restore wrote, recorded in the state directory (`restores/ID.json`), so `undo` can
//! put the files back and `prune-backups` knows which `.org.STAMP` backups are the tool's own.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::domain::rule::Family;
use crate::root::Root;
use crate::system::fsutil;

/// One file a restore replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoredFile {
    /// Appliance path.
    pub path: String,
    /// The backup of the file as it was before (host path), `None` when the restore created it.
    pub backup: Option<PathBuf>,
    /// SHA-256 of what the restore wrote.
    pub written_sha256: String,
}

/// A rule the restore put back, as `iptables -S` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoredRule {
    pub canonical: String,
    pub family: Option<Family>,
}

/// The record of one restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreRecord {
    /// `STAMP` of the restore (the backups' suffix), unique in the directory.
    pub id: String,
    /// RFC 3339 UTC.
    pub when: String,
    /// The snapshot or tree restored from.
    pub from: String,
    /// The live version restored onto.
    pub version: String,
    pub files: Vec<RestoredFile>,
    pub rules: Vec<RestoredRule>,
    /// The sysctl lines the restore wrote (its edits of sysctl files).
    #[serde(default)]
    pub sysctl: Vec<String>,
    /// When `undo` put the files back.
    #[serde(default)]
    pub undone: Option<String>,
    /// The backups `undo` took of the files as the restore left them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub undo_backups: Vec<PathBuf>,
}

impl RestoreRecord {
    /// Whether `backup` is a backup the tool takes of the file `path` under `root`:
    /// `PATH.org.STAMP[.N]` beside it. A record naming anything else (a record someone edited)
    /// is never followed.
    pub fn is_backup_of(root: &Root, path: &str, backup: &Path) -> bool {
        let Ok(file) = root.inside(path).and_then(std::path::absolute) else {
            return false;
        };
        let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else {
            return false;
        };
        let prefix = format!("{}.org.", name.to_string_lossy());
        backup.parent() == Some(dir)
            && backup
                .file_name()
                .is_some_and(|b| b.to_string_lossy().starts_with(&prefix) && !b.to_string_lossy().contains('/'))
    }

    /// Every backup this record knows (the restore's and its undo's) that is the tool's own.
    pub fn backups(&self, root: &Root) -> Vec<PathBuf> {
        let candidates = self
            .files
            .iter()
            .filter_map(|f| f.backup.as_deref())
            .chain(self.undo_backups.iter().map(PathBuf::as_path));
        candidates
            .filter(|b| {
                let own = self.files.iter().any(|f| Self::is_backup_of(root, &f.path, b));
                if !own {
                    log::warn!(
                        "restore record {} names {}, not a backup of its files; ignored",
                        self.id,
                        b.display()
                    );
                }
                own
            })
            .map(Path::to_path_buf)
            .collect()
    }
}

/// The records in `STATE/restores/`.
pub struct Restores {
    dir: PathBuf,
}

impl Restores {
    pub fn at(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// Where the record `id` is kept.
    pub fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Saves (or replaces) a record, 0600.
    pub fn save(&self, record: &RestoreRecord) -> Result<()> {
        super::save_json(&self.dir, &self.path(&record.id), record)
    }

    /// Every record, oldest first; a record that cannot be read is an error naming it.
    pub fn all(&self) -> Result<Vec<RestoreRecord>> {
        let mut out: Vec<RestoreRecord> = Vec::new();
        for entry in fsutil::list_dir(&self.dir)? {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json") {
                out.push(super::load_json(&path)?.with_context(|| format!("{} is gone", path.display()))?);
            }
        }
        out.sort_by(|a, b| (&a.when, &a.id).cmp(&(&b.when, &b.id)));
        Ok(out)
    }

    /// The newest restore not undone yet.
    pub fn last(&self) -> Result<Option<RestoreRecord>> {
        Ok(self.all()?.into_iter().rev().find(|r| r.undone.is_none()))
    }
}
