//! The commit feed: each commit's `(seq, tables touched)`, published to subscribers in
//! sequence order, without gaps, once the commit is durable and visible (a subscriber
//! that reads the database on an event finds the commit there).
//!
//! Committers record their commit as soon as it has a sequence, and report the visible
//! sequence once theirs is visible; the group-commit leader reports each new durable
//! sequence. Whichever comes last publishes. Each subscriber
//! has a bounded queue: when it is full the oldest event is dropped and counted, so a
//! slow subscriber is told it lagged and never holds a committer up.

use parking_lot::{Condvar, Mutex};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Gives the names of the tables a commit touched, in byte order, when the feed asks.
pub type Touched<'a> = &'a dyn Fn() -> Arc<[String]>;

/// One durable commit.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommitEvent {
    /// The commit's sequence number.
    pub seq: u64,
    /// The tables it wrote, created, cleared or dropped, in byte order.
    pub tables: Arc<[String]>,
}

/// What [`Subscription::recv`] gives.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Received {
    /// The next durable commit.
    Commit(CommitEvent),
    /// The subscriber fell behind: this many events, the oldest ones not yet received,
    /// were dropped. Events continue after the gap.
    Lagged {
        /// Events dropped since the last `Lagged`.
        missed: u64,
    },
    /// The database was closed or dropped, or poisoned (a write or sync failed, so no
    /// commit becomes durable any more); no more events will come.
    Closed,
}

struct Queue {
    state: Mutex<QueueState>,
    ready: Condvar,
    capacity: usize,
}

impl Queue {
    /// An empty queue with room for `capacity` events (at least one).
    fn new(capacity: usize, closed: bool) -> Arc<Queue> {
        Arc::new(Queue {
            state: Mutex::new(QueueState {
                events: VecDeque::new(),
                missed: 0,
                gap: None,
                closed,
            }),
            ready: Condvar::new(),
            capacity: capacity.max(1),
        })
    }
}

struct QueueState {
    events: VecDeque<CommitEvent>,
    /// Events missed just before the first queued one (told first).
    missed: u64,
    /// The first subscriber's gap told while events older than it were queued:
    /// `(events before it, its commits)`, told as a lag once those are received (or
    /// dropped).
    gap: Option<(usize, u64)>,
    closed: bool,
}

impl QueueState {
    /// The first queued event, received or dropped: a gap told after it moves up.
    fn pop_front(&mut self) -> Option<CommitEvent> {
        let e = self.events.pop_front()?;
        if let Some((before, n)) = &mut self.gap {
            *before = before.saturating_sub(1);
            if *before == 0 {
                self.missed += *n;
                self.gap = None;
            }
        }
        Some(e)
    }

    /// The first subscriber's gap of `n` commits, which come after every queued event.
    fn lag_after_queued(&mut self, n: u64) {
        match &mut self.gap {
            _ if self.events.is_empty() => self.missed += n,
            Some((_, m)) => *m += n,
            None => self.gap = Some((self.events.len(), n)),
        }
    }
}

/// A subscriber's queue and the commits of the first subscriber's gap it is owed.
type Owed = (Weak<Queue>, u64);

struct FeedState {
    /// Recorded commits not yet published.
    pending: BTreeMap<u64, Arc<[String]>>,
    /// The next sequence to publish.
    next: u64,
    durable: u64,
    /// The newest sequence reported visible: nothing above it is published yet.
    visible: u64,
    subscribers: Vec<Weak<Queue>>,
    /// Set by [`Feed::close`]: a later subscriber starts closed.
    closed: bool,
    /// Set by [`Feed::close_after`]: the feed closes once it has published this
    /// sequence, and a later subscriber starts closed.
    close_at: Option<u64>,
    /// The commits up to `tip` that were in flight, unrecorded, when the first
    /// subscriber came: `(tip, [(queue, count)])`, each subscriber since then with the
    /// number of them not yet durable when it subscribed. Told as a lag once they are
    /// durable (before the events after them), not before: a subscriber that rereads the
    /// database on a lag must find them there.
    gap: Option<(u64, Vec<Owed>)>,
    /// The first subscriber is between its two looks: later ones wait for it.
    first_joining: bool,
}

