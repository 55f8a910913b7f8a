//! The orphan scan against a real (embedded) database and a real spool directory.

use std::io::Write as _;

use super::*;
use crate::audio::wav::{DataLen, WavEncoding, WavFormat};
use crate::db::{Role, SessionId};
use crate::recording::spool::{FinishedTrack, Lane, PARTIAL, Track, TrackFormat, index_path};

struct Fixture {
    dir: tempfile::TempDir,
    store: Store,
    metrics: Metrics,
    instance: InstanceId,
    session: SessionId,
    journaled: HashSet<String>,
    lanes: SpoolLanes,
}

impl Fixture {
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let (store, session) = crate::db::embedded_for_tests(dir.path(), "alice").await;
        fs::create_dir_all(dir.path().join("spool")).unwrap();
        Fixture {
            dir,
            store,
            metrics: Metrics::new().unwrap(),
            instance: InstanceId::generate(),
            session,
            journaled: HashSet::new(),
            lanes: SpoolLanes::default(),
        }
    }

    fn spool(&self) -> PathBuf {
        self.dir.path().join("spool")
    }

    fn quarantine(&self) -> PathBuf {
        self.dir.path().join(QUARANTINE_DIR)
    }

    async fn scan(&self) -> OrphanReport {
        OrphanScan {
            spool_dir: &self.spool(),
            quarantine_dir: &self.quarantine(),
            store: &self.store,
            instance: &self.instance,
            backend: "local",
            metrics: &self.metrics,
            journaled: &self.journaled,
            lanes: &self.lanes,
        }
        .run()
        .await
    }

    /// Writes a spool file for the recording `key` (with `.part` when `partial`); returns its name.
    fn put(&self, key: &str, partial: bool, bytes: &[u8]) -> String {
        let name = format!("{}{}", SpoolName::for_key(key), if partial { PARTIAL } else { "" });
        fs::File::create(self.spool().join(&name)).unwrap().write_all(bytes).unwrap();
        name
    }

    fn key(&self, user: &str, role: Role, ext: &str) -> String {
        crate::recording::object_key(user, self.session.as_str(), role, ext, crate::db::now())
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = match fs::read_dir(dir) {
            Ok(entries) => entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        names
    }

    fn counted(&self, outcome: &str) -> u64 {
        self.metrics.recordings_orphaned_total.with_label_values(&[outcome]).get()
    }
}

/// A microphone WAV as a recorder killed mid-write leaves it: streaming placeholders, then a second of audio.
fn killed_mid_write() -> Vec<u8> {
    let format = WavFormat::new(WavEncoding::Pcm16, 16_000, 1).unwrap();
    let mut bytes = format.header(DataLen::Streaming).to_vec();
    bytes.extend(std::iter::repeat_n(3u8, 32_000));
    bytes
}

#[actix::test]
async fn orphans_of_known_sessions_are_registered_and_the_others_quarantined_or_removed() {
    let f = Fixture::new().await;
    // Registered: a user WAV cut mid-write, and a complete assistant MP3 whose row was never written.
    let wav_key = f.key("alice", Role::User, "wav");
    let wav = f.put(&wav_key, true, &killed_mid_write());
    let mp3_key = f.key("alice", Role::Assistant, "mp3");
    let mp3 = include_bytes!("../../../tests/fixtures/audio/mp3_cbr_128k_44k.mp3");
    f.put(&mp3_key, false, mp3);
    // Quarantined: a session that never reached the database, another user's name on this session, a stranger.
    let unknown =
        crate::recording::object_key("alice", SessionId::generate().as_str(), Role::User, "wav", crate::db::now());
    let unknown = f.put(&unknown, true, &killed_mid_write());
    let impostor = f.put(&f.key("mallory", Role::User, "wav"), false, &killed_mid_write());
    fs::write(f.spool().join("notes.txt"), b"who wrote this?").unwrap();
    // Removed: a file killed before any audio reached the disk.
    f.put(&f.key("alice", Role::User, "wav"), true, b"");
    // Left alone: a legacy-named file its waiting row refers to.
    let legacy = f.spool().join("0123456789abcdef0123456789abcdef.wav.part");
    fs::write(&legacy, killed_mid_write()).unwrap();
    let waiting = f
        .store
        .insert_recording(&NewRecording {
            session_id: f.session.clone(),
            role: Role::User,
            turn_id: 1,
            object_key: f.key("alice", Role::User, "wav"),
            content_type: "audio/wav".into(),
            size_bytes: 32_044,
            duration_seconds: Some(1.0),
            backend: "local",
            spool_path: legacy.to_string_lossy().into_owned(),
            spool_offset: None,
            created_at: crate::db::now(),
            instance_id: f.instance.clone(),
        })
        .await
        .unwrap();

    let report = f.scan().await;
    assert_eq!(report, OrphanReport { registered: 2, quarantined: 3, removed: 1, left: 0 });
    assert_eq!((f.counted("registered"), f.counted("quarantined"), f.counted("removed")), (2, 3, 1));

    let mut quarantined = vec![unknown, impostor, "notes.txt".to_string()];
    quarantined.sort();
    assert_eq!(Fixture::names(&f.quarantine()), quarantined);
    let mut spooled = vec![SpoolName::for_key(&wav_key), SpoolName::for_key(&mp3_key), legacy_name()];
    spooled.sort();
    assert_eq!(Fixture::names(&f.spool()), spooled, "registered files lose their .part; {wav} was completed");

    let rows = f.store.session_recordings(&f.session).await.unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].id, waiting);
    let user = rows.iter().find(|r| r.object_key == wav_key).unwrap();
    assert_eq!((user.role, user.turn_id, user.status), (Role::User, 0, RecordingStatus::Pending));
    assert_eq!((user.content_type.as_str(), user.size_bytes, user.duration_seconds), ("audio/wav", 32_044, Some(1.0)));
    assert_eq!(user.instance_id.as_deref(), Some(f.instance.as_str()));
    assert_eq!(user.message_id, None);
    let patched = fs::read(f.spool().join(SpoolName::for_key(&wav_key))).unwrap();
    assert_eq!(u32::from_le_bytes(patched[40..44].try_into().unwrap()), 32_000, "the WAV header has real sizes");
    let reply = rows.iter().find(|r| r.object_key == mp3_key).unwrap();
    assert_eq!((reply.role, reply.content_type.as_str()), (Role::Assistant, "audio/mpeg"));
    assert!((reply.duration_seconds.unwrap() - 1.045).abs() < 0.03);

    let waiting: Vec<i64> = f.store.waiting_recordings(&f.instance).await.unwrap().iter().map(|r| r.id).collect();
    assert_eq!(waiting.len(), 3, "the uploader picks the registered files up with the rest");
    assert_eq!(f.scan().await, OrphanReport::default(), "a second scan finds no orphan");
}

