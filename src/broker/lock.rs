//! One broker per SQLite store: the broker lock.
//!
//! # Design note
//! A SQLite store serves one broker (ICD §12): two brokers on one file would
//! each run delivery loops over the same deliveries. So `porter broker` (and
//! `porter demo`) take an exclusive, non-blocking OS lock (`flock`, through
//! `std::fs::File::try_lock`) on a lock file beside the database,
//! `<db>.broker-lock`, and hold it for as long as they run. A second broker
//! finds it taken and stops at once, with an error that names the SQLite
//! file and says another broker holds it.
//!
//! - **Not a PID file.** The OS drops the lock when the process dies, however
//!   it dies, so a SIGKILLed broker can be started again at once; nothing
//!   stale is left to clean up. The lock file itself stays (it is empty).
//! - **Not a database lock.** The lock is on the side file, never on the
//!   database, so other commands (and tests) that open the store still do
//!   while a broker runs; SQLite's own locking orders their writes.
//! - **PostgreSQL** needs no such lock here: its stores are told apart by
//!   URL and schema, and running several brokers on one is an open point.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// The held lock of one SQLite store; dropping it (or the process ending)
/// releases it.
#[derive(Debug)]
pub struct BrokerLock {
    _file: File,
    path: PathBuf,
}

/// Why the broker may not use the store.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another Porter broker holds the SQLite store {}: its lock file {} is locked (a SQLite store serves one broker)",
        .database.display(),
        .lock.display()
    )]
    Held { database: PathBuf, lock: PathBuf },
    #[error("cannot lock the SQLite store {}: {} ({source})", .database.display(), .lock.display())]
    Io {
        database: PathBuf,
        lock: PathBuf,
        source: std::io::Error,
    },
}

impl BrokerLock {
    /// Takes the lock of the store at `store_url` when it is a SQLite file;
    /// `None` for other stores (PostgreSQL, an in-memory SQLite).
    pub fn take(store_url: &str) -> Result<Option<BrokerLock>, LockError> {
        match sqlite_file(store_url) {
            Some(database) => BrokerLock::take_file(&database).map(Some),
            None => Ok(None),
        }
    }

    /// Takes the lock of the SQLite database file `database`.
    pub fn take_file(database: &Path) -> Result<BrokerLock, LockError> {
        let io = |lock: &Path, source| LockError::Io {
            database: database.to_path_buf(),
            lock: lock.to_path_buf(),
            source,
        };
        let configured = lock_path(database);
        let parent = match configured.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(parent) => parent.to_path_buf(),
            None => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|e| io(&configured, e))?;
        // However the folder is spelled (relative, through a symbolic link),
        // one database has one lock file.
        let lock = match (std::fs::canonicalize(&parent), configured.file_name()) {
            (Ok(folder), Some(name)) => folder.join(name),
            _ => configured.clone(),
        };
        let io = |source| io(&lock, source);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(BrokerLock {
                _file: file,
                path: lock,
            }),
            Err(TryLockError::WouldBlock) => Err(LockError::Held {
                database: database.to_path_buf(),
                lock,
            }),
            Err(TryLockError::Error(e)) => Err(io(e)),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `<db>.broker-lock` beside the database.
pub fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".broker-lock");
    PathBuf::from(name)
}

/// The database file of a `sqlite://PATH[?…]` (or `sqlite:PATH`) URL; `None`
/// for other URLs and for in-memory databases.
pub fn sqlite_file(store_url: &str) -> Option<PathBuf> {
    let rest = store_url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path == ":memory:" || path.starts_with(":memory:") {
        return None;
    }
    Some(PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The database path comes from the URL without its query; PostgreSQL
    /// and in-memory stores have no lock file.
    #[test]
    fn sqlite_file_is_read_from_the_url() {
        assert_eq!(
            sqlite_file("sqlite:///var/lib/porter/porter.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/porter/porter.db"))
        );
        assert_eq!(
            sqlite_file("sqlite://var/porter.db"),
            Some(PathBuf::from("var/porter.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://u@h/db"), None);
        assert_eq!(
            lock_path(Path::new("/x/porter.db")),
            PathBuf::from("/x/porter.db.broker-lock")
        );
    }

    /// A second lock on the same file is refused with a message naming the
    /// database; once the first is dropped, the lock can be taken again.
    #[test]
    fn second_lock_is_refused_until_the_first_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("porter.db");
        let url = format!("sqlite://{}", db.display());
        let first = BrokerLock::take(&url).unwrap().expect("a SQLite store is locked");
        assert_eq!(first.path(), lock_path(&db));
        let err = BrokerLock::take(&url).unwrap_err();
        assert!(matches!(err, LockError::Held { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains(&db.display().to_string()) && text.contains("another Porter broker"),
            "{text}"
        );
        drop(first);
        BrokerLock::take(&url).unwrap().expect("free again");
        assert!(BrokerLock::take("postgres://u@h/db").unwrap().is_none());
    }
}
