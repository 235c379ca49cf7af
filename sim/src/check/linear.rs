//! Linearizability: could every operation of a history have taken effect at one instant
//! between its call and its return, in an order the model accepts?
//!
//! [`check`] answers for any [`Model`]:
//!
//! ```
//! use squall::check::linear::{check, Budget, Linearizability};
//! use squall::history::Operation;
//! use squall_models::register::{Register, RegisterOp, RegisterRet};
//!
//! // c1 writes 1, then c2 reads 1.
//! let ops = vec![
//!     Operation { id: 0, client: 1, op: RegisterOp::Write(1),
//!                 ret: Some(RegisterRet::Written), call: 0, done: Some(1) },
//!     Operation { id: 1, client: 2, op: RegisterOp::Read,
//!                 ret: Some(RegisterRet::Read(Some(1))), call: 2, done: Some(3) },
//! ];
//! assert_eq!(check(&Register, &ops, &Budget::default()), Linearizability::Linearizable);
//! ```
//!
//! # How
//!
//! The search is Wing and Gong's, with Lowe's memoisation. Calls and returns sit in one
//! list ordered by event index. Walking it from the head, the search linearizes an operation
//! whose call it meets (if the model accepts its answer in the current state) and lifts its
//! call and return out of the list; meeting a return means that operation had to come
//! earlier, so the search backtracks. A (set of linearized operations, model state) pair
//! already seen leads nowhere new and is skipped; this memo is what keeps the search
//! tractable.
//!
//! When every operation names a part ([`Model::part`]), parts are checked one at a time in
//! part order (P-compositionality: a history is linearizable iff each part is). One
//! operation without a part makes the whole history one part.
//!
//! # Unknown outcomes
//!
//! An operation with `ret == None` (a timeout, a lost connection) may have taken effect at
//! any point after its call, or never. Its return counts as after everything else and it may
//! be left out; when it is placed, the model applies it with `ret = None`. Its `done` is not
//! used. An operation with an answer but no `done` must be placed, anywhere after its call.
//!
//! Unknown outcomes multiply the choices, so the search prunes two kinds that cannot
//! matter: placing an unknown operation that leaves the state as it is (leaving it for
//! later loses nothing), and placing one before an earlier-called unknown operation equal to
//! it (the two are interchangeable). The second is why [`check`] needs `M::Op: PartialEq`.
//!
//! # Verdicts
//!
//! [`Linearizability::Violation`] carries a [`Counterexample`]: a failing sub-history,
//! shrunk within [`Budget::shrink`], the operation the search could not place, and the model
//! states it was in when it gave up; [`Counterexample::text`] prints it. Shrinking keeps
//! the failure's reason. If the stuck operation could be placed were it called before
//! everything else, only real-time order rules its answer out (a stale read): then what is
//! left must still allow that, so it keeps writes that could produce the answer and the ones
//! after that make it stale. If no order allows the answer (a read of a value never
//! written), shrinking keeps an operation whose being optional (outcome unknown) would
//! explain the failure away. Either way it may keep more than the fewest operations that
//! fail. [`Linearizability::Unknown`] means [`Budget::steps`] ran out first. The same input
//! always gives the same verdict.

use std::collections::{BTreeMap, HashSet};
use std::fmt::{Display, Write as _};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::ops::Range;
use std::rc::Rc;

use squall_models::{Answer, Model};

use crate::history::Operation;

/// How much work a check may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Model steps the search may take over all parts before the verdict is unknown.
    pub steps: u64,
    /// Model steps to spend shrinking a counterexample (0: report the first one found).
    pub shrink: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            steps: 10_000_000,
            shrink: 1_000_000,
        }
    }
}

/// The verdict on a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Linearizability<S> {
    Linearizable,
    Violation(Counterexample<S>),
    /// [`Budget::steps`] ran out while checking `part` (the first part that did not finish),
    /// and no part failed.
    Unknown {
        part: Option<String>,
    },
}

/// Why a history is not linearizable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counterexample<S> {
    /// The part that failed; `None` when the history was checked whole.
    pub part: Option<String>,
    /// A sub-history that is not linearizable on its own: indices into the checked
    /// operations, ascending.
    pub ops: Vec<usize>,
    /// The operation (an index into the checked operations) whose return the search reached
    /// without having been able to place it, at the furthest point it got to in `ops`.
    pub op: usize,
    /// The model states the search was in when it reached that return (a few, distinct).
    pub states: Vec<S>,
}