/// The commit feed of one database.
pub struct Feed {
    /// Set by the first subscriber; until then committers record nothing.
    active: AtomicBool,
    state: Mutex<FeedState>,
    /// Rung when the first subscriber has counted its gap.
    first_joined: Condvar,
}

impl Feed {
    /// A feed whose commits up to `durable` are already published (or predate it).
    pub fn new(durable: u64) -> Feed {
        Feed {
            active: AtomicBool::new(false),
            state: Mutex::new(FeedState {
                pending: BTreeMap::new(),
                next: durable + 1,
                durable,
                visible: durable,
                subscribers: Vec::new(),
                closed: false,
                close_at: None,
                gap: None,
                first_joining: false,
            }),
            first_joined: Condvar::new(),
        }
    }

    /// Whether anyone ever subscribed (committers skip the feed until then).
    pub fn active(&self) -> bool {
        self.active.load(Ordering::SeqCst)
    }

    /// Records that commit `seq` touched the tables `tables` names. Call after `seq` is
    /// taken: `tables` is asked only when someone subscribed, and then after the
    /// subscriber's look at the tip (a commit whose tables were read before the first
    /// subscription recorded none).
    pub fn record(&self, seq: u64, tables: Touched<'_>) {
        if !self.active() {
            return;
        }
        let tables = tables();
        let mut st = self.state.lock();
        if seq >= st.next {
            st.pending.insert(seq, tables);
        }
        publish(&mut st);
    }

    /// Reports that every commit up to `seq` is durable.
    pub fn durable(&self, seq: u64) {
        let mut st = self.state.lock();
        st.durable = st.durable.max(seq);
        publish(&mut st);
    }

    /// Reports that every commit up to `seq` is visible (a committer whose commit became
    /// visible; `close`, for what it leaves durable). Nothing when nobody subscribed.
    pub fn visible(&self, seq: u64) {
        if !self.active() {
            return;
        }
        let mut st = self.state.lock();
        st.visible = st.visible.max(seq);
        publish(&mut st);
    }

