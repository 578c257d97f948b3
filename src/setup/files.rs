//! The files `register` manages: what each must hold, and whether it still holds it.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::context::Context;
use crate::domain::snapshot::sha256_hex;
use crate::root::Root;
use crate::store::registration::Installed;
use crate::system::fsutil;

/// One file `register` manages, with the content it must have.
#[derive(Debug, Clone)]
pub struct Managed {
    pub path: PathBuf,
    pub content: Content,
}

/// What a managed file must hold.
#[derive(Debug, Clone)]
pub enum Content {
    File { text: String, mode: u32 },
    Link { target: String },
}

/// Whether a managed file is as `register` wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Intact,
    Missing,
    Modified,
}

impl State {
    /// Upper case, for the lines that need attention.
    pub fn upper(self) -> &'static str {
        match self {
            Self::Intact => "INTACT",
            Self::Missing => "MISSING",
            Self::Modified => "MODIFIED",
        }
    }
}

/// State of one managed file.
#[derive(Debug, Clone, Serialize)]
pub struct FileState {
    pub path: String,
    pub state: State,
}

/// An appliance path resolved within the root: no hook or unit is written through a linked
/// directory out of it.
pub fn at(ctx: &Context, abs: &str) -> Result<PathBuf> {
    ctx.root.inside(abs).with_context(|| format!("cannot resolve {abs}"))
}

/// The state of a file as the registration record describes it.
pub fn state_of(root_path: &Path, installed: &Installed) -> State {
    match (&installed.sha256, &installed.target) {
        (_, Some(target)) => match std::fs::read_link(root_path) {
            Ok(t) if t == Path::new(target) => State::Intact,
            Ok(_) => State::Modified,
            Err(_) if std::fs::symlink_metadata(root_path).is_ok() => State::Modified,
            Err(_) => State::Missing,
        },
        (Some(sha), None) => match fsutil::read_bounded(root_path) {
            Ok(bytes) if sha256_hex(&bytes) == *sha => State::Intact,
            Ok(_) => State::Modified,
            Err(_) if std::fs::symlink_metadata(root_path).is_ok() => State::Modified,
            Err(_) => State::Missing,
        },
        (None, None) => State::Modified,
    }
}

impl Managed {
    /// The record of this file as installed.
    pub fn installed(&self, root: &Root) -> Installed {
        let path = self
            .path
            .strip_prefix(root.dir())
            .map_or_else(|_| self.path.display().to_string(), |p| format!("/{}", p.display()));
        match &self.content {
            Content::File { text, .. } => Installed {
                path,
                sha256: Some(sha256_hex(text.as_bytes())),
                target: None,
            },
            Content::Link { target } => Installed {
                path,
                sha256: None,
                target: Some(target.clone()),
            },
        }
    }
}
