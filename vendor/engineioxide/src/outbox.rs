//! The per-socket outgoing queue (CyberHub patch, see `vendor/PATCHES.md`).
//!
//! Upstream uses a bounded `tokio::sync::mpsc` channel of [`PacketBuf`] (plus a `watch` channel
//! for volatile packets). A tokio channel allocates its first 32-slot block up front; with a
//! 168-byte `PacketBuf` that is ~5.4 KB for every socket, idle or not, plus the channel's own
//! cache-padded state and the watch channel's eight `Notify`s. This queue holds nothing until a
//! packet is queued and gives its buffer back as soon as the writer has drained it, so an idle
//! socket costs the size of this struct.
//!
//! Semantics are those of the bounded channel it replaces: at most `capacity` packets buffered
//! or reserved, `try_send`/`try_reserve` fail with `Full` or `Closed`, the receiver keeps draining
//! what was queued before `close`, and `closed()` resolves once the queue is closed. Only one
//! receiver reads at a time (the `internal_rx` lock of the socket guarantees it).
use std::{
    collections::VecDeque,
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicBool, Ordering},
    },
};

use engineioxide_core::PacketBuf;
use tokio::sync::{Notify, mpsc::error::TrySendError};

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<PacketBuf>,
    /// Slots held by [`Permit`]s that were not used yet.
    reserved: usize,
    /// The latest volatile packet, if not yet written (later ones overwrite it).
    /// Boxed: a `PacketBuf` is 168 bytes and this is almost always empty.
    volatile: Option<Box<PacketBuf>>,
}

#[derive(Debug)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    capacity: usize,
    closed: AtomicBool,
    /// Something is queued (buffered or volatile). Written under the `state` lock, read without
    /// it by [`Outbox::readable_until_cancelled`]: after each write, the websocket task checks
    /// for more, and the lock is on memory no other socket shares (a cache miss per delivery in
    /// a fan-out to thousands).
    queued: AtomicBool,
    /// The session was cancelled ([`Outbox::cancel`]); an atomic for the same reason (the
    /// `CancellationToken`'s `is_cancelled` takes its node's mutex).
    cancelled: AtomicBool,
    /// Wakes the (single) receiver: a packet was queued or the outbox was closed.
    readable: Notify,
    /// Wakes the tasks waiting in [`Outbox::closed`].
    on_close: Notify,
}

/// A reserved slot in the [`Outbox`]; the slot is given back if the permit is dropped unused.
pub(crate) struct Permit<'a> {
    outbox: &'a Outbox,
}

impl Permit<'_> {
    pub(crate) fn send(self, packets: PacketBuf) {
        let outbox = self.outbox;
        std::mem::forget(self);
        {
            let mut state = outbox.lock();
            state.reserved -= 1;
            state.queue.push_back(packets);
            outbox.queued.store(true, Ordering::Release);
        }
        outbox.readable.notify_one();
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.outbox.lock().reserved -= 1;
    }
}

/// What the receiver got from [`Outbox::try_recv`].
pub(crate) enum Recv {
    Packets(PacketBuf),
    /// Nothing queued now.
    Empty,
    /// Closed and drained.
    Closed,
}

