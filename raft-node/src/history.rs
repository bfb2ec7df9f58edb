//! A linearizability checker for the history of one key used as a register (reads,
//! writes and deletes), in the style of Wing & Gong's search with Lowe's memoization
//! (as in Knossos and Porcupine).
//!
//! Each operation has a call time and, if the client got an answer, a return time. An
//! operation whose outcome is unknown (a write whose connection broke) returns "at
//! infinity": it may be placed anywhere after its call, including after every other
//! operation, which is the same as never having taken effect.
//!
//! The search walks the history in time order, tries to linearize each call that is
//! pending, and backtracks when it meets the return of an operation it has not placed;
//! a set of (placed operations, register value) states already explored keeps it from
//! repeating work. It gives up with [`Verdict::Unknown`] after [`SEARCH_STEPS_MAX`] steps.

use std::collections::HashSet;

/// Search steps after which [`check_register`] gives up.
pub const SEARCH_STEPS_MAX: u64 = 50_000_000;

/// A register value: `None` for an absent key, else a value's id.
pub type Value = Option<u64>;

/// What an operation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// Set the register (`None`: delete the key).
    Write(Value),
    /// Read the register and saw this.
    Read(Value),
}

/// One operation of one client on one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Op {
    /// The client that issued it (for reports only).
    pub client: u32,
    /// When it was sent, in nanoseconds from any fixed origin.
    pub call_ns: u64,
    /// When its answer arrived; `None` when the outcome is unknown.
    pub return_ns: Option<u64>,
    /// What it did.
    pub kind: OpKind,
}

/// The checker's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Some order of the operations, each placed between its call and its return,
    /// explains every read.
    Linearizable,
    /// No such order exists. `deepest` is the most operations the search placed at once.
    NotLinearizable {
        /// The largest number of operations linearized on any search path.
        deepest: usize,
    },
    /// The search gave up after [`SEARCH_STEPS_MAX`] steps.
    Unknown,
}

/// A fixed-size set of operation indices.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize, on: bool) {
        if let Some(w) = self.0.get_mut(i / 64) {
            if on {
                *w |= 1 << (i % 64);
            } else {
                *w &= !(1 << (i % 64));
            }
        }
    }
}

/// Checks `ops` against a register that starts as `initial`.
pub fn check_register(ops: &[Op], initial: Value) -> Verdict {
    check_register_with_budget(ops, initial, SEARCH_STEPS_MAX)
}

