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

/// The state of a file as the registration record describes it.
pub fn state_of(root_path: &Path, installed: &Installed) -> State {
    let holds = match (&installed.sha256, &installed.target) {
        (_, Some(target)) => std::fs::read_link(root_path).ok().map(|t| t == Path::new(target)),
        (Some(sha), None) => fsutil::read_bounded(root_path)
            .ok()
            .map(|bytes| sha256_hex(&bytes) == *sha),
        (None, None) => return State::Modified,
    };
    match holds {
        Some(true) => State::Intact,
        Some(false) => State::Modified,
        // Something there that cannot be read as what it should be (a file for a link).
        None if std::fs::symlink_metadata(root_path).is_ok() => State::Modified,
        None => State::Missing,
    }
}

impl Managed {
    /// `content` at the appliance path `abs`, resolved within the root: no hook or unit is
    /// written through a linked directory out of it.
    fn at(ctx: &Context, abs: &str, content: Content) -> Result<Self> {
        let path = ctx.root.inside(abs).with_context(|| format!("cannot resolve {abs}"))?;
        Ok(Self { path, content })
    }

    /// A file at the appliance path `abs`, holding `text`.
    pub fn file(ctx: &Context, abs: &str, text: String, mode: u32) -> Result<Self> {
        Self::at(ctx, abs, Content::File { text, mode })
    }

    /// A symbolic link at the appliance path `abs` to `target`.
    pub fn link(ctx: &Context, abs: &str, target: &str) -> Result<Self> {
        Self::at(ctx, abs, Content::Link { target: target.into() })
    }

    /// The record of this file as installed.
    pub fn installed(&self, root: &Root) -> Installed {
        let path = self
            .path
            .strip_prefix(root.dir())
            .map_or_else(|_| self.path.display().to_string(), |p| format!("/{}", p.display()));
        let (sha256, target) = match &self.content {
            Content::File { text, .. } => (Some(sha256_hex(text.as_bytes())), None),
            Content::Link { target } => (None, Some(target.clone())),
        };
        Installed { path, sha256, target }
    }
}
