use super::*;

fn cipher() -> Arc<Cipher> {
    Arc::new(Cipher::new(1, &crate::config::KeyBytes([7; 32]), &[]))
}

fn metrics() -> Arc<Metrics> {
    Arc::new(Metrics::new().unwrap())
}

/// A journal in `dir` of at most `max_bytes`, with its syncer running (no replay: there is no database here).
fn syncing(dir: &std::path::Path, max_bytes: u64) -> Arc<Journal> {
    let journal = Arc::new(Journal::open(dir, cipher(), max_bytes, metrics()).unwrap());
    let me = journal.clone();
    actix::spawn(async move { me.sync_loop().await });
    journal
}

fn session() -> SessionId {
    "2f1c7d9e-8f6a-4b8e-9a51-0c2d3e4f5a6b".parse().unwrap()
}

fn message(key: &str, text: &str) -> Write {
    Write::Message {
        key: key.into(),
        turn_id: 3,
        role: Role::Assistant,
        content: text.into(),
        interrupted: true,
        at: crate::db::now(),
        reply: Some(ReplyRecord {
            outcome: crate::db::ReplyOutcome::Interrupted,
            generated: Some(format!("{text} and more")),
            heard: Some((900, crate::db::HeardSource::Client)),
            tools: Vec::new(),
            llm: Some("primary".into()),
            usage: None,
        }),
    }
}

#[actix::test]
async fn appended_writes_are_read_back_in_order_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let journal = syncing(dir.path(), 1 << 20);
    for i in 0..5 {
        journal.append(&session(), &message(&format!("k{i}"), &format!("reply {i}")), None).await.unwrap();
    }
    journal.append(&session(), &Write::Touch(crate::db::now()), None).await.unwrap();
    assert!(journal.is_active());
    assert_eq!(journal.pending(), 6);
    // Nothing readable in the file: the records are sealed.
    let raw = std::fs::read(dir.path().join("journal.log")).unwrap();
    assert!(!raw.windows(7).any(|w| w == b"reply 1"), "history is encrypted in the journal");

    let again = Journal::open(dir.path(), cipher(), 1 << 20, metrics()).unwrap();
    assert!(again.is_active());
    let keys: Vec<String> = again
        .lock()
        .queue
        .iter()
        .filter_map(|q| match &q.write {
            Write::Message { key, content, reply, .. } => {
                assert_eq!(reply.as_ref().unwrap().heard, Some((900, crate::db::HeardSource::Client)));
                Some(format!("{key}:{content}"))
            }
            _ => None,
        })
        .collect();
    assert_eq!(keys, ["k0:reply 0", "k1:reply 1", "k2:reply 2", "k3:reply 3", "k4:reply 4"]);
}

#[actix::test]
async fn a_torn_last_record_is_cut_off_and_the_rest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let journal = syncing(dir.path(), 1 << 20);
    journal.append(&session(), &message("a", "first"), None).await.unwrap();
    journal.append(&session(), &message("b", "second"), None).await.unwrap();
    let path = dir.path().join("journal.log");
    let len = std::fs::metadata(&path).unwrap().len();
    // The process died in the middle of writing the second record.
    OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 10).unwrap();
    let again = Journal::open(dir.path(), cipher(), 1 << 20, metrics()).unwrap();
    assert_eq!(again.pending(), 1);
    assert!(std::fs::metadata(&path).unwrap().len() < len - 10, "the torn record is cut off");
    // A record sealed with another key is skipped and counted, not fatal.
    let other = Arc::new(Cipher::new(1, &crate::config::KeyBytes([9; 32]), &[]));
    let m = metrics();
    let foreign = Journal::open(dir.path(), other, 1 << 20, m.clone()).unwrap();
    assert_eq!(foreign.pending(), 0);
    assert_eq!(m.persist_writes_lost_total.with_label_values(&["journal"]).get(), 1);
}

#[actix::test]
async fn a_full_journal_refuses_the_write() {
    let dir = tempfile::tempdir().unwrap();
    let journal = syncing(dir.path(), 64 << 10);
    let big = "x".repeat(20 << 10);
    let mut refused = 0;
    for _ in 0..5 {
        let write = Write::message(1, Role::User, big.clone(), false, crate::db::now(), None);
        match journal.append(&session(), &write, None).await {
            Ok(()) => {}
            Err(JournalError::Full(_)) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(refused, 2, "three 20 KiB writes fit in 64 KiB, not more");
    assert_eq!(journal.pending(), 3);
}

#[test]
fn outages_are_told_from_refusals() {
    use diesel::result::{DatabaseErrorKind as K, Error as E};
    assert!(is_outage(&StoreError::Unavailable("connection refused".into())));
    let db = |kind| StoreError::Query(E::DatabaseError(kind, Box::new("x".to_string())));
    assert!(is_outage(&db(K::ClosedConnection)));
    assert!(is_outage(&db(K::Unknown)), "e.g. 57P01 terminating connection due to administrator command");
    assert!(is_outage(&db(K::ForeignKeyViolation)), "the session row may be the one waiting to be replayed");
    assert!(!is_outage(&db(K::UniqueViolation)));
    assert!(!is_outage(&db(K::CheckViolation)));
    assert!(!is_outage(&StoreError::Corrupt("x".into())));
}

#[actix::test]
async fn a_journaled_recording_keeps_its_place_in_the_spool_and_older_entries_read_as_whole_files() {
    let dir = tempfile::tempdir().unwrap();
    let journal = syncing(dir.path(), 1 << 20);
    let mut recording = crate::persistence::test_recording(&session(), 2, Role::User);
    recording.spool_path = "/data/spool/alice+s+user_0.lane".into();
    recording.spool_offset = Some(65_580);
    let key = recording.object_key.clone();
    let write = Write::Recording { turn_id: 2, recording };
    let entry = Entry::from_write(&session(), &write);
    let text = serde_json::to_value(&entry).unwrap();
    assert_eq!(text["spoolOffset"], 65_580);
    let read = |text: serde_json::Value| match serde_json::from_value::<Entry>(text).unwrap().into_write().unwrap() {
        (_, Write::Recording { recording, .. }) => (recording.spool_path, recording.spool_offset),
        other => panic!("{other:?}"),
    };
    assert_eq!(read(text.clone()), ("/data/spool/alice+s+user_0.lane".to_string(), Some(65_580)));
    // Written before spool offsets: the file is the recording.
    let mut before = text;
    before.as_object_mut().unwrap().remove("spoolOffset");
    assert_eq!(read(before).1, None);

    journal.append(&session(), &write, None).await.unwrap();
    assert_eq!(journal.recording_keys(), std::collections::HashSet::from([key]), "not an orphan at start-up");
}
