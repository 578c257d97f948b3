//! Work on large inputs split over threads: the parts of a script's lines, the halves of a
//! table, two independent jobs side by side. Below [`PARALLEL_LINES`] everything runs on the
//! calling thread.

use std::ops::Range;
use std::thread::ScopedJoinHandle;

/// Lines of a script at which work on them is split over threads (below, one thread).
pub const PARALLEL_LINES: usize = 16 * 1024;

/// A scoped thread's result; its panic goes on in the joining thread.
fn join<R>(handle: ScopedJoinHandle<'_, R>) -> R {
    handle.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// `f(0)` and `f(1)`, on two threads when `parallel`: a table built in two halves by a bit of
/// its keys, each half's inserts on a core of their own.
pub fn halves<R: Send>(parallel: bool, f: impl Fn(usize) -> R + Sync) -> [R; 2] {
    if !parallel {
        return [f(0), f(1)];
    }
    std::thread::scope(|s| {
        let second = s.spawn(|| f(1));
        [f(0), join(second)]
    })
}

/// `a()` and `b()`, `a` on a thread of its own when `parallel`: two jobs that share nothing.
pub fn beside<A: Send, B>(parallel: bool, a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B) -> (A, B) {
    if !parallel {
        return (a(), b());
    }
    std::thread::scope(|s| {
        let a = s.spawn(a);
        let b = b();
        (join(a), b)
    })
}

/// How many parts, one thread each, `len` lines are worked on in: one below
/// [`PARALLEL_LINES`], else one per core, up to four.
fn parts_for(len: usize) -> usize {
    if len < PARALLEL_LINES {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
    }
}

/// `f` over `0..len` in contiguous parts, each on its own thread (up to four) when `len` is at
/// least [`PARALLEL_LINES`]; the parts' results in order.
pub fn in_parts<R: Send>(len: usize, f: impl Fn(Range<usize>) -> R + Sync) -> Vec<R> {
    let parts = parts_for(len);
    if parts == 1 {
        return vec![f(0..len)];
    }
    let size = len.div_ceil(parts);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..len)
            .step_by(size)
            .map(|start| s.spawn(move || f(start..(start + size).min(len))))
            .collect();
        handles.into_iter().map(join).collect()
    })
}

/// `f(first, part)` over `items` in contiguous parts as [`in_parts`] splits them (`first`: the
/// index of the part's first item); the parts' results in order.
pub fn in_parts_mut<T: Send, R: Send>(items: &mut [T], f: impl Fn(usize, &mut [T]) -> R + Sync) -> Vec<R> {
    let parts = parts_for(items.len());
    if parts == 1 {
        return vec![f(0, items)];
    }
    let size = items.len().div_ceil(parts);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks_mut(size)
            .enumerate()
            .map(|(n, part)| s.spawn(move || f(n * size, part)))
            .collect();
        handles.into_iter().map(join).collect()
    })
}
