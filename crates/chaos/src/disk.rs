//! The disk-full fault: one daemon's data directory on a small tmpfs whose
//! size the harness shrinks to what is in use (every further write fails
//! with "no space left on device") and grows back.
//!
//! Mounting needs root; when it fails, the fault is left out of the run and
//! the summary says so.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

/// The tmpfs's size when space is available.
const ROOMY_BYTES: u64 = 512 * 1024 * 1024;
/// Slack left when the disk is "full": smaller than one commit.
const FULL_SLACK_BYTES: u64 = 4096;

/// A mounted small disk.
#[derive(Debug)]
pub struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    /// Mount a tmpfs at `path` (created if missing).
    pub fn mount(path: &Path) -> anyhow::Result<SmallDisk> {
        std::fs::create_dir_all(path)?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={ROOMY_BYTES},mode=0700"), "tmpfs"])
            .arg(path)
            .status()
            .context("running mount")?;
        if !status.success() {
            bail!("mount -t tmpfs {} failed: {status}", path.display());
        }
        Ok(SmallDisk { path: path.to_owned() })
    }

    /// Shrink the disk to what it holds now (plus a little: the daemon may
    /// write between the measure and the resize, and a tmpfs refuses to
    /// shrink below what it holds, so larger slacks are tried in turn).
    pub fn fill(&self) -> anyhow::Result<()> {
        let mut last = None;
        for slack in [FULL_SLACK_BYTES, 64 * 1024, 1024 * 1024, 16 * 1024 * 1024] {
            let used = self.used_bytes()?;
            match self.resize(used + slack) {
                Ok(()) => return Ok(()),
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("could not fill the disk")))
    }

    /// Give the space back.
    pub fn free(&self) -> anyhow::Result<()> {
        self.resize(ROOMY_BYTES)
    }

    /// Unmount (at the end of the run).
    pub fn unmount(self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }

    fn resize(&self, bytes: u64) -> anyhow::Result<()> {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={bytes}")])
            .arg(&self.path)
            .stderr(std::process::Stdio::null())
            .status()
            .context("running mount -o remount")?;
        if !status.success() {
            bail!("resizing the tmpfs at {} failed: {status}", self.path.display());
        }
        Ok(())
    }

    fn used_bytes(&self) -> anyhow::Result<u64> {
        let output = Command::new("df").args(["--output=used", "-B1"]).arg(&self.path).output()?;
        let text = String::from_utf8_lossy(&output.stdout);
        text.lines().nth(1).and_then(|l| l.trim().parse().ok()).with_context(|| format!("df said {text:?}"))
    }
}