    /// A new subscriber, receiving every commit that becomes durable from now on, with
    /// room for `capacity` unreceived events. `look` gives the last sequence taken and
    /// the visible one; it is read after the feed is marked active, so every later
    /// sequence is recorded and every later visibility reported.
    /// The first subscriber cannot receive the commits sequenced before it and durable
    /// after it (nobody recorded their tables): once they are durable it gets a
    /// [`Received::Lagged`] counting them, before the events after them. Subscribers
    /// coming while the first is between its looks wait for it (so `look` must not
    /// subscribe to this feed).
    pub fn subscribe(&self, capacity: usize, look: impl FnOnce() -> (u64, u64)) -> Subscription {
        let queue = Queue::new(capacity, false);
        let mine = Arc::downgrade(&queue);
        // How far commits were durable when this subscriber joined: those up to it
        // (and visible) come before the subscription.
        let joined_durable;
        let first;
        {
            let mut st = self.state.lock();
            // A subscriber joining while the first is between its looks waits for it:
            // its own look, read before the first's, could set its cut-off below the
            // first's, and the commits between the two would be dropped uncounted.
            // Joining after, its look is the later, and the gap is pending (or told).
            while st.first_joining {
                self.first_joined.wait(&mut st);
            }
            if st.closed || st.close_at.is_some() {
                // After `close` (or `close_after`: no commit becomes durable any more):
                // no event will come, and `recv` says so at once.
                queue.state.lock().closed = true;
                return Subscription { queue };
            }
            // Receiving from before the feed is marked active: a commit sequenced after
            // `tip` below and published before this subscriber's second look (below)
            // reached nobody, and was missed with no lag told.
            // Subscriptions dropped since the last event are forgotten here too: a
            // database without commits would otherwise keep one entry per
            // subscription ever made.
            st.subscribers.retain(|w| w.strong_count() > 0);
            st.subscribers.push(mine.clone());
            joined_durable = st.durable;
            // Under the lock: the first subscriber to join is the one that counts the
            // gap, from its own `joined_durable`, and tells every subscriber joined
            // after it at most what it missed itself. (Swapped outside, a later joiner
            // could win, count a gap from its later join, and leave the earlier one
            // missing commits with no lag told.)
            first = !self.active.swap(true, Ordering::SeqCst);
            st.first_joining = first;
            // The first subscriber's gap, pending now, may be told before this
            // subscriber's second look: it is owed what of the gap came after it joined
            // (counted again, more closely, at that look if the gap is still pending).
            let before = joined_durable.min(st.visible);
            if let Some((gap_tip, owed)) = &mut st.gap {
                owed.push((mine.clone(), gap_tip.saturating_sub(before)));
            }
        }
        // However the first subscriber's setup ends (a panicking `look` included), the
        // subscribers waiting for it go on.
        let _joined = first.then_some(FirstJoined(self));
        let (tip, visible) = look();
        let mut st = self.state.lock();
        // Nobody reported visibility while nobody subscribed: the look's is current.
        st.visible = st.visible.max(visible);
        // Durable and visible when it joined: before the subscription.
        let before = joined_durable.min(visible);
        if first {
            // Sequences up to `tip` were taken while nobody recorded them (and one the
            // swap above raced). Every sequence below `next` was published, before this
            // subscriber joined or to it; those from `next` to `tip` that came after it
            // joined can never be (their records are dropped here): the subscribers are
            // told they missed them, once they are durable and visible, rather than left
            // to think none came.
            let from = st.next.max(before + 1);
            st.next = st.next.max(tip + 1);
            let next = st.next;
            st.pending = st.pending.split_off(&next);
            let missed = (tip + 1).saturating_sub(from);
            if missed > 0 {
                let owed = st.subscribers.iter().map(|w| (w.clone(), missed)).collect();
                st.gap = Some((tip, owed));
            }
        } else if let Some((gap_tip, owed)) = &mut st.gap {
            // The first subscriber's gap, still pending: what of it came after this one
            // joined.
            let count = gap_tip.saturating_sub(before);
            match owed.iter_mut().find(|(w, _)| w.ptr_eq(&mine)) {
                Some((_, n)) => *n = (*n).min(count),
                None => owed.push((mine, count)),
            }
        }
        // What became publishable meanwhile (a record waiting for this look's `next`).
        publish(&mut st);
        Subscription { queue }
    }

    /// A subscription that receives nothing: [`Subscription::recv`] says
    /// [`Received::Closed`] at once.
    pub fn closed_subscription() -> Subscription {
        Subscription {
            queue: Queue::new(1, true),
        }
    }

    /// Tells every subscriber no more events will come.
    pub fn close(&self) {
        close_all(&mut self.state.lock());
    }

    /// Closes the feed once it has published every commit up to `seq` (poisoned: no
    /// commit after `seq` becomes durable). Those not yet published still are, as their
    /// committers record them and they become visible: a committer told its commit
    /// succeeded, so its subscribers receive it.
    pub fn close_after(&self, seq: u64) {
        let mut st = self.state.lock();
        st.close_at = Some(st.close_at.map_or(seq, |c| c.min(seq)));
        publish(&mut st);
    }
}

/// Ends the first subscriber's setup when dropped (see [`Feed::subscribe`]).
struct FirstJoined<'a>(&'a Feed);

impl Drop for FirstJoined<'_> {
    fn drop(&mut self) {
        self.0.state.lock().first_joining = false;
        self.0.first_joined.notify_all();
    }
}

fn close_all(st: &mut FeedState) {
    st.closed = true;
    for q in st.subscribers.drain(..).filter_map(|w| w.upgrade()) {
        q.state.lock().closed = true;
        q.ready.notify_all();
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.close();
    }
}

fn publish(st: &mut FeedState) {
    publish_ready(st);
    // The first subscriber's gap is told first: its commits up to `c` are durable, and
    // a subscriber closed before it is told never learns it missed them.
    if st.close_at.is_some_and(|c| st.next > c) && st.gap.is_none() && !st.closed {
        close_all(st);
    }
}