/// How many stuck states a counterexample keeps.
const STATES: usize = 8;

/// Checks `ops` against `model`.
pub fn check<M: Model>(
    model: &M,
    ops: &[Operation<M::Op, M::Ret>],
    limits: &Budget,
) -> Linearizability<M::State>
where
    M::Op: PartialEq,
{
    let mut budget = limits.steps;
    let mut unfinished = None;
    for (part, sel) in parts(model, ops) {
        let before = budget;
        match search(model, ops, &sel, &Relax::NONE, &mut budget) {
            Outcome::Linearizable => {}
            Outcome::Exhausted => {
                unfinished.get_or_insert(part);
            }
            Outcome::Stuck(stuck) => {
                let spent = before - budget;
                let c = shrink(model, ops, sel, stuck, part, spent, limits);
                return Linearizability::Violation(c);
            }
        }
    }
    match unfinished {
        None => Linearizability::Linearizable,
        Some(part) => Linearizability::Unknown { part },
    }
}

impl<S> Counterexample<S> {
    /// The failing sub-history, one line an event in event order, the operation that could
    /// not be placed marked.
    pub fn text<O: Display, R: Display + Answer>(&self, ops: &[Operation<O, R>]) -> String {
        let mut events: Vec<(usize, usize, bool)> = Vec::new();
        for &i in &self.ops {
            events.push((ops[i].call, i, true));
            if let (Some(done), Some(_)) = (ops[i].done, &ops[i].ret) {
                events.push((done, i, false));
            }
        }
        events.sort_unstable();
        let mut out = String::new();
        for (_, i, call) in events {
            let o = &ops[i];
            let _ = write!(out, "c{:<2} #{:<4} ", o.client, o.id);
            match (&o.ret, call) {
                (None, _) => {
                    let _ = write!(out, "invoke  {} (outcome unknown)", o.op);
                }
                (Some(_), true) => {
                    let _ = write!(out, "invoke  {}", o.op);
                }
                (Some(ret), false) => {
                    let kind = if ret.is_ok() { "ok     " } else { "fail   " };
                    let _ = write!(out, "{kind} {ret}");
                    if i == self.op {
                        out.push_str("   <- could not be placed");
                    }
                }
            }
            out.push('\n');
        }
        out
    }
}

/// The operations of each part, in part order; the whole history when an operation has no
/// part.
fn parts<M: Model>(
    model: &M,
    ops: &[Operation<M::Op, M::Ret>],
) -> Vec<(Option<String>, Vec<usize>)> {
    let mut by_part: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, o) in ops.iter().enumerate() {
        match model.part(&o.op) {
            Some(p) => by_part.entry(p).or_default().push(i),
            None => return vec![(None, (0..ops.len()).collect())],
        }
    }
    by_part.into_iter().map(|(p, sel)| (Some(p), sel)).collect()
}

