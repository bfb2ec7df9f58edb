//! Unit tests of `server.rs`: the checks on frames from peers.

use super::*;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Vote};

fn id(term: u64, index: u64) -> LogId<NodeId> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn append(prev: Option<LogId<NodeId>>, ids: &[LogId<NodeId>]) -> AppendEntriesRequest<TypeConfig> {
    AppendEntriesRequest {
        vote: Vote::new_committed(3, 1),
        prev_log_id: prev,
        entries: ids
            .iter()
            .map(|&log_id| Entry {
                log_id,
                payload: EntryPayload::Blank,
            })
            .collect(),
        leader_commit: None,
    }
}

#[test]
fn only_appends_that_follow_their_previous_entry_reach_raft() {
    assert!(append_well_formed(&append(None, &[])));
    assert!(append_well_formed(&append(
        None,
        &[id(1, 0), id(1, 1), id(2, 2)]
    )));
    assert!(append_well_formed(&append(
        Some(id(1, 4)),
        &[id(1, 5), id(2, 6)]
    )));
    assert!(append_well_formed(&append(Some(id(1, 4)), &[])));
    // A gap, a repeat, an entry before its previous one, a term going down.
    assert!(!append_well_formed(&append(
        Some(id(1, 4)),
        &[id(1, 5), id(1, 7)]
    )));
    assert!(!append_well_formed(&append(Some(id(1, 4)), &[id(1, 4)])));
    assert!(!append_well_formed(&append(Some(id(1, 4)), &[id(1, 6)])));
    assert!(!append_well_formed(&append(Some(id(2, 4)), &[id(1, 5)])));
    assert!(!append_well_formed(&append(None, &[id(2, 0), id(1, 1)])));
    assert!(!append_well_formed(&append(
        Some(id(1, u64::MAX)),
        &[id(1, 0)]
    )));
    assert!(!append_well_formed(&append(None, &[id(1, 5)])));
    // An entry of a term above the request's vote (term 3).
    assert!(append_well_formed(&append(None, &[id(3, 0)])));
    assert!(!append_well_formed(&append(None, &[id(4, 0)])));
}

/// A membership whose voter has no node (decoded from the network: `Membership::new`
/// never makes one) panics openraft's core when this node campaigns: refused.
#[test]
fn a_membership_with_a_voter_without_a_node_never_reaches_raft() {
    let with_voters = |json: &str| {
        let m: openraft::Membership<NodeId, BasicNode> = serde_json::from_str(json).unwrap();
        let mut r = append(None, &[id(1, 0)]);
        r.entries[0].payload = EntryPayload::Membership(m);
        r
    };
    let named = r#"{"configs":[[1,2]],"nodes":{"1":{"addr":"a"},"2":{"addr":"b"}}}"#;
    assert!(append_well_formed(&with_voters(named)));
    let unnamed = r#"{"configs":[[1,99]],"nodes":{"1":{"addr":"a"}}}"#;
    assert!(!append_well_formed(&with_voters(unnamed)));
    let joint = r#"{"configs":[[1],[1,99]],"nodes":{"1":{"addr":"a"}}}"#;
    assert!(!append_well_formed(&with_voters(joint)));
}