/// Publishes what is durable, visible and recorded, in order.
fn publish_ready(st: &mut FeedState) {
    let durable = st.durable.min(st.visible);
    // Past `close_at` no commit becomes durable: the gap ends there.
    let end = st.close_at.unwrap_or(u64::MAX);
    if let Some((tip, owed)) = st.gap.take_if(|(tip, _)| (*tip).min(end) <= durable) {
        let never = tip.saturating_sub(end);
        for (queue, missed) in owed {
            let missed = missed.saturating_sub(never);
            if missed == 0 {
                continue;
            }
            if let Some(q) = queue.upgrade() {
                q.state.lock().lag_after_queued(missed);
                q.ready.notify_one();
            }
        }
    }
    // Every sequence at or below `durable` was taken by a commit with writes, whose
    // committer records it right after taking it: wait for the record, in order.
    while st.next <= durable {
        let Some(tables) = st.pending.remove(&st.next) else {
            return;
        };
        let event = CommitEvent {
            seq: st.next,
            tables,
        };
        st.next += 1;
        st.subscribers.retain(|w| {
            let Some(q) = w.upgrade() else { return false };
            let mut qs = q.state.lock();
            if qs.events.len() >= q.capacity {
                qs.pop_front();
                qs.missed += 1;
            }
            qs.events.push_back(event.clone());
            drop(qs);
            q.ready.notify_one();
            true
        });
    }
}

/// A stream of durable commits, from [`crate::Database::subscribe`].
///
/// ```
/// # fn main() -> capsuledb::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// use capsuledb::Received;
/// let db = capsuledb::Database::open(dir.path().join("app.db"))?;
/// let sub = db.subscribe();
/// let mut conn = db.connect();
/// let mut tx = conn.begin()?;
/// tx.create_table("orders")?;
/// let seq = tx.commit()?.seq;
/// match sub.recv() {
///     Received::Commit(e) => {
///         assert_eq!(e.seq, seq);
///         assert_eq!(&e.tables[..], &["orders".to_string()]);
///     }
///     other => panic!("{other:?}"),
/// }
/// # Ok(()) }
/// ```
pub struct Subscription {
    queue: Arc<Queue>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.queue.state.lock();
        f.debug_struct("Subscription")
            .field("queued", &st.events.len())
            .field("capacity", &self.queue.capacity)
            .field("closed", &st.closed)
            .finish()
    }
}

impl Subscription {
    /// Waits for the next event.
    pub fn recv(&self) -> Received {
        self.wait(None)
    }