fn legacy_name() -> String {
    "0123456789abcdef0123456789abcdef.wav.part".to_string()
}

#[actix::test]
async fn a_spool_copy_of_a_recording_already_stored_is_removed() {
    let f = Fixture::new().await;
    let key = f.key("alice", Role::Assistant, "wav");
    let name = f.put(&key, false, &killed_mid_write());
    let id = f
        .store
        .insert_recording(&NewRecording {
            session_id: f.session.clone(),
            role: Role::Assistant,
            turn_id: 2,
            object_key: key.clone(),
            content_type: "audio/wav".into(),
            size_bytes: 32_044,
            duration_seconds: Some(1.0),
            backend: "gcs",
            spool_path: f.spool().join(&name).to_string_lossy().into_owned(),
            spool_offset: None,
            created_at: crate::db::now(),
            instance_id: f.instance.clone(),
        })
        .await
        .unwrap();
    // Stored (the row forgets its spool file), and the process died before deleting the copy.
    f.store.recording_uploaded(id, &format!("/{key}"), crate::db::now()).await.unwrap();
    assert_eq!(f.scan().await, OrphanReport { removed: 1, ..OrphanReport::default() });
    assert!(Fixture::names(&f.spool()).is_empty());
    assert!(Fixture::names(&f.quarantine()).is_empty());
}

#[actix::test]
async fn no_spool_directory_is_no_orphan() {
    let f = Fixture::new().await;
    fs::remove_dir(f.spool()).unwrap();
    assert_eq!(f.scan().await, OrphanReport::default());
}

#[actix::test]
async fn a_spool_file_whose_row_waits_in_the_journal_is_not_an_orphan() {
    let mut f = Fixture::new().await;
    // The session never reached the database (an outage): without the journal it would be quarantined.
    let key =
        crate::recording::object_key("alice", SessionId::generate().as_str(), Role::User, "wav", crate::db::now());
    let name = f.put(&key, false, &killed_mid_write());
    f.journaled.insert(key.clone());
    assert_eq!(f.scan().await, OrphanReport::default());
    assert_eq!(Fixture::names(&f.spool()), vec![name]);
    assert_eq!(f.counted("quarantined"), 0);
}

/// Writes recordings into a lane of this fixture's session as a recorder would; returns the lane's path and
/// what each finished recording became (`None` for one still open or dropped).
fn lane_of(f: &Fixture, role: Role, plan: &[(&str, u8)]) -> (PathBuf, Vec<Option<FinishedTrack>>) {
    let format = TrackFormat::microphone(crate::audio::level::InputEncoding::Linear16, 16_000).unwrap();
    let mut lane = Some(Lane::create(&f.spool(), &"alice".parse().unwrap(), &f.session, role).unwrap());
    let path = lane.as_ref().unwrap().path().to_path_buf();
    let mut done = Vec::new();
    for (what, sample) in plan {
        let mut t = Track::start(lane.take().unwrap(), &f.key("alice", role, "wav"), format).unwrap();
        t.append(&vec![*sample; 16_000]).unwrap(); // half a second
        match *what {
            "finish" => {
                let (finished, next) = t.finish().unwrap();
                done.push(Some(finished));
                lane = Some(next);
            }
            "drop" => {
                lane = t.discard();
                done.push(None);
            }
            _ => {
                done.push(None); // left open: the process died
                break;
            }
        }
    }
    (path, done)
}