impl Outbox {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            capacity: capacity.max(1),
            closed: AtomicBool::new(false),
            queued: AtomicBool::new(false),
            cancelled: AtomicBool::new(false),
            readable: Notify::new(),
            on_close: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state inconsistent (plain pushes/pops).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn try_reserve(&self) -> Result<Permit<'_>, TrySendError<()>> {
        if self.is_closed() {
            return Err(TrySendError::Closed(()));
        }
        let mut state = self.lock();
        if state.queue.len() + state.reserved >= self.capacity {
            return Err(TrySendError::Full(()));
        }
        state.reserved += 1;
        Ok(Permit { outbox: self })
    }

    // The packets come back on failure, as with the tokio channel this replaces.
    #[allow(clippy::result_large_err)]
    pub(crate) fn try_send(&self, packets: PacketBuf) -> Result<(), TrySendError<PacketBuf>> {
        if self.is_closed() {
            return Err(TrySendError::Closed(packets));
        }
        {
            let mut state = self.lock();
            if state.queue.len() + state.reserved >= self.capacity {
                return Err(TrySendError::Full(packets));
            }
            state.queue.push_back(packets);
            self.queued.store(true, Ordering::Release);
        }
        self.readable.notify_one();
        Ok(())
    }

    /// Replaces the pending volatile packet. Returns false if the outbox is closed.
    pub(crate) fn send_volatile(&self, packets: PacketBuf) -> bool {
        if self.is_closed() {
            return false;
        }
        {
            let mut state = self.lock();
            state.volatile = Some(Box::new(packets));
            self.queued.store(true, Ordering::Release);
        }
        self.readable.notify_one();
        true
    }

    /// Takes the next buffered packet, then the volatile one.
    pub(crate) fn try_recv(&self) -> Recv {
        let mut state = self.lock();
        if let Some(packets) = state.queue.pop_front() {
            if state.queue.is_empty() && state.queue.capacity() > 0 {
                // Give the buffer back: an idle socket holds no queue memory.
                state.queue = VecDeque::new();
            }
            if state.queue.is_empty() && state.volatile.is_none() {
                self.queued.store(false, Ordering::Release);
            }
            return Recv::Packets(packets);
        }
        if let Some(packets) = state.volatile.take() {
            self.queued.store(false, Ordering::Release);
            return Recv::Packets(*packets);
        }
        if self.is_closed() {
            Recv::Closed
        } else {
            Recv::Empty
        }
    }

    /// Waits for the next packet; `None` once the outbox is closed and drained.
    /// Cancel safe: a packet is only taken when the future completes.
    pub(crate) async fn recv(&self) -> Option<PacketBuf> {
        // Nothing but the `Notified` is held across the await: this future sits in every idle
        // connection's task.
        loop {
            if let Some(next) = self.take() {
                return next;
            }
            // `notify_one` stores a permit when nobody waits, so a packet queued between
            // `take` and here still wakes us.
            self.readable.notified().await;
        }
    }

    /// Like [`Outbox::recv`], but also ends (after what is queued) once [`Outbox::cancel`] was
    /// called. One future for both saves the websocket task a second waiter
    /// (`CancellationToken::cancelled`).
    ///
    /// Takes nothing: returns `true` when there is something to read with [`Outbox::try_recv`]
    /// (packets, or the end), `false` when cancelled with nothing queued. The packets are taken
    /// by the writer itself, so no 168-byte `PacketBuf` is part of the waiting future.
    pub(crate) async fn readable_until_cancelled(&self) -> bool {
        loop {
            if self.has_next() {
                return true;
            }
            if self.cancelled.load(Ordering::Acquire) {
                return false;
            }
            // A packet queued (or a cancel) after the checks above still wakes this: `notify_one`
            // stores a permit when nobody waits.
            self.readable.notified().await;
        }
    }

    /// Without the lock: `queued` is stored under it, with release ordering, before the waker
    /// is notified.
    fn has_next(&self) -> bool {
        self.queued.load(Ordering::Acquire) || self.is_closed()
    }

    /// Ends [`Outbox::readable_until_cancelled`] once what is queued was read (the session's
    /// `CancellationToken` is cancelled too, for the other tasks that watch it).
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        self.readable.notify_one();
    }

    /// `Some(Some(packets))`, `Some(None)` once closed and drained, `None` when empty.
    #[inline(never)]
    fn take(&self) -> Option<Option<PacketBuf>> {
        match self.try_recv() {
            Recv::Packets(p) => Some(Some(p)),
            Recv::Closed => Some(None),
            Recv::Empty => None,
        }
    }

    pub(crate) fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.readable.notify_one();
            self.on_close.notify_waiters();
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) async fn closed(&self) {
        loop {
            let notified = self.on_close.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_closed() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engineioxide_core::Packet;
    use smallvec::smallvec;

    fn msg(s: &'static str) -> PacketBuf {
        smallvec![Packet::Message(s.into())]
    }

    #[test]
    fn bounded_like_a_channel() {
        let outbox = Outbox::new(2);
        outbox.try_send(msg("a")).unwrap();
        let permit = outbox.try_reserve().unwrap();
        assert!(matches!(
            outbox.try_send(msg("b")),
            Err(TrySendError::Full(_))
        ));
        assert!(matches!(outbox.try_reserve(), Err(TrySendError::Full(()))));
        drop(permit);
        outbox.try_reserve().unwrap().send(msg("c"));
        assert!(
            matches!(outbox.try_recv(), Recv::Packets(p) if p[0] == Packet::Message("a".into()))
        );
        assert!(
            matches!(outbox.try_recv(), Recv::Packets(p) if p[0] == Packet::Message("c".into()))
        );
        assert!(matches!(outbox.try_recv(), Recv::Empty));
    }

    #[test]
    fn idle_outbox_holds_no_buffer() {
        let outbox = Outbox::new(8);
        outbox.try_send(msg("a")).unwrap();
        outbox.try_send(msg("b")).unwrap();
        assert!(outbox.lock().queue.capacity() > 0);
        let _ = outbox.try_recv();
        let _ = outbox.try_recv();
        assert_eq!(outbox.lock().queue.capacity(), 0);
    }

    #[test]
    fn volatile_keeps_only_the_latest_and_comes_after_buffered() {
        let outbox = Outbox::new(8);
        assert!(outbox.send_volatile(msg("v1")));
        assert!(outbox.send_volatile(msg("v2")));
        outbox.try_send(msg("a")).unwrap();
        assert!(
            matches!(outbox.try_recv(), Recv::Packets(p) if p[0] == Packet::Message("a".into()))
        );
        assert!(
            matches!(outbox.try_recv(), Recv::Packets(p) if p[0] == Packet::Message("v2".into()))
        );
        assert!(matches!(outbox.try_recv(), Recv::Empty));
    }

    #[tokio::test]
    async fn close_drains_then_ends_and_wakes_waiters() {
        let outbox = std::sync::Arc::new(Outbox::new(8));
        outbox.try_send(msg("a")).unwrap();
        let waiter = {
            let outbox = outbox.clone();
            tokio::spawn(async move { outbox.closed().await })
        };
        outbox.close();
        assert!(matches!(
            outbox.try_send(msg("b")),
            Err(TrySendError::Closed(_))
        ));
        assert!(!outbox.send_volatile(msg("v")));
        assert!(outbox.recv().await.is_some());
        assert!(outbox.recv().await.is_none());
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn recv_wakes_on_send() {
        let outbox = std::sync::Arc::new(Outbox::new(8));
        let reader = {
            let outbox = outbox.clone();
            tokio::spawn(async move { outbox.recv().await })
        };
        tokio::task::yield_now().await;
        outbox.try_send(msg("a")).unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_secs(1), reader)
            .await
            .unwrap()
            .unwrap();
        assert!(got.is_some());
    }

    #[tokio::test]
    async fn readable_until_cancelled_sees_packets_then_the_cancel() {
        let outbox = std::sync::Arc::new(Outbox::new(8));
        let waiter = {
            let outbox = outbox.clone();
            tokio::spawn(async move { outbox.readable_until_cancelled().await })
        };
        tokio::task::yield_now().await;
        outbox.send_volatile(msg("v"));
        let woke = tokio::time::timeout(std::time::Duration::from_secs(1), waiter);
        assert!(
            woke.await.unwrap().unwrap(),
            "a queued packet makes it readable"
        );
        assert!(matches!(outbox.try_recv(), Recv::Packets(_)));
        assert!(!outbox.has_next(), "drained: nothing left to read");

        // Cancelled with a packet queued: the packet is still read first.
        outbox.try_send(msg("a")).unwrap();
        outbox.cancel();
        assert!(outbox.readable_until_cancelled().await);
        assert!(matches!(outbox.try_recv(), Recv::Packets(_)));
        let ended = outbox.readable_until_cancelled();
        let ended = tokio::time::timeout(std::time::Duration::from_secs(1), ended);
        assert!(!ended.await.unwrap(), "cancelled and drained");
    }

    #[tokio::test]
    async fn a_cancel_wakes_the_waiting_reader() {
        let outbox = std::sync::Arc::new(Outbox::new(8));
        let waiter = {
            let outbox = outbox.clone();
            tokio::spawn(async move { outbox.readable_until_cancelled().await })
        };
        tokio::task::yield_now().await;
        outbox.cancel();
        let woke = tokio::time::timeout(std::time::Duration::from_secs(1), waiter);
        assert!(!woke.await.unwrap().unwrap());
    }
}
