//! Feed arbitrary bytes to the loader as `.gitlab-ci.yml`: it must return Ok or a
//! ConfigError, never panic, hang or blow up memory. Non-local includes get an offline
//! fetcher (no network from a fuzzer).
#![no_main]

use cijob::project::discover::ConfigLocation;
use cijob::load::include::fetch::{FetchError, Fetcher, Response};
use cijob::resolve::pipeline::{self as loader, LoadOptions};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

struct Offline;

impl Fetcher for Offline {
    fn get(&self, _url: &str, _headers: &[(&str, &str)]) -> Result<Response, FetchError> {
        Err(FetchError::Unreachable("offline (fuzzing)".into()))
    }
}

fn project() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("tempdir"))
}

fuzz_target!(|data: &[u8]| {
    let dir = project();
    let file = dir.path().join(".gitlab-ci.yml");
    std::fs::write(&file, data).expect("write");
    let options = LoadOptions {
        cache_dir: Some(dir.path().join("cache")),
        fetcher: Some(Arc::new(Offline)),
        ..LoadOptions::default()
    };
    let location = ConfigLocation {
        file,
        project_root: dir.path().to_path_buf(),
    };
    let _ = loader::load_with(&location, &options);
});
