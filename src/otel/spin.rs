//! A lock whose release is a plain store, for the recorders' buffers.
//!
//! A call's record is copied into the buffer's next free slot, memory that has gone cold
//! since the recorder last drained it. `std`'s mutex releases with an atomic exchange
//! (it must learn whether a thread waits), and on x86 a locked instruction waits until
//! every earlier store has reached the cache: the call stood still on its own copy —
//! in the profiles, nine tenths of the hook's time on the call path was that one
//! instruction. Releasing with a store lets the copy finish in the background.
//!
//! A copy into memory that is still cold has to finish before the call's next locked
//! instruction all the same (an `Arc`'s count, the next lock), so each push also asks
//! the cache for the slot after its own ([`prefetch`]): the next call's record then goes
//! into memory that was fetched while that call did its I/O.
//!
//! The price of the spin lock is that a waiter cannot sleep: it spins, then yields. Both sides hold the
//! lock for a few instructions (a push; a swap of two vectors), so a waiter only waits
//! when the holder was preempted inside, and yielding hands it the core.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};

/// Spins before a waiter starts yielding its core.
const SPINS: u32 = 64;

/// A spin lock around a `T`.
pub(super) struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is only reached through a guard, and one guard exists at a time
// (`locked` is set by the compare-exchange that makes a guard and cleared by its drop),
// so the lock hands `T` between threads as a mutex does.
#[allow(unsafe_code)]
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    pub(super) const fn new(value: T) -> Self {
        SpinLock {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// Waits for the lock.
    pub(super) fn lock(&self) -> SpinGuard<'_, T> {
        let mut spins = 0;
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            if spins < SPINS {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        SpinGuard { lock: self }
    }
}

/// Access to the value while the lock is held.
pub(super) struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: this guard holds the lock, so no other reference to the value exists.
        #[allow(unsafe_code)]
        unsafe {
            &*self.lock.value.get()
        }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this reference unique.
        #[allow(unsafe_code)]
        unsafe {
            &mut *self.lock.value.get()
        }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        // The release: a plain store on x86, no wait for the copies made under the lock.
        self.lock.locked.store(false, Ordering::Release);
    }
}

/// Asks the cache for the memory of the `T` at `at`, to be written soon. A hint: `at`
/// need not point at anything (it is never dereferenced), and elsewhere than on x86-64
/// this does nothing.
pub(super) fn prefetch<T>(at: *const T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        const LINE: usize = 64;
        let start = at.cast::<i8>();
        let mut offset = 0;
        while offset < size_of::<T>() {
            // SAFETY: a prefetch is a hint that never faults, whatever the address
            // (`wrapping_add` makes no claim about it either), and SSE, which the
            // intrinsic needs, is part of every x86-64 CPU.
            #[allow(unsafe_code)]
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset));
            }
            offset += LINE;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn threads_taking_turns_lose_no_update() {
        let counter = Arc::new(SpinLock::new(0_u64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let counter = Arc::clone(&counter);
                std::thread::spawn(move || {
                    for _ in 0..50_000 {
                        *counter.lock() += 1;
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("a thread panicked");
        }
        assert_eq!(*counter.lock(), 200_000);
    }
}