/// Cuts the failing `sel` after the return the search could not get past, then drops
/// chunks of operations, halving the chunk size, while what is left still fails.
///
/// A chunk is dropped only if what is left gets stuck at the same operation, and still for
/// the same kind of reason. When the stuck operation is *explained* (taken as called before
/// every other operation, the search gets past its return: only real-time order rules its
/// answer out, as for a stale read), what is left must stay explained, so it keeps the
/// writes that could produce the answer and fails through order alone. When no order
/// explains it (a read of a value nobody wrote), the history must still fail with the chunk
/// made optional (outcome unknown) rather than removed, so an optional write that would
/// explain the read is kept.
fn shrink<M: Model>(
    model: &M,
    ops: &[Operation<M::Op, M::Ret>],
    mut sel: Vec<usize>,
    mut stuck: Stuck<M::State>,
    part: Option<String>,
    spent: u64,
    limits: &Budget,
) -> Counterexample<M::State>
where
    M::Op: PartialEq,
{
    cut(ops, &mut sel, stuck.op);
    let mut budget = limits.shrink;
    // Optional operations and a widened one can make the search exponential: give up on a
    // trial that costs much more than finding the violation did (and count it as a no).
    let trial = spent.saturating_mul(4).max(10_000);
    let attempt = |sel: &[usize], relax: &Relax, budget: &mut u64| {
        let allowed = (*budget).min(trial);
        let mut left = allowed;
        let outcome = search(model, ops, sel, relax, &mut left);
        *budget -= allowed - left;
        outcome
    };
    // Every drop keeps the stuck operation, so it is the one to widen throughout.
    let op = stuck.op;
    let wide = Relax {
        weak: 0..0,
        wide: Some(op),
    };
    // Getting stuck further on (at another stale read, say) still placed the operation.
    let explains = |sel: &[usize], budget: &mut u64| match attempt(sel, &wide, budget) {
        Outcome::Linearizable => true,
        Outcome::Stuck(s) => s.op != op,
        Outcome::Exhausted => false,
    };
    let explained = explains(&sel, &mut budget);
    let mut chunk = sel.len().div_ceil(2);
    while budget > 0 && sel.len() > 1 {
        let mut at = 0;
        let mut changed = false;
        while at < sel.len() && budget > 0 {
            let end = (at + chunk).min(sel.len());
            let rest: Vec<usize> = sel[..at].iter().chain(&sel[end..]).copied().collect();
            let dropped = match search(model, ops, &rest, &Relax::NONE, &mut budget) {
                Outcome::Stuck(s) if s.op == op => {
                    let same = if explained {
                        explains(&rest, &mut budget)
                    } else {
                        let weak = Relax {
                            weak: at..end,
                            wide: None,
                        };
                        matches!(attempt(&sel, &weak, &mut budget), Outcome::Stuck(_))
                    };
                    same.then_some(s)
                }
                _ => None,
            };
            match dropped {
                Some(s) => {
                    sel = rest;
                    cut(ops, &mut sel, s.op);
                    stuck = s;
                    changed = true;
                }
                None => at = end,
            }
        }
        // Dropping one operation can free another tried before it: repeat single drops
        // until none succeeds.
        if chunk == 1 && !changed {
            break;
        }
        chunk = chunk.div_ceil(2);
    }
    Counterexample {
        part,
        ops: sel,
        op: stuck.op,
        states: stuck.states,
    }
}

/// Keeps the operations called before `op` returned: no later one can be placed before that
/// return, so they cannot help place `op`, and the search never got past it.
fn cut<O, R>(ops: &[Operation<O, R>], sel: &mut Vec<usize>, op: usize) {
    if let Some(done) = ops[op].done {
        sel.retain(|&i| ops[i].call < done);
    }
}

enum Outcome<S> {
    Linearizable,
    Stuck(Stuck<S>),
    Exhausted,
}

/// Where a failed search got furthest: the return it could not pass (an index into the
/// checked operations) and the states it was in there.
struct Stuck<S> {
    op: usize,
    states: Vec<S>,
}

/// How a search loosens the history it is given, to ask what a failure depends on.
struct Relax {
    /// Positions in the selection whose operations are taken as having unknown outcomes.
    weak: Range<usize>,
    /// An operation (an index into the checked operations) taken as called before every
    /// other one: it may take effect at any point before its return.
    wide: Option<usize>,
}

impl Relax {
    const NONE: Relax = Relax {
        weak: 0..0,
        wide: None,
    };
}

/// Searches for a linearization of the operations `sel` of `ops`, loosened by `relax`,
/// spending at most `budget` model steps.
fn search<M: Model>(
    model: &M,
    ops: &[Operation<M::Op, M::Ret>],
    sel: &[usize],
    relax: &Relax,
    budget: &mut u64,
) -> Outcome<M::State>
where
    M::Op: PartialEq,
{
    // The cheapest set representation for the size.
    if sel.len() <= 128 {
        Search::<M, [u64; 2]>::new(model, ops, sel, relax).run(budget)
    } else {
        Search::<M, Box<[u64]>>::new(model, ops, sel, relax).run(budget)
    }
}

/// A set of operations (local indices) as a bitset.
trait Bits: Clone + Eq + AsRef<[u64]> + AsMut<[u64]> {
    fn empty(n: usize) -> Self;

    fn flip(&mut self, i: usize) {
        self.as_mut()[i / 64] ^= 1 << (i % 64);
    }

    fn has(&self, i: usize) -> bool {
        self.as_ref()[i / 64] & (1 << (i % 64)) != 0
    }
}

impl Bits for [u64; 2] {
    fn empty(_: usize) -> Self {
        [0; 2]
    }
}

impl Bits for Box<[u64]> {
    fn empty(n: usize) -> Self {
        vec![0; n.div_ceil(64)].into_boxed_slice()
    }
}