    /// Waits at most `timeout` for the next event; `None` when none came.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Received> {
        // A timeout past what an `Instant` can hold waits as `recv` does.
        match self.wait(Instant::now().checked_add(timeout)) {
            Received::Lagged { missed: 0 } => None,
            r => Some(r),
        }
    }

    /// The next event if one is ready.
    pub fn try_recv(&self) -> Option<Received> {
        self.recv_timeout(Duration::ZERO)
    }

    /// Events waiting to be received.
    pub fn pending(&self) -> usize {
        self.queue.state.lock().events.len()
    }

    fn wait(&self, deadline: Option<Instant>) -> Received {
        let mut qs = self.queue.state.lock();
        loop {
            if qs.missed > 0 {
                let missed = std::mem::take(&mut qs.missed);
                return Received::Lagged { missed };
            }
            if let Some(e) = qs.pop_front() {
                return Received::Commit(e);
            }
            if qs.closed {
                return Received::Closed;
            }
            match deadline {
                None => self.queue.ready.wait(&mut qs),
                Some(d) => {
                    if self.queue.ready.wait_until(&mut qs, d).timed_out()
                        && qs.events.is_empty()
                        && qs.missed == 0
                        && !qs.closed
                    {
                        // "Nothing came" travels as a zero-miss lag internally.
                        return Received::Lagged { missed: 0 };
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(names: &[&str]) -> Arc<[String]> {
        names.iter().map(|s| s.to_string()).collect()
    }

    /// Reports `seq` durable and visible, as the group and its committers do.
    fn done(f: &Feed, seq: u64) {
        f.durable(seq);
        f.visible(seq);
    }

    /// A durable commit is published only once it is visible: a subscriber that reads
    /// the database on the event must find it there (it was told of a commit another
    /// committer's group made durable while its own committer still applied it).
    #[test]
    fn publishes_only_what_is_visible() {
        let f = Feed::new(0);
        let s = f.subscribe(16, || (0, 0));
        f.record(1, &|| t(&["a"]));
        f.record(2, &|| t(&["b"]));
        f.durable(2);
        assert!(s.try_recv().is_none(), "durable, not visible");
        f.visible(1);
        assert!(matches!(s.try_recv(), Some(Received::Commit(e)) if e.seq == 1));
        assert!(s.try_recv().is_none(), "2 is not visible");
        f.visible(2);
        assert!(matches!(s.try_recv(), Some(Received::Commit(e)) if e.seq == 2));
    }

    /// The first subscriber's look at the tip races a commit sequenced after it and
    /// published before the subscriber joined the list: it reached nobody, with no lag
    /// told. The subscriber now receives from before its look.
    #[test]
    fn the_first_subscriber_misses_no_commit_sequenced_after_its_look() {
        let f = Feed::new(0);
        let s = f.subscribe(16, || {
            f.record(1, &|| t(&["a"]));
            done(&f, 1);
            (1, 1)
        });
        assert!(matches!(s.try_recv(), Some(Received::Commit(e)) if e.seq == 1));
        assert!(s.try_recv().is_none());
        // Seq 2 taken before the look, unrecorded (its committer looked before the
        // feed was active), durable and visible before the look: missed, and told.
        let f = Feed::new(0);
        let s = f.subscribe(16, || {
            f.record(1, &|| t(&["a"]));
            done(&f, 2);
            (2, 2)
        });
        // In order: commit 1, then the lag for 2 (it came first, before commit 1).
        let got: Vec<Received> = std::iter::from_fn(|| s.try_recv()).collect();
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            matches!(&got[0], Received::Commit(e) if e.seq == 1),
            "{got:?}"
        );
        assert_eq!(got[1], Received::Lagged { missed: 1 });
        // The same with the commit before the gap dropped for room: one lag for both.
        let f = Feed::new(0);
        let s = f.subscribe(1, || {
            f.record(1, &|| t(&["a"]));
            done(&f, 2);
            (2, 2)
        });
        f.record(3, &|| t(&["b"]));
        done(&f, 3);
        assert_eq!(s.try_recv(), Some(Received::Lagged { missed: 2 }));
        assert!(matches!(s.try_recv(), Some(Received::Commit(e)) if e.seq == 3));
    }

    /// Poisoned with commits durable but not yet visible (their committers, told they
    /// succeeded, still applying): the feed closed at once and its subscribers never
    /// received them. It closes once it has published them.
    #[test]
    fn a_feed_closed_after_a_sequence_publishes_up_to_it_first() {
        let f = Feed::new(0);
        let s = f.subscribe(16, || (0, 0));
        f.record(1, &|| t(&["a"]));
        done(&f, 1);
        f.durable(3);
        f.close_after(3);
        assert!(matches!(s.try_recv(), Some(Received::Commit(e)) if e.seq == 1));
        assert_eq!(s.try_recv(), None, "2 and 3 are not visible yet");
        assert_eq!(
            f.subscribe(16, || (3, 1)).try_recv(),
            Some(Received::Closed)
        );
        f.record(2, &|| t(&["b"]));
        f.record(3, &|| t(&["c"]));
        f.visible(3);
        assert!(matches!(s.try_recv(), Some(Received::Commit(e)) if e.seq == 2));
        assert!(matches!(s.try_recv(), Some(Received::Commit(e)) if e.seq == 3));
        assert_eq!(s.try_recv(), Some(Received::Closed));
        // Nothing left to publish: closed at once.
        let f = Feed::new(4);
        let s = f.subscribe(16, || (4, 4));
        f.close_after(4);
        assert_eq!(s.try_recv(), Some(Received::Closed));
    }

    /// Poisoned while the first subscriber's gap was pending: the feed closed at once
    /// (every sequence of the gap counts as published), and the gap's commits that were
    /// durable were never told, as an event or a lag. They are told first, once
    /// visible; those past the poisoning never become durable and are not counted.
    #[test]
    fn a_feed_closed_during_the_first_subscribers_gap_tells_its_durable_part() {
        let f = Feed::new(0);
        done(&f, 2);
        // Sequences 3..=5 were taken, unrecorded; the group poisons with 4 durable.
        let s = f.subscribe(16, || (5, 2));
        f.durable(4);
        f.close_after(4);
        assert_eq!(s.try_recv(), None, "3 and 4 are not visible yet");
        f.visible(4);
        assert_eq!(s.try_recv(), Some(Received::Lagged { missed: 2 }));
        assert_eq!(s.try_recv(), Some(Received::Closed));
        // Poisoned below the gap: nothing of it is owed, and the feed closes at once.
        let f = Feed::new(0);
        done(&f, 2);
        let s = f.subscribe(16, || (5, 2));
        f.close_after(2);
        assert_eq!(s.try_recv(), Some(Received::Closed));
    }

    /// A commit visible before anyone subscribed (its committer's report went nowhere)
    /// and durable after: the first subscriber's lag notice for it waited for the next
    /// commit's report, for ever on a quiet database. The look gives the visible
    /// sequence.
    #[test]
    fn the_first_subscribers_lag_needs_no_later_commit() {
        let f = Feed::new(0);
        f.durable(1);
        f.visible(2); // nobody subscribed: not recorded
        let s = f.subscribe(16, || (2, 2));
        assert!(s.try_recv().is_none(), "2 is not durable yet");
        f.durable(2);
        assert_eq!(s.try_recv(), Some(Received::Lagged { missed: 1 }));
    }

    /// A second subscriber that joined while the first one's gap was pending, the gap
    /// told between its two looks: it is told of the gap too (it was in no list of
    /// those owed it, and received the commit after the gap as if none was missed).
    #[test]
    fn a_subscriber_joining_during_the_gap_is_told_of_it_however_soon_it_ends() {
        let f = Feed::new(0);
        // Seq 1 taken while nobody recorded: the first subscriber's gap.
        let s1 = f.subscribe(16, || (1, 0));
        let s2 = f.subscribe(16, || {
            // The gap is told between the second subscriber's two looks.
            done(&f, 1);
            (1, 1)
        });
        assert_eq!(s1.try_recv(), Some(Received::Lagged { missed: 1 }));
        f.record(2, &|| t(&["a"]));
        done(&f, 2);
        assert_eq!(s2.try_recv(), Some(Received::Lagged { missed: 1 }));
        assert!(matches!(s2.try_recv(), Some(Received::Commit(e)) if e.seq == 2));
    }

    /// A second subscriber coming while the first is between its looks, with commits 1
    /// and 2 durable but not yet visible: its own look, read before the first's, saw
    /// neither, and the first's later look (both visible) counted no gap, so it was told
    /// of neither. It waits for the first now; whatever its look saw, it is told of
    /// every commit it did not see.
    #[test]
    fn a_subscriber_racing_the_first_is_told_of_what_its_look_did_not_see() {
        use std::sync::atomic::AtomicU64;
        let f = Arc::new(Feed::new(0));
        f.durable(2);
        let visible = Arc::new(AtomicU64::new(0));
        let (in_look, first_looks) = std::sync::mpsc::channel();
        let second = {
            let (f, visible) = (Arc::clone(&f), Arc::clone(&visible));
            std::thread::spawn(move || {
                first_looks.recv().unwrap();
                let saw = Arc::new(AtomicU64::new(0));
                let s = f.subscribe(16, || {
                    let v = visible.load(Ordering::SeqCst);
                    saw.store(v, Ordering::SeqCst);
                    (2, v)
                });
                (s, saw.load(Ordering::SeqCst))
            })
        };
        let _first = f.subscribe(16, || {
            in_look.send(()).unwrap();
            // Time for the second to reach its look (without the wait it did).
            std::thread::sleep(Duration::from_millis(100));
            visible.store(2, Ordering::SeqCst);
            f.visible(2);
            (2, 2)
        });
        let (s, saw) = second.join().unwrap();
        f.record(3, &|| t(&["x"]));
        done(&f, 3);
        let told = match s.try_recv() {
            Some(Received::Lagged { missed }) => {
                assert!(matches!(s.try_recv(), Some(Received::Commit(e)) if e.seq == 3));
                missed
            }
            Some(Received::Commit(e)) => {
                assert_eq!(e.seq, 3);
                0
            }
            other => panic!("{other:?}"),
        };
        assert!(
            saw + told >= 2,
            "its look saw {saw} commits and it was told of {told}"
        );
    }

    /// Subscriptions dropped on a database without commits are forgotten when the next
    /// one comes (each left an entry until the next event).
    #[test]
    fn dropped_subscriptions_leave_nothing_behind_without_commits() {
        let f = Feed::new(0);
        for _ in 0..1000 {
            drop(f.subscribe(16, || (0, 0)));
        }
        assert_eq!(f.state.lock().subscribers.len(), 1);
    }

    /// A timeout longer than an `Instant` can hold waits as `recv` does (it panicked).
    #[test]
    fn a_huge_timeout_waits_without_a_panic() {
        let f = Feed::new(0);
        let s = f.subscribe(16, || (0, 0));
        f.close();
        assert_eq!(s.recv_timeout(Duration::MAX), Some(Received::Closed));
    }

    #[test]
    fn publishes_in_order_once_durable() {
        let f = Feed::new(0);
        let s = f.subscribe(16, || (0, 0));
        f.record(2, &|| t(&["b"]));
        done(&f, 2);
        assert!(s.try_recv().is_none(), "seq 1 not recorded yet");
        f.record(1, &|| t(&["a"]));
        let seqs: Vec<u64> = std::iter::from_fn(|| match s.try_recv() {
            Some(Received::Commit(e)) => Some(e.seq),
            _ => None,
        })
        .collect();
        assert_eq!(seqs, vec![1, 2]);
        f.record(3, &|| t(&[]));
        assert!(s.try_recv().is_none(), "3 is not durable");
        done(&f, 3);
        assert!(matches!(s.try_recv(), Some(Received::Commit(e)) if e.seq == 3));
    }

    #[test]
    fn the_first_subscriber_is_told_of_commits_in_flight_when_it_subscribed() {
        let f = Feed::new(0);
        done(&f, 2);
        // Sequences 3..=5 were taken, unrecorded, and are not durable yet.
        let s = f.subscribe(16, || (5, 2));
        done(&f, 4);
        assert!(
            s.try_recv().is_none(),
            "told only once they are all durable"
        );
        done(&f, 5);
        assert_eq!(s.try_recv(), Some(Received::Lagged { missed: 3 }));
        assert!(s.try_recv().is_none());
        f.record(6, &|| t(&["x"]));
        done(&f, 6);
        assert!(matches!(s.recv(), Received::Commit(e) if e.seq == 6));
        // A later subscriber is owed nothing it cannot get.
        let later = f.subscribe(16, || (6, 6));
        assert!(later.try_recv().is_none());
        // One that comes while the first one's gap is pending is told of it too.
        let g = Feed::new(0);
        let one = g.subscribe(16, || (4, 0));
        done(&g, 1);
        let two = g.subscribe(16, || (4, 1));
        done(&g, 4);
        assert_eq!(one.try_recv(), Some(Received::Lagged { missed: 4 }));
        assert_eq!(two.try_recv(), Some(Received::Lagged { missed: 3 }));
        // Nothing in flight: no notice.
        let g = Feed::new(4);
        let quiet = g.subscribe(16, || (4, 4));
        assert!(quiet.try_recv().is_none());
    }

    #[test]
    fn a_slow_subscriber_is_told_it_lagged() {
        let f = Feed::new(0);
        let s = f.subscribe(2, || (0, 0));
        for seq in 1..=5 {
            f.record(seq, &|| t(&["x"]));
        }
        done(&f, 5);
        assert_eq!(s.recv(), Received::Lagged { missed: 3 });
        assert!(matches!(s.recv(), Received::Commit(e) if e.seq == 4));
        assert!(matches!(s.recv(), Received::Commit(e) if e.seq == 5));
        f.close();
        assert_eq!(s.recv(), Received::Closed);
    }
}