fn row_for(f: &Fixture, done: &FinishedTrack, turn_id: u64) -> NewRecording {
    NewRecording {
        session_id: f.session.clone(),
        role: Role::User,
        turn_id,
        object_key: done.object_key.clone(),
        content_type: "audio/wav".into(),
        size_bytes: done.size_bytes,
        duration_seconds: done.duration_seconds,
        backend: "local",
        spool_path: done.path.to_string_lossy().into_owned(),
        spool_offset: Some(done.offset),
        created_at: crate::db::now(),
        instance_id: f.instance.clone(),
    }
}

#[actix::test]
async fn a_lanes_recordings_without_rows_are_taken_out_and_registered_and_the_lane_waits_for_the_rest() {
    let mut f = Fixture::new().await;
    // Turn 1 registered (waiting to be stored), turn 2's row lost, a dropped one, turn 3 journaled, and a
    // fourth still being written when the process died.
    let plan = [("finish", 1), ("finish", 2), ("drop", 9), ("finish", 3), ("open", 4)];
    let (lane, done) = lane_of(&f, Role::User, &plan);
    let first = done[0].clone().unwrap();
    f.store.insert_recording(&row_for(&f, &first, 1)).await.unwrap();
    let lost = done[1].clone().unwrap();
    let journaled = done[3].clone().unwrap();
    f.journaled.insert(journaled.object_key.clone());
    let open_key = read_index(&lane).unwrap().last().unwrap().object_key.clone();

    let report = f.scan().await;
    assert_eq!(report, OrphanReport { registered: 2, ..OrphanReport::default() });
    assert_eq!(f.lanes.len(), 1, "the lane still holds turn 1 and the journaled turn");
    let rows = f.store.session_recordings(&f.session).await.unwrap();
    assert_eq!(rows.len(), 3);
    for (key, sample, seconds) in [(&lost.object_key, 2u8, 0.5), (&open_key, 4u8, 0.5)] {
        let row = rows.iter().find(|r| &r.object_key == key).unwrap();
        assert_eq!((row.turn_id, row.spool_offset, row.duration_seconds), (0, None, Some(seconds)));
        let file = fs::read(row.spool_path.as_deref().unwrap()).unwrap();
        assert_eq!(file.len(), 44 + 16_000, "a file of its own, cut exactly");
        assert_eq!(u32::from_le_bytes(file[40..44].try_into().unwrap()), 16_000, "sizes patched");
        assert!(file[44..].iter().all(|b| *b == sample), "its own audio, not a neighbour's");
    }
    let lane_name = file_name(&lane.to_string_lossy()).unwrap();
    assert!(Fixture::names(&f.spool()).contains(&lane_name));

    // The uploader stores turn 1 and the journaled turn: then the lane goes, index and all.
    f.lanes.stored(&lane);
    assert!(Fixture::names(&f.spool()).contains(&lane_name));
    f.lanes.stored(&lane);
    let left = Fixture::names(&f.spool());
    assert!(left.iter().all(|n| !n.contains(".lane")), "{left:?}");
    assert_eq!(left.len(), 2, "the two taken-out files wait for their upload: {left:?}");
}

#[actix::test]
async fn a_lane_nothing_waits_in_is_removed_and_stray_lane_files_are_dealt_with() {
    let f = Fixture::new().await;
    // Everything stored or dropped: nothing to keep.
    let (lane, done) = lane_of(&f, Role::User, &[("finish", 1), ("drop", 2)]);
    let first = done[0].clone().unwrap();
    let id = f.store.insert_recording(&row_for(&f, &first, 1)).await.unwrap();
    f.store.recording_uploaded(id, &format!("/{}", first.object_key), crate::db::now()).await.unwrap();
    // An index whose lane is gone, and a lane whose index is.
    let (stray, _) = lane_of(&f, Role::Assistant, &[("finish", 5)]);
    fs::remove_file(&stray).unwrap();
    let (blind, _) = lane_of(&f, Role::User, &[("finish", 6)]);
    fs::remove_file(index_path(&blind)).unwrap();

    let report = f.scan().await;
    assert_eq!(report, OrphanReport { removed: 1, quarantined: 1, ..OrphanReport::default() });
    assert!(!lane.exists() && !index_path(&lane).exists());
    assert!(Fixture::names(&f.spool()).is_empty());
    assert_eq!(Fixture::names(&f.quarantine()), [file_name(&blind.to_string_lossy()).unwrap()]);
    assert!(f.lanes.is_empty());
}