/// A memo entry. Its hash is computed once, from an incremental hash of the set and a
/// hash of the state, so the memo never rehashes a set.
#[derive(PartialEq, Eq)]
struct Key<B, S> {
    hash: u64,
    bits: B,
    state: S,
}

impl<B, S> Hash for Key<B, S> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(self.hash);
    }
}

/// A fast, fixed-seed multiply-rotate hasher (the memo is only looked up, never iterated,
/// so its quality needs to be no better than this).
#[derive(Default)]
struct Fx(u64);

impl Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
    fn write_u8(&mut self, v: u8) {
        self.write_u64(v.into());
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(v.into());
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
}

/// A well-spread hash of one operation's membership in the set (splitmix64).
fn mix(i: usize) -> u64 {
    let mut z = (i as u64)
        .wrapping_add(1)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Entry `2k` is operation `k`'s call, `2k + 1` its return; entry `2n` is the head of a
/// circular doubly-linked list, so lifting and restoring an operation is O(1).
struct List {
    next: Vec<u32>,
    prev: Vec<u32>,
    /// Position of each entry in the full order, to compare how far the search got.
    rank: Vec<u32>,
}

impl List {
    /// The list of operations given as (call, return or `None` if optional).
    fn new(ends: impl ExactSizeIterator<Item = (usize, Option<usize>)>) -> List {
        let n = ends.len();
        // Event indices are unique, so only returns at +infinity tie; among those the ones
        // that must be placed come first, so meeting an optional one means all are placed.
        let mut order: Vec<(usize, bool, usize)> = Vec::with_capacity(2 * n);
        for (k, (call, done)) in ends.enumerate() {
            order.push((call, false, 2 * k));
            order.push((done.unwrap_or(usize::MAX), done.is_none(), 2 * k + 1));
        }
        order.sort_unstable();
        let head = 2 * n;
        let mut list = List {
            next: vec![0; 2 * n + 1],
            prev: vec![0; 2 * n + 1],
            rank: vec![u32::MAX; 2 * n + 1],
        };
        let mut last = head;
        for (r, &(_, _, e)) in order.iter().enumerate() {
            list.rank[e] = r as u32;
            list.next[last] = e as u32;
            list.prev[e] = last as u32;
            last = e;
        }
        list.next[last] = head as u32;
        list.prev[head] = last as u32;
        list
    }

    fn head(&self) -> usize {
        self.next.len() - 1
    }

    fn next(&self, e: usize) -> usize {
        self.next[e] as usize
    }

    fn unlink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p as usize] = n;
        self.prev[n as usize] = p;
    }

    fn relink(&mut self, e: usize) {
        let (p, n) = (self.prev[e] as usize, self.next[e] as usize);
        self.next[p] = e as u32;
        self.prev[n] = e as u32;
    }

    /// Takes operation `k` out of the list.
    fn lift(&mut self, k: usize) {
        self.unlink(2 * k);
        self.unlink(2 * k + 1);
    }

    /// Puts operation `k` back; undoes the latest [`List::lift`].
    fn unlift(&mut self, k: usize) {
        self.relink(2 * k + 1);
        self.relink(2 * k);
    }
}

struct Search<'a, M: Model, B> {
    model: &'a M,
    ops: &'a [Operation<M::Op, M::Ret>],
    sel: &'a [usize],
    weak: Range<usize>,
    list: List,
    bits: B,
    /// For an optional operation, the last optional one called before it that is the same
    /// operation (`NONE` if there is none).
    twin: Vec<u32>,
}

const NONE: u32 = u32::MAX;

