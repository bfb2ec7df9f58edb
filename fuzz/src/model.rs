//! The `api_model` harness's model: the tables as `BTreeMap`s, the committed states
//! since the last reopen with how far acknowledgements reach, crash images and the
//! floor each must keep, and the checks of a database or a snapshot against a model.

use capsuledb::storage::SimStorage;
use capsuledb::{Database, Durability, Error, Transaction};
use std::collections::BTreeMap;
use std::ops::Bound;

pub(super) type Key = Vec<u8>;
pub(super) type Table = BTreeMap<Key, Vec<u8>>;
pub(super) type Model = BTreeMap<String, Table>;

/// The tables operations name (`t3` is never created, so some names always miss).
pub const MODEL_TABLES: [&str; 3] = ["t0", "t1", "t2"];

pub(super) fn in_range(lo: &Bound<Key>, hi: &Bound<Key>, k: &[u8]) -> bool {
    std::ops::RangeBounds::<[u8]>::contains(
        &(
            lo.as_ref().map(Vec::as_slice),
            hi.as_ref().map(Vec::as_slice),
        ),
        k,
    )
}

/// Committed states since the last reopen and how far acknowledgements reach.
pub(super) struct History {
    /// `states[0]`: what the database held when it was opened; then one state per
    /// commit that wrote, in sequence order. A commit that failed during a power cut
    /// adds its state too (it may or may not have reached the disk) and ends the session.
    pub(super) states: Vec<Model>,
    /// Index of the newest state acknowledged `Durable` (or made durable by a close).
    pub(super) durable: usize,
    /// Index of the newest state acknowledged `Written` or `Durable`.
    pub(super) written: usize,
}

impl History {
    pub(super) fn latest(&self) -> &Model {
        self.states.last().expect("history is never empty")
    }

    /// The latest state reached `level` (a commit that wrote nothing waits until the
    /// state it read does; `collect_garbage` writes the queued commits' markers).
    pub(super) fn reach(&mut self, level: Durability) {
        let i = self.states.len() - 1;
        match level {
            Durability::Durable => {
                self.durable = i;
                self.written = i;
            }
            Durability::Written => self.written = self.written.max(i),
            _ => {}
        }
    }

    pub(super) fn push(&mut self, state: Model, level: Option<Durability>) {
        self.states.push(state);
        let i = self.states.len() - 1;
        match level {
            Some(Durability::Durable) => {
                self.durable = i;
                self.written = i;
            }
            Some(Durability::Written) => self.written = i,
            _ => {}
        }
    }
}

/// Where a crash leaves the file and which acknowledgements must survive it.
pub(super) struct CrashImage {
    pub(super) storage: SimStorage,
    pub(super) floor: usize,
    pub(super) what: String,
}

pub(super) fn io_failure(e: &Error) -> bool {
    matches!(e, Error::Io { .. } | Error::Poisoned { .. })
}

pub(super) fn crash_image(sim: &SimStorage, kind: u8, seed: u64, hist: &History) -> CrashImage {
    let image = sim.fork();
    match kind % 3 {
        0 => CrashImage {
            // The process dies: what was handed to the OS survives, no more.
            storage: SimStorage::from_bytes(image.live_bytes()),
            floor: hist.written,
            what: "process crash".into(),
        },
        1 => {
            image.crash(seed);
            CrashImage {
                storage: image,
                floor: hist.durable,
                what: format!("power loss, seed {seed}"),
            }
        }
        _ => {
            image.crash_losing_unsynced();
            CrashImage {
                storage: image,
                floor: hist.durable,
                what: "power loss losing every unsynced write".into(),
            }
        }
    }
}

/// Everything a database holds, read through a fresh snapshot.
pub(super) fn read_state(db: &Database) -> Model {
    let mut conn = db.connect();
    let tx = conn
        .begin_read()
        .expect("begin_read on a recovered database");
    let mut model = Model::new();
    for name in tx.tables().expect("list tables") {
        let table: Table = tx
            .iter(&name)
            .expect("scan")
            .map(|r| r.map(|(k, v)| (k, v.to_vec())).expect("scan entry"))
            .collect();
        for (k, v) in &table {
            assert_eq!(tx.get(&name, k).expect("get").as_ref(), Some(v));
        }
        model.insert(name, table);
    }
    model
}

/// Checks everything `tx` sees against `model`.
pub(super) fn check_view(tx: &Transaction<'_>, model: &Model) {
    let names: Vec<String> = model.keys().cloned().collect();
    assert_eq!(tx.tables().expect("tables"), names, "table list");
    for name in MODEL_TABLES {
        match model.get(name) {
            None => assert!(
                matches!(tx.get(name, b"a"), Err(Error::TableNotFound { .. })),
                "{name} should not exist"
            ),
            Some(table) => {
                let got: Vec<(Key, Vec<u8>)> = tx
                    .iter(name)
                    .expect("iter")
                    .map(|r| r.map(|(k, v)| (k, v.to_vec())).expect("scan entry"))
                    .collect();
                let want: Vec<(Key, Vec<u8>)> =
                    table.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                assert_eq!(got, want, "scan of {name}");
                let mut rev: Vec<(Key, Vec<u8>)> = tx
                    .range_rev::<&[u8], _>(name, ..)
                    .expect("range_rev")
                    .map(|r| r.map(|(k, v)| (k, v.to_vec())).expect("scan entry"))
                    .collect();
                rev.reverse();
                assert_eq!(rev, want, "reverse scan of {name}");
                assert_eq!(tx.len(name).expect("len"), table.len() as u64);
                assert_eq!(tx.is_empty(name).expect("is_empty"), table.is_empty());
                for (k, v) in table {
                    assert_eq!(tx.get(name, k).expect("get").as_ref(), Some(v));
                }
            }
        }
    }
}