/// [`check_register`] with a step budget.
#[expect(
    clippy::indexing_slicing,
    reason = "every index is a list node in 0..=2n+1 or an op in 0..n, built just above"
)]
pub fn check_register_with_budget(ops: &[Op], initial: Value, steps_max: u64) -> Verdict {
    let n = ops.len();
    // Nodes of a doubly linked list of events: 0 is the head, 1..=2n the events in time
    // order, 2n+1 the tail. Node `1 + 2i` is not op i's call: events are sorted first.
    let head = 0;
    let tail = 2 * n + 1;
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * n);
    for (i, op) in ops.iter().enumerate() {
        events.push((op.call_ns, false, i));
        events.push((op.return_ns.unwrap_or(u64::MAX), true, i));
    }
    // Calls before returns at the same instant: the two then count as concurrent.
    events.sort_by_key(|&(t, is_return, i)| (t, is_return, i));
    let mut op_of = vec![usize::MAX; 2 * n + 2];
    let mut is_call = vec![false; 2 * n + 2];
    let mut return_node = vec![0usize; n];
    for (k, &(_, is_return, i)) in events.iter().enumerate() {
        let node = k + 1;
        op_of[node] = i;
        is_call[node] = !is_return;
        if is_return {
            return_node[i] = node;
        }
    }
    let mut next: Vec<usize> = (1..=2 * n + 2).collect();
    let mut prev: Vec<usize> = (0..2 * n + 2).map(|k| k.saturating_sub(1)).collect();
    // Takes `node` out of the list; it keeps its own links, so `splice` puts it back.
    fn cut(node: usize, next: &mut [usize], prev: &mut [usize]) {
        let (p, q) = (prev[node], next[node]);
        next[p] = q;
        prev[q] = p;
    }
    fn splice(node: usize, next: &mut [usize], prev: &mut [usize]) {
        let (p, q) = (prev[node], next[node]);
        next[p] = node;
        prev[q] = node;
    }

    let mut state = initial;
    let mut linearized = Bits::new(n);
    let mut placed = 0usize;
    let mut deepest = 0usize;
    let mut seen: HashSet<(Bits, Value)> = HashSet::new();
    let mut stack: Vec<(usize, Value)> = Vec::new();
    let mut entry = next[head];
    let mut steps = 0u64;
    while next[head] != tail {
        steps += 1;
        if steps > steps_max {
            return Verdict::Unknown;
        }
        if entry == tail {
            // Unreachable while events remain (every call is followed by its return);
            // treat it as a dead end all the same.
            return Verdict::NotLinearizable { deepest };
        }
        let op = &ops[op_of[entry]];
        if is_call[entry] {
            let after = match op.kind {
                OpKind::Write(v) => Some(v),
                OpKind::Read(v) => (v == state).then_some(state),
            };
            if let Some(after) = after {
                let mut with = linearized.clone();
                with.set(op_of[entry], true);
                if seen.insert((with.clone(), after)) {
                    stack.push((entry, state));
                    state = after;
                    linearized = with;
                    placed += 1;
                    deepest = deepest.max(placed);
                    cut(entry, &mut next, &mut prev);
                    cut(return_node[op_of[entry]], &mut next, &mut prev);
                    entry = next[head];
                    continue;
                }
            }
            entry = next[entry];
        } else {
            // The return of an operation not yet placed: undo the last placement.
            let Some((call, before)) = stack.pop() else {
                return Verdict::NotLinearizable { deepest };
            };
            state = before;
            linearized.set(op_of[call], false);
            placed -= 1;
            splice(return_node[op_of[call]], &mut next, &mut prev);
            splice(call, &mut next, &mut prev);
            entry = next[call];
        }
    }
    Verdict::Linearizable
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(client: u32, call: u64, ret: Option<u64>, kind: OpKind) -> Op {
        Op {
            client,
            call_ns: call,
            return_ns: ret,
            kind,
        }
    }
    use OpKind::{Read, Write};

    #[test]
    fn sequential_and_concurrent_histories_that_are_linearizable() {
        let h = [
            op(0, 0, Some(10), Write(Some(1))),
            op(0, 20, Some(30), Read(Some(1))),
            op(1, 40, Some(50), Write(None)),
            op(0, 60, Some(70), Read(None)),
        ];
        assert_eq!(check_register(&h, None), Verdict::Linearizable);
        // A read concurrent with a write may see either value; here one sees the new
        // value and a later one too.
        let h = [
            op(0, 0, Some(100), Write(Some(1))),
            op(1, 10, Some(20), Read(None)),
            op(2, 15, Some(25), Read(Some(1))),
            op(1, 30, Some(40), Read(Some(1))),
        ];
        assert_eq!(check_register(&h, None), Verdict::Linearizable);
        // Reads in the opposite order of their calls are fine while they overlap.
        let h = [
            op(0, 0, Some(10), Write(Some(1))),
            op(1, 5, Some(50), Write(Some(2))),
            op(2, 20, Some(30), Read(Some(2))),
            op(3, 25, Some(60), Read(Some(2))),
        ];
        assert_eq!(check_register(&h, None), Verdict::Linearizable);
    }

    #[test]
    fn a_write_of_unknown_outcome_may_or_may_not_have_happened() {
        let seen = [
            op(0, 0, None, Write(Some(7))),
            op(1, 50, Some(60), Read(Some(7))),
        ];
        assert_eq!(check_register(&seen, Some(3)), Verdict::Linearizable);
        let unseen = [
            op(0, 0, None, Write(Some(7))),
            op(1, 50, Some(60), Read(Some(3))),
        ];
        assert_eq!(check_register(&unseen, Some(3)), Verdict::Linearizable);
        // But not before it was sent.
        let early = [
            op(1, 0, Some(10), Read(Some(7))),
            op(0, 20, None, Write(Some(7))),
        ];
        assert!(matches!(
            check_register(&early, Some(3)),
            Verdict::NotLinearizable { .. }
        ));
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_caught() {
        let h = [
            op(0, 0, Some(10), Write(Some(1))),
            op(0, 20, Some(30), Write(Some(2))),
            op(1, 40, Some(50), Read(Some(1))),
        ];
        assert_eq!(
            check_register(&h, None),
            Verdict::NotLinearizable { deepest: 2 }
        );
    }

    #[test]
    fn a_new_value_then_the_old_one_is_caught() {
        // Once one read has seen the concurrent write, a later read cannot see the
        // value from before it.
        let h = [
            op(0, 0, Some(100), Write(Some(1))),
            op(1, 10, Some(20), Read(Some(1))),
            op(2, 30, Some(40), Read(None)),
        ];
        assert!(matches!(
            check_register(&h, None),
            Verdict::NotLinearizable { .. }
        ));
    }

    #[test]
    fn a_value_nobody_wrote_or_a_lost_delete_is_caught() {
        let h = [
            op(0, 0, Some(10), Write(Some(1))),
            op(1, 5, Some(15), Read(Some(9))),
        ];
        assert!(matches!(
            check_register(&h, None),
            Verdict::NotLinearizable { .. }
        ));
        let h = [
            op(0, 0, Some(10), Write(Some(1))),
            op(0, 20, Some(30), Write(None)),
            op(1, 40, Some(50), Read(Some(1))),
        ];
        assert!(matches!(
            check_register(&h, None),
            Verdict::NotLinearizable { .. }
        ));
    }

    #[test]
    fn two_readers_disagreeing_on_the_order_of_two_writes_are_caught() {
        let h = [
            op(0, 0, Some(10), Write(Some(1))),
            op(1, 0, Some(10), Write(Some(2))),
            op(2, 20, Some(30), Read(Some(1))),
            op(3, 20, Some(30), Read(Some(2))),
            op(2, 40, Some(50), Read(Some(2))),
            op(3, 40, Some(50), Read(Some(1))),
        ];
        assert!(matches!(
            check_register(&h, None),
            Verdict::NotLinearizable { .. }
        ));
    }

    #[test]
    fn many_concurrent_operations_stay_fast_and_a_budget_ends_the_search() {
        // 8 clients, 400 operations each, overlapping in windows: the memo keeps this
        // well inside the default budget.
        let mut h = Vec::new();
        let mut value = None;
        for round in 0..400u64 {
            let t = round * 100;
            for c in 0..8u32 {
                let kind = if c % 2 == 0 {
                    Write(Some(round * 8 + u64::from(c)))
                } else {
                    Read(value)
                };
                h.push(op(c, t + u64::from(c), Some(t + 50 + u64::from(c)), kind));
            }
            value = Some(round * 8 + 6);
        }
        assert_eq!(check_register(&h, None), Verdict::Linearizable);
        assert_eq!(check_register_with_budget(&h, None, 10), Verdict::Unknown);
    }
}