impl<'a, M: Model, B: Bits> Search<'a, M, B>
where
    M::Op: PartialEq,
{
    fn new(
        model: &'a M,
        ops: &'a [Operation<M::Op, M::Ret>],
        sel: &'a [usize],
        relax: &Relax,
    ) -> Self {
        let weak = relax.weak.clone();
        let ends = sel.iter().enumerate().map(|(k, &i)| {
            let o = &ops[i];
            let call = if relax.wide == Some(i) { 0 } else { o.call };
            let done = match o.ret {
                Some(_) if !weak.contains(&k) => Some(o.done.unwrap_or(usize::MAX)),
                _ => None,
            };
            (call, done)
        });
        let list = List::new(ends);
        let mut search = Search {
            model,
            ops,
            sel,
            list,
            weak,
            bits: B::empty(sel.len()),
            twin: vec![NONE; sel.len()],
        };
        // Same optional operations are interchangeable (either can go wherever the other
        // can), so the search places them in call order only: k + 1 choices instead of 2^k.
        let mut optional: Vec<usize> = (0..sel.len())
            .filter(|&k| search.ret(k).is_none())
            .collect();
        optional.sort_by_key(|&k| ops[sel[k]].call);
        for (n, &k) in optional.iter().enumerate() {
            let op = &ops[sel[k]].op;
            if let Some(&t) = optional[..n].iter().rev().find(|&&t| ops[sel[t]].op == *op) {
                search.twin[k] = t as u32;
            }
        }
        search
    }

    /// Operation `k`'s answer; `None` if unknown or taken as unknown.
    fn ret(&self, k: usize) -> Option<&'a M::Ret> {
        match self.weak.contains(&k) {
            true => None,
            false => self.ops[self.sel[k]].ret.as_ref(),
        }
    }

    fn run(mut self, budget: &mut u64) -> Outcome<M::State> {
        let head = self.list.head();
        // States are shared between the memo, the stack and the search, never copied.
        let mut memo: HashSet<Key<B, Rc<M::State>>, BuildHasherDefault<Fx>> = HashSet::default();
        // (operation linearized, state before it), innermost last.
        let mut stack: Vec<(usize, Rc<M::State>)> = Vec::with_capacity(self.sel.len());
        let mut state = Rc::new(self.model.init());
        let mut set_hash = 0u64;
        let mut stuck = Stuck {
            op: usize::MAX,
            states: Vec::new(),
        };
        let mut furthest = None;
        let mut e = self.list.next(head);
        loop {
            if e == head {
                return Outcome::Linearizable;
            }
            let (k, call) = (e / 2, e % 2 != 1);
            let ret = self.ret(k);
            if call {
                if *budget == 0 {
                    return Outcome::Exhausted;
                }
                *budget -= 1;
                let op = &self.ops[self.sel[k]].op;
                let after = self.model.step(&state, op, ret);
                // Placing an optional operation that changes nothing only gives up the
                // choice of placing it later.
                let twin = self.twin[k];
                let after = after.filter(|a| {
                    ret.is_some()
                        || (a != &*state && (twin == NONE || self.bits.has(twin as usize)))
                });
                if let Some(after) = after {
                    let hash = set_hash ^ mix(k);
                    self.bits.flip(k);
                    let mut h = Fx(hash);
                    after.hash(&mut h);
                    let key = Key {
                        hash: h.finish(),
                        bits: self.bits.clone(),
                        state: Rc::new(after),
                    };
                    if !memo.contains(&key) {
                        let before = std::mem::replace(&mut state, key.state.clone());
                        memo.insert(key);
                        stack.push((k, before));
                        set_hash = hash;
                        self.list.lift(k);
                        e = self.list.next(head);
                        continue;
                    }
                    self.bits.flip(k);
                }
                e = self.list.next(e);
            } else {
                if ret.is_none() {
                    // Only optional operations are left: leave them out.
                    return Outcome::Linearizable;
                }
                let rank = self.list.rank[e];
                match furthest {
                    Some(f) if rank < f => {}
                    Some(f) if rank == f => {
                        if stuck.states.len() < STATES && !stuck.states.contains(&*state) {
                            stuck.states.push(M::State::clone(&state));
                        }
                    }
                    _ => {
                        furthest = Some(rank);
                        stuck.op = self.sel[k];
                        stuck.states = vec![M::State::clone(&state)];
                    }
                }
                let Some((j, before)) = stack.pop() else {
                    return Outcome::Stuck(stuck);
                };
                state = before;
                self.bits.flip(j);
                set_hash ^= mix(j);
                self.list.unlift(j);
                e = self.list.next(2 * j);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use squall_models::register::{Register, RegisterOp as Op, RegisterRet as Ret};

    /// An operation called at event `call` and returning `ret` at `done` (`None`: unknown).
    fn op<O, R>(call: usize, done: Option<usize>, op: O, ret: Option<R>) -> Operation<O, R> {
        Operation {
            id: call as u64,
            client: call as u32,
            op,
            ret,
            call,
            done,
        }
    }

    fn write(call: usize, done: usize, v: i64) -> Operation<Op, Ret> {
        op(call, Some(done), Op::Write(v), Some(Ret::Written))
    }

    fn read(call: usize, done: usize, v: Option<i64>) -> Operation<Op, Ret> {
        op(call, Some(done), Op::Read, Some(Ret::Read(v)))
    }

    fn lost(call: usize, o: Op) -> Operation<Op, Ret> {
        op(call, None, o, None)
    }

    fn verdict(ops: &[Operation<Op, Ret>]) -> Linearizability<Option<i64>> {
        check(&Register, ops, &Budget::default())
    }

    fn violation(ops: &[Operation<Op, Ret>]) -> Counterexample<Option<i64>> {
        match verdict(ops) {
            Linearizability::Violation(c) => c,
            v => panic!("expected a violation, got {v:?}"),
        }
    }

    #[test]
    fn empty_history_is_linearizable() {
        assert_eq!(verdict(&[]), Linearizability::Linearizable);
    }

    #[test]
    fn sequential_write_then_read() {
        let ops = [write(0, 1, 1), read(2, 3, Some(1))];
        assert_eq!(verdict(&ops), Linearizability::Linearizable);
    }

    #[test]
    fn stale_read_is_a_violation() {
        let ops = [write(0, 1, 1), write(2, 3, 2), read(4, 5, Some(1))];
        let c = violation(&ops);
        assert_eq!(c.part, None);
        assert_eq!(c.op, 2);
        assert_eq!(c.states, vec![Some(2)]);
        // Without either write the read would fail for another reason.
        assert_eq!(c.ops, vec![0, 1, 2]);
    }

    #[test]
    fn concurrent_writes_take_either_order() {
        // w1 and w2 overlap; reading 1 afterwards means w2 went first.
        let ops = [write(0, 2, 1), write(1, 3, 2), read(4, 5, Some(1))];
        assert_eq!(verdict(&ops), Linearizability::Linearizable);
        // Reading 1 and then 2 after both returned cannot be.
        let ops = [
            write(0, 2, 1),
            write(1, 3, 2),
            read(4, 5, Some(1)),
            read(6, 7, Some(2)),
        ];
        let c = violation(&ops);
        assert_eq!(c.op, 3);
    }

    #[test]
    fn read_overlapping_a_write_sees_either_value() {
        let ops = [write(0, 3, 1), read(1, 2, None)];
        assert_eq!(verdict(&ops), Linearizability::Linearizable);
        let ops = [write(0, 3, 1), read(1, 2, Some(1))];
        assert_eq!(verdict(&ops), Linearizability::Linearizable);
    }

    #[test]
    fn unknown_write_is_assumed_to_take_effect_when_needed() {
        let ops = [lost(0, Op::Write(1)), read(1, 2, Some(1))];
        assert_eq!(verdict(&ops), Linearizability::Linearizable);
    }

    #[test]
    fn unknown_write_is_dropped_when_it_must_not_have_happened() {
        let ops = [
            write(0, 1, 2),
            lost(2, Op::Write(1)),
            read(3, 4, Some(2)),
            read(5, 6, Some(2)),
        ];
        assert_eq!(verdict(&ops), Linearizability::Linearizable);
    }

    #[test]
    fn unknown_write_takes_effect_only_after_its_call() {
        let ops = [read(0, 1, Some(1)), lost(2, Op::Write(1))];
        let c = violation(&ops);
        assert_eq!(c.op, 0);
        assert_eq!(c.ops, vec![0]);
        assert_eq!(c.states, vec![None]);
    }

    #[test]
    fn unknown_cas_chain() {
        // cas 1->2 may have happened, then a read sees 2.
        let ops = [
            write(0, 1, 1),
            lost(2, Op::Cas(1, 2)),
            read(3, 4, Some(2)),
            read(5, 6, Some(2)),
        ];
        assert_eq!(verdict(&ops), Linearizability::Linearizable);
    }

    #[test]
    fn same_unknown_operations_are_placed_in_call_order() {
        // 40 unknown writes of two values: searching their subsets would never end.
        let mut ops: Vec<_> = (0..40)
            .map(|i| lost(i, Op::Write(1 + i as i64 % 2)))
            .collect();
        ops.push(read(40, 41, Some(2)));
        ops.push(read(42, 43, Some(1)));
        let limits = Budget {
            steps: 100_000,
            ..Budget::default()
        };
        assert_eq!(
            check(&Register, &ops, &limits),
            Linearizability::Linearizable
        );
        ops.push(read(44, 45, Some(3)));
        let c = match check(&Register, &ops, &limits) {
            Linearizability::Violation(c) => c,
            v => panic!("{v:?}"),
        };
        assert_eq!(c.ops, vec![42]);
    }

    #[test]
    fn failed_cas_must_be_justified() {
        let cas = |call, done, ok| op(call, Some(done), Op::Cas(1, 2), Some(Ret::Cas(ok)));
        assert_eq!(
            verdict(&[write(0, 1, 3), cas(2, 3, false)]),
            Linearizability::Linearizable
        );
        let c = violation(&[write(0, 1, 1), cas(2, 3, false)]);
        assert_eq!((c.op, c.states), (1, vec![Some(1)]));
    }

    #[test]
    fn shrinks_to_the_essential_operations() {
        let mut ops = vec![write(0, 1, 7)];
        for i in 0..20 {
            ops.push(read(2 + 2 * i, 3 + 2 * i, Some(7)));
        }
        ops.push(write(50, 53, 8));
        ops.push(read(51, 52, Some(9)));
        ops.push(read(54, 55, Some(7)));
        let c = violation(&ops);
        assert_eq!(c.ops, vec![22]);
        assert_eq!(c.op, 22);
        let text = c.text(&ops);
        assert_eq!(
            text,
            "c51 #51   invoke  read\nc51 #51   ok      9   <- could not be placed\n"
        );
    }

    #[test]
    fn no_shrink_budget_reports_the_cut_history() {
        let ops = [
            write(0, 1, 1),
            write(2, 3, 2),
            read(4, 5, Some(1)),
            write(6, 7, 3),
        ];
        let limits = Budget {
            shrink: 0,
            ..Budget::default()
        };
        match check(&Register, &ops, &limits) {
            Linearizability::Violation(c) => assert_eq!(c.ops, vec![0, 1, 2]),
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn exhausted_budget_is_unknown() {
        let ops = [write(0, 1, 1), read(2, 3, Some(1))];
        let limits = Budget {
            steps: 1,
            ..Budget::default()
        };
        assert_eq!(
            check(&Register, &ops, &limits),
            Linearizability::Unknown { part: None }
        );
    }

    #[test]
    fn large_histories_use_the_heap_set() {
        // 200 writes one after another, then reads: more than 128 operations.
        let mut ops: Vec<_> = (0..200)
            .map(|i| write(2 * i, 2 * i + 1, i as i64))
            .collect();
        ops.push(read(400, 401, Some(199)));
        assert_eq!(verdict(&ops), Linearizability::Linearizable);
        ops.push(read(402, 403, Some(198)));
        let c = violation(&ops);
        assert_eq!((c.op, c.states), (201, vec![Some(199)]));
        // A stale read: only the write it saw, the one after, and the read stay.
        assert_eq!(c.ops, vec![198, 199, 201]);
        // A read of a value never written is tested with writes made optional, which is
        // costly here, so shrinking stops at its budget.
        ops.pop();
        ops.push(read(402, 403, Some(500)));
        let c = violation(&ops);
        assert!(c.ops.ends_with(&[199, 200, 201]) && c.ops.len() < 202);
    }

    /// Registers by name: each operation touches one, so histories split by name.
    struct Registers {
        /// Whether operations on "free" name no part.
        free: bool,
    }

    impl Model for Registers {
        type State = Option<i64>;
        type Op = (&'static str, Op);
        type Ret = Ret;
        fn init(&self) -> Option<i64> {
            None
        }
        fn step(&self, s: &Option<i64>, op: &Self::Op, ret: Option<&Ret>) -> Option<Option<i64>> {
            Register.step(s, &op.1, ret)
        }
        fn part(&self, op: &Self::Op) -> Option<String> {
            (!(self.free && op.0 == "free")).then(|| op.0.to_string())
        }
    }

    #[test]
    fn parts_are_checked_apart_in_order() {
        let on = |name, o: Operation<Op, Ret>| Operation {
            id: o.id,
            client: o.client,
            op: (name, o.op),
            ret: o.ret,
            call: o.call,
            done: o.done,
        };
        // Each name alone is linearizable; as one register they are not.
        let ops = [
            on("b", write(0, 1, 1)),
            on("a", write(2, 3, 2)),
            on("b", read(4, 5, Some(1))),
            on("a", read(6, 7, Some(2))),
        ];
        let split = Registers { free: false };
        assert_eq!(
            check(&split, &ops, &Budget::default()),
            Linearizability::Linearizable
        );
        let bad = [
            on("b", write(0, 1, 1)),
            on("a", read(2, 3, Some(3))),
            on("b", read(4, 5, Some(2))),
        ];
        match check(&split, &bad, &Budget::default()) {
            Linearizability::Violation(c) => {
                assert_eq!(c.part.as_deref(), Some("a"));
                assert_eq!(c.ops, vec![1]);
            }
            v => panic!("{v:?}"),
        }
        // One operation without a part: the whole history is one register, and fails.
        let mut whole = ops.to_vec();
        whole.push(on("free", read(8, 9, Some(2))));
        match check(&Registers { free: true }, &whole, &Budget::default()) {
            Linearizability::Violation(c) => assert_eq!(c.part, None),
            v => panic!("{v:?}"),
        }
    }

    mod kv {
        use super::super::*;
        use squall_models::kv::{Entry, KvModel, KvOp, KvRet};

        fn put(
            call: usize,
            done: Option<usize>,
            value: &str,
            rev: Option<u64>,
        ) -> Operation<KvOp, KvRet> {
            let op = KvOp::Put {
                key: "k".into(),
                value: value.into(),
            };
            super::op(call, done, op, rev.map(KvRet::Written))
        }

        fn update(
            call: usize,
            done: usize,
            value: &str,
            expected: u64,
            rev: u64,
        ) -> Operation<KvOp, KvRet> {
            let op = KvOp::Update {
                key: "k".into(),
                value: value.into(),
                expected,
            };
            super::op(call, Some(done), op, Some(KvRet::Written(rev)))
        }

        fn entry(call: usize, done: usize, value: &str, rev: u64) -> Operation<KvOp, KvRet> {
            let shown = Entry {
                value: value.into(),
                rev,
            };
            let op = KvOp::Entry { key: "k".into() };
            super::op(call, Some(done), op, Some(KvRet::Entry(Some(shown))))
        }

        /// The stuck operation and the counterexample's operations.
        fn violation(ops: &[Operation<KvOp, KvRet>]) -> (usize, Vec<usize>) {
            match check(&KvModel, ops, &Budget::default()) {
                Linearizability::Violation(c) => (c.op, c.ops),
                v => panic!("expected a violation, got {v:?}"),
            }
        }

        #[test]
        fn stale_read_keeps_the_writes_that_make_it_stale() {
            // put x @1; update y @1 -> @2; then a read of x@1. The lost put leaves a hidden
            // revision the update can follow without the put, so the read stays stuck with
            // the put dropped, and the put made optional does not unstick it (the read is
            // stale either way): shrinking by those tests alone left the read by itself.
            let ops = [
                put(0, Some(1), "x", Some(1)),
                entry(2, 3, "x", 1),
                put(4, None, "w", None),
                update(5, 6, "y", 1, 2),
                entry(7, 8, "y", 2),
                entry(9, 10, "x", 1),
            ];
            assert_eq!(violation(&ops), (5, vec![0, 3, 5]));
        }

        #[test]
        fn a_later_stale_read_does_not_hide_the_first() {
            // The second read, called before the first returned, is stale too: the first
            // is explained even though the widened search gets stuck at the second.
            let ops = [
                put(0, Some(1), "x", Some(1)),
                put(2, None, "w", None),
                update(3, 4, "y", 1, 2),
                entry(5, 7, "x", 1),
                entry(6, 8, "x", 1),
            ];
            assert_eq!(violation(&ops), (3, vec![0, 2, 3]));
        }

        #[test]
        fn stale_read_keeps_an_unknown_write_it_saw() {
            // The read's value may come from the put whose outcome was lost.
            let ops = [
                put(0, None, "x", None),
                entry(1, 2, "x", 1),
                put(3, Some(4), "y", Some(2)),
                entry(5, 6, "y", 2),
                entry(7, 8, "x", 1),
            ];
            assert_eq!(violation(&ops), (4, vec![0, 2, 4]));
        }
    }

    #[test]
    fn same_input_same_verdict() {
        let ops = [
            write(0, 4, 1),
            write(1, 5, 2),
            lost(2, Op::Cas(2, 3)),
            read(6, 7, Some(3)),
            read(8, 9, Some(1)),
        ];
        let first = verdict(&ops);
        assert!(matches!(first, Linearizability::Violation(_)));
        for _ in 0..3 {
            assert_eq!(verdict(&ops), first);
        }
    }
}
