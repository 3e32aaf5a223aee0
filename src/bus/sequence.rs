//! Noticing lost bus messages. Every replica numbers what it publishes (a random `epoch` per
//! process and a `seq` counting from 1) and publishes a heartbeat every `heartbeat_every` carrying
//! the last number it used. A receiver keeps, per publisher, the last number seen and when it last
//! heard from it: a number skipped, or a publisher gone quiet, means events may be lost, and the
//! receiver repairs its sockets from the database (which is the history: nothing is replayed).

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The default `BUS_PUBLISHER_TIMEOUT`: a publisher not heard for this long is taken for dead.
/// Publishers heartbeat every third of it (`heartbeat_every`), so three heartbeats are missed.
pub const PUBLISHER_TIMEOUT: Duration = Duration::from_millis(1_500);

/// How often a replica says "still here, my last message was number N".
pub fn heartbeat_every(publisher_timeout: Duration) -> Duration {
    publisher_timeout / 3
}
/// A publisher gone for this long is forgotten (bounds the table when replicas come and go).
const FORGET_AFTER: Duration = Duration::from_secs(600);

/// Why a replica repairs its sockets: the `cause` label of `cyberhub_bus_gaps_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GapCause {
    /// A publisher's numbers skipped (a message dropped on its way, or its outbox overflowed).
    Gap,
    /// A publisher stopped (crashed, cut off from Redis) or restarted: what it committed last may
    /// never have been published.
    PublisherLost,
    /// This replica's own receive buffer overflowed.
    Lagged,
    /// This replica lost its subscription and subscribed again.
    Resubscribed,
}

impl GapCause {
    pub const ALL: [GapCause; 4] = [GapCause::Gap, GapCause::PublisherLost, GapCause::Lagged, GapCause::Resubscribed];

    pub fn as_str(self) -> &'static str {
        match self {
            GapCause::Gap => "gap",
            GapCause::PublisherLost => "publisher_lost",
            GapCause::Lagged => "lagged",
            GapCause::Resubscribed => "resubscribed",
        }
    }
}

struct Publisher {
    epoch: u64,
    last_seq: u64,
    heard: Instant,
    /// Already reported lost (reported once until it is heard again).
    lost: bool,
}

/// What one receiver knows of every publisher it hears.
pub struct Publishers {
    by_origin: HashMap<String, Publisher>,
    timeout: Duration,
}

impl Default for Publishers {
    fn default() -> Self {
        Publishers::new(PUBLISHER_TIMEOUT)
    }
}

impl Publishers {
    pub fn new(timeout: Duration) -> Self {
        Publishers { by_origin: HashMap::new(), timeout }
    }

    /// Records a message: `heartbeat` carries the publisher's last number rather than a number of
    /// its own. Returns why the receiver must repair, if it must.
    pub fn observe(&mut self, origin: &str, epoch: u64, seq: u64, heartbeat: bool, now: Instant) -> Option<GapCause> {
        let Some(known) = self.by_origin.get_mut(origin) else {
            // First word from it (it or we just started): the baseline. Sockets that connected
            // before got their snapshot from the database.
            self.by_origin.insert(origin.to_string(), Publisher { epoch, last_seq: seq, heard: now, lost: false });
            return None;
        };
        let was_lost = std::mem::replace(&mut known.lost, false);
        known.heard = now;
        if known.epoch != epoch {
            // The same replica id, a new process: the old one died, maybe with events unpublished.
            // Not reported twice when its death was already noticed.
            *known = Publisher { epoch, last_seq: seq, heard: now, lost: false };
            return (!was_lost).then_some(GapCause::PublisherLost);
        }
        let expected = if heartbeat { known.last_seq } else { known.last_seq.saturating_add(1) };
        let gap = seq > expected;
        known.last_seq = known.last_seq.max(seq);
        gap.then_some(GapCause::Gap)
    }

    /// A publisher said goodbye (drained, everything published): its silence is no loss.
    pub fn depart(&mut self, origin: &str) {
        self.by_origin.remove(origin);
    }

    /// Marks the publishers not heard within the timeout as lost; how many were newly lost.
    pub fn sweep(&mut self, now: Instant) -> usize {
        self.by_origin.retain(|_, p| now.duration_since(p.heard) < FORGET_AFTER);
        let mut lost = 0;
        for publisher in self.by_origin.values_mut() {
            if !publisher.lost && now.duration_since(publisher.heard) >= self.timeout {
                publisher.lost = true;
                lost += 1;
            }
        }
        lost
    }

