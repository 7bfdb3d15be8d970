//! Compile the example apps for wasm32-unknown-unknown with a nested cargo,
//! into their own target directory (the outer build holds the lock on the
//! workspace's), and copy the `.wasm` files into OUT_DIR.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The apps to build: (package, file name cargo gives the module).
const APPS: [(&str, &str); 3] =
    [("kv-store", "kv_store.wasm"), ("counter-handlers", "counter_handlers.wasm"), ("collab-text", "collab_text.wasm")];

const TARGET: &str = "wasm32-unknown-unknown";

/// The profile the apps are built with: release, small, no debug info.
const PROFILE: &str = "wasm-apps";

const PROFILE_SETTINGS: [&str; 7] = [
    "inherits=\"release\"",
    "opt-level=\"s\"",
    "lto=true",
    "codegen-units=1",
    "panic=\"abort\"",
    "debug=0",
    "strip=true",
];

fn fail(message: &str) -> ExitCode {
    // A build script reports failure through stderr and its exit status.
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn target_installed(rustc: &str) -> bool {
    let Ok(output) = Command::new(rustc).args(["--print", "sysroot"]).output() else { return false };
    let sysroot = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    Path::new(&sysroot).join("lib/rustlib").join(TARGET).join("lib").is_dir()
}

fn main() -> ExitCode {
    let Some(manifest_dir) = env("CARGO_MANIFEST_DIR") else { return fail("CARGO_MANIFEST_DIR is not set") };
    let Some(out_dir) = env("OUT_DIR") else { return fail("OUT_DIR is not set") };
    let workspace = PathBuf::from(&manifest_dir).join("../..");
    for watched in
        ["apps", "crates/sdk/src", "crates/sdk/Cargo.toml", "crates/sdk-macros/src", "crates/abi/src", "Cargo.lock"]
    {
        println!("cargo:rerun-if-changed={}", workspace.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");

    let rustc = env("RUSTC").unwrap_or_else(|| "rustc".to_owned());
    if !target_installed(&rustc) {
        return fail(
            "the wasm32-unknown-unknown target is not installed: run `rustup target add wasm32-unknown-unknown`",
        );
    }

    let target_root = env("CARGO_TARGET_DIR").map_or_else(|| workspace.join("target"), PathBuf::from);
    let target_dir = target_root.join("wasm-apps");
    let mut cargo = Command::new(env("CARGO").unwrap_or_else(|| "cargo".to_owned()));
    cargo.current_dir(&workspace).args(["build", "--locked", "--target", TARGET, "--profile", PROFILE]);
    cargo.arg("--target-dir").arg(&target_dir);
    for setting in PROFILE_SETTINGS {
        cargo.arg("--config").arg(format!("profile.{PROFILE}.{setting}"));
    }
    for (package, _) in APPS {
        cargo.args(["-p", package]);
    }
    // Flags meant for the host build (coverage instrumentation, clippy as
    // the workspace wrapper) must not reach the wasm build.
    for variable in
        ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS", "RUSTC_WORKSPACE_WRAPPER", "CARGO_TARGET_DIR"]
    {
        cargo.env_remove(variable);
    }
    match cargo.status() {
        Ok(status) if status.success() => {}
        Ok(status) => return fail(&format!("building the example apps for {TARGET} failed ({status})")),
        Err(error) => return fail(&format!("cannot run cargo to build the example apps: {error}")),
    }
    let built = target_dir.join(TARGET).join(PROFILE);
    for (_, file) in APPS {
        if let Err(error) = std::fs::copy(built.join(file), Path::new(&out_dir).join(file)) {
            return fail(&format!("cannot copy {file}: {error}"));
        }
    }
    ExitCode::SUCCESS
}
