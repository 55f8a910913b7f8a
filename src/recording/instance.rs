//! Which parley this is: an [`InstanceId`] generated once per data directory (the file `instance-id` in
//! `PARLEY_DATA_DIR`, a UUID on one line, created on the first start and read on every later one).
//!
//! Several instances may share one database, each with its own data directory and so its own spool. A
//! recording waiting to be stored names the instance whose spool holds its file, so an instance stores (or
//! gives up on) only its own, and answers a link to another's still-spooled recording with "not yet" rather
//! than "no such recording". Copying a data directory copies its identity: two running instances must not
//! share one (they would also share the SQLite file and the generated keys).

use std::fs;
use std::io::Write as _;
use std::path::Path;

use crate::db::InstanceId;

/// File name of the instance id inside the data directory.
pub const INSTANCE_ID_FILE: &str = "instance-id";

/// Why the instance id could not be read or created (reported at start-up; nothing runs without one).
#[derive(Debug, thiserror::Error)]
pub enum InstanceIdError {
    #[error("cannot read or create the instance id {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path} does not hold an instance id (a UUID); remove it to have a new one generated")]
    Malformed { path: String },
}

/// The id of the instance that owns `data_dir`: read from its `instance-id` file, or generated into it.
pub fn load_or_create(data_dir: &Path) -> Result<InstanceId, InstanceIdError> {
    let path = data_dir.join(INSTANCE_ID_FILE);
    let shown = path.display().to_string();
    let io = |source| InstanceIdError::Io { path: shown.clone(), source };
    match fs::read_to_string(&path) {
        Ok(text) => text.parse().map_err(|_| InstanceIdError::Malformed { path: shown.clone() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(data_dir).map_err(io)?;
            let id = InstanceId::generate();
            // create_new: of two processes racing on a fresh directory, one writes and the other reads its id.
            match fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    file.write_all(format!("{id}\n").as_bytes()).map_err(io)?;
                    file.sync_all().map_err(io)?;
                    log::info!("generated instance id {id} in {shown}");
                    Ok(id)
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create(data_dir),
                Err(e) => Err(io(e)),
            }
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_created_once_and_read_back_on_every_later_start() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = load_or_create(&data).unwrap();
        let text = fs::read_to_string(data.join(INSTANCE_ID_FILE)).unwrap();
        assert_eq!(text, format!("{first}\n"));
        assert_eq!(load_or_create(&data).unwrap(), first, "the same directory, the same instance");
        let other = tempfile::tempdir().unwrap();
        assert_ne!(load_or_create(other.path()).unwrap(), first, "another directory, another instance");
    }

    #[test]
    fn a_file_that_holds_no_uuid_is_an_error_naming_it_not_a_new_identity() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(INSTANCE_ID_FILE), "hello\n").unwrap();
        let e = load_or_create(dir.path()).unwrap_err();
        assert!(matches!(e, InstanceIdError::Malformed { .. }), "{e}");
        assert!(e.to_string().contains(INSTANCE_ID_FILE), "{e}");
        assert_eq!(fs::read_to_string(dir.path().join(INSTANCE_ID_FILE)).unwrap(), "hello\n", "left as it was");
    }
}