    /// After a gap in this replica's own subscription (it repairs anyway): the silence was ours,
    /// not the publishers', so none is taken for dead; their numbers are kept, so what they fail
    /// to publish after this repair (their own connection may come back later than ours) still
    /// shows as a skipped number. (Forgetting them made their next message a fresh baseline.)
    pub fn heard_all(&mut self, now: Instant) {
        // One already taken for dead stays so (it is not reported again until it is heard).
        for publisher in self.by_origin.values_mut().filter(|p| !p.lost) {
            publisher.heard = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_numbers_and_matching_heartbeats_are_no_gap() {
        let (mut p, t) = (Publishers::default(), Instant::now());
        assert_eq!(p.observe("a", 7, 10, false, t), None, "the first message is the baseline");
        assert_eq!(p.observe("a", 7, 11, false, t), None);
        assert_eq!(p.observe("a", 7, 11, true, t), None);
        assert_eq!(p.observe("a", 7, 12, false, t), None);
        assert_eq!(p.observe("b", 9, 1, true, t), None, "publishers are tracked apart");
        assert_eq!(p.observe("a", 7, 12, false, t), None, "a duplicate is harmless");
    }

    #[test]
    fn a_skipped_number_is_a_gap_and_so_is_a_heartbeat_ahead() {
        let (mut p, t) = (Publishers::default(), Instant::now());
        p.observe("a", 7, 1, false, t);
        assert_eq!(p.observe("a", 7, 3, false, t), Some(GapCause::Gap));
        assert_eq!(p.observe("a", 7, 4, false, t), None);
        assert_eq!(p.observe("a", 7, 6, true, t), Some(GapCause::Gap), "messages 5 and 6 never came");
        assert_eq!(p.observe("a", 7, 7, false, t), None);
    }

    #[test]
    fn a_publisher_that_said_goodbye_is_not_lost_and_may_come_back() {
        let (mut p, t) = (Publishers::default(), Instant::now());
        p.observe("a", 7, 3, false, t);
        p.depart("a");
        assert_eq!(p.sweep(t + PUBLISHER_TIMEOUT * 2), 0);
        assert_eq!(p.observe("a", 8, 1, true, t + PUBLISHER_TIMEOUT * 3), None, "restarted after a drain");
    }

    #[test]
    fn after_our_own_outage_nobody_is_lost_and_numbers_skipped_since_still_show() {
        let (mut p, t) = (Publishers::default(), Instant::now());
        p.observe("a", 7, 3, false, t);
        let back = t + PUBLISHER_TIMEOUT * 4;
        p.heard_all(back);
        assert_eq!(p.sweep(back + PUBLISHER_TIMEOUT / 2), 0, "our silence is not theirs");
        assert_eq!(p.observe("a", 7, 6, true, back), Some(GapCause::Gap), "4 to 6 were published into the void");
        assert_eq!(p.observe("a", 7, 7, false, back), None);
        p.observe("b", 8, 1, false, back);
        assert_eq!(p.sweep(back + PUBLISHER_TIMEOUT * 2), 2);
        p.heard_all(back + PUBLISHER_TIMEOUT * 3);
        assert_eq!(p.sweep(back + PUBLISHER_TIMEOUT * 5), 0, "the dead are not reported twice");
    }

    #[test]
    fn the_largest_number_does_not_overflow() {
        let (mut p, t) = (Publishers::default(), Instant::now());
        p.observe("a", 7, u64::MAX, false, t);
        assert_eq!(p.observe("a", 7, u64::MAX, false, t), None);
        assert_eq!(p.observe("a", 7, u64::MAX, true, t), None);
    }

    #[test]
    fn a_silent_publisher_is_lost_once_and_a_restarted_one_is_lost_too() {
        let (mut p, t) = (Publishers::default(), Instant::now());
        p.observe("a", 7, 1, false, t);
        p.observe("b", 8, 1, false, t);
        assert_eq!(p.sweep(t + Duration::from_millis(1_000)), 0);
        p.observe("b", 8, 1, true, t + Duration::from_millis(1_000));
        assert_eq!(p.sweep(t + PUBLISHER_TIMEOUT), 1, "a is quiet, b spoke");
        assert_eq!(p.sweep(t + PUBLISHER_TIMEOUT * 2), 1, "b now, a is not reported again");
        assert_eq!(p.observe("a", 9, 1, true, t + PUBLISHER_TIMEOUT * 3), None, "its death was already repaired");
        assert_eq!(p.observe("c", 1, 5, false, t), None);
        assert_eq!(p.observe("c", 2, 1, true, t), Some(GapCause::PublisherLost), "restarted before it was missed");
        assert_eq!(p.sweep(t + FORGET_AFTER * 2), 0);
        assert!(p.by_origin.is_empty(), "long-gone publishers are forgotten");
    }
}
