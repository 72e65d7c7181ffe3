//! Memory accounting for the swap workload: how many frames the resident set and tmem's pools may hold
//! together, and the loop that reclaims until a faulting page fits.
//!
//! # Why
//!
//! Compression only pays if it is compared at equal memory. zkernel's first swapper let the resident set
//! fill a fixed budget and gave tmem its pool frames on top: "with tmem" then simply had more RAM than
//! "without". In Linux the zswap pool and the page cache share one RAM, so every frame the pool takes is a
//! frame reclaim must find among the resident pages. This file states that rule once, as numbers the
//! kernel's swapper and the host model both obey ([`Accounting::Equal`]); the old rule survives under its
//! own name ([`Accounting::Fixed`]) so a comparison can never use it by accident.
//!
//! # Vocabulary
//!
//! * **N**, the memory size (`swap_mem`): frames the workload may use, resident pages and pool frames
//!   together ([`MemoryBudget::total`]).
//! * **R**, resident: region pages mapped to a frame (the clock's length).
//! * **P**, pool frames: every frame tmem's pools hold right now, whatever they hold (frontswap pages,
//!   cleancache pages, fragmentation): tmem's `total_pages` (zswap's `pool_total_size` / 4096).
//! * **pool cap**: the most frames the pool may keep on its own ([`MemoryBudget::pool_cap`]), at most
//!   N − 1 so one frame is always left for the page that faults (zswap's `max_pool_percent`, of N here).
//! * **need**: frames about to be mapped (1 before a fault maps its page; 0 after someone else grew the
//!   pool).
//!
//! # The two accountings
//!
//! | accounting | invariant after every step | `must_reclaim(R, P)` | pool |
//! |---|---|---|---|
//! | [`Accounting::Equal`] ([`MemoryBudget`]) | R + P ≤ N | R + 1 + P > N | counts, capped at `pool_cap` |
//! | [`Accounting::Fixed`] ([`FixedBudget`], the legacy mode) | R ≤ budget | R + 1 > budget | on top, not counted |
//!
//! # The order of operations that keeps R + P ≤ N (the kernel's rules)
//!
//! A *step* is one completed page fault (or one completed write fault): the invariant holds whenever the
//! swapper hands the CPU back to the workload. Inside a step it may be broken for the length of one store
//! (the victim's frame is still held while tmem allocates room for its compressed copy: at most one
//! zspage above N).
//!
//! 1. **Fault-in, before a frame is allocated**: [`make_room`]`(acct, 1, ..)`. It loops:
//!    1. the pool above its cap? shrink it (write back or drop one tmem page) and look again;
//!    2. R + 1 + P > N and a page is resident? reclaim one page and look again. A dirty page is stored,
//!       which may *grow* P: that is why the loop looks again instead of counting. A swap-out that
//!       fails (a device error, a pool out of frames) leaves its page resident behind the clock's hand;
//!       the loop passes over it to the next victim ([`Room::failed`]) and returns the first error only
//!       after [`MAX_FAILED_SWAPOUTS`] failures. If every one of them was the device out of memory
//!       (zram's pool found no frame), the device is full, not broken: the loop ends as in 4, with
//!       [`Room::out_of_memory`];
//!    3. still R + 1 + P > N but nothing resident could go? shrink the pool and look again;
//!    4. else stop: it fits, or nothing could move (out of swap with an empty pool: the step goes over N
//!       rather than lose a page, and [`Room::fits`] says so).
//! 2. **Then** allocate the frame, fill it (zeros, or a frontswap load / disk read: a load never grows
//!    the pool), map it. An exclusive load or a released slot makes P smaller, never larger.
//! 3. **Store time** (inside reclaim): the victim is unmapped first (R − 1 once its frame is freed), then
//!    stored; tmem refuses or writes back its oldest pages when the store would take the pool above its
//!    limit, so the kernel sets tmem's limit to [`Accounting::pool_cap`]. The loop of step 1 then sees
//!    the grown P.
//! 4. **Anyone else who grows the pool** (a cleancache put) calls `make_room(acct, 0, ..)` afterwards,
//!    or uses an ephemeral pool that tmem empties first.
//! 5. **The pool alone at or above N** cannot happen after a step: the cap is at most N − 1, and rule 1.1
//!    shrinks a pool above it before anything else. tmem must therefore be able to shrink: write back its
//!    oldest frontswap page to the disk at its own slot (zswap's shrink), or drop a clean copy it keeps
//!    for a resident page (no I/O). A tmem that can do neither refuses stores instead.
//!
//! **Termination.** A reclaim that reports progress makes R one smaller and adds at most one object to the
//! pool; a shrink that reports progress removes one object (or one kept copy). So 2R + objects + kept copies
//! falls at every turn of the loop, whatever each store costs in frames, and the loop ends. [`make_room`]
//! also checks that R really fell after a reported reclaim, so a reclaimer that lies stops the loop
//! instead of spinning. A failed swap-out changes nothing, and at most [`MAX_FAILED_SWAPOUTS`] − 1 of them
//! are passed over in one call.
//!
//! # Worked example
//!
//! N = 8, pool cap 4 (50 %), R = 6, P = 2, a fault needs 1 frame: 6 + 1 + 2 = 9 > 8.
//! Reclaim a dirty page: R = 5, its 1 500-byte copy fits in an existing pool frame, P = 2: 5 + 1 + 2 = 8
//! ≤ 8, the pool is under its cap: room. The fault maps its page: R = 6, R + P = 8 = N.
//! Had the store opened a new 4-frame zspage (P = 6 > cap 4): shrink first (write back pool pages until
//! the zspage empties, P = 2), then 5 + 1 + 2 ≤ 8.
//!
//! # Contracts
//!
//! * `MemoryBudget::new(0)` and `FixedBudget::new(0)` are refused ([`BudgetError::Zero`]); a percent above
//!   100 is refused ([`BudgetError::Percent`]).
//! * [`Reclaimer::reclaim_one`] returning `Ok(true)` must have made R one smaller; [`Reclaimer::shrink_pool`]
//!   returning `Ok(true)` must have removed one object from the pool (its frame count may stay the same:
//!   fragmentation).
//! * [`make_room`] never panics; reclaimer errors come back unchanged, the pages left where they were.

/// Why a budget could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetError {
    /// A memory size of zero frames: nothing could ever be mapped.
    Zero,
    /// A pool percent above 100.
    Percent(u8),
}

/// Equal memory: resident pages and pool frames share `total` frames (the memory size N, `swap_mem`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBudget {
    /// N: frames for resident pages and pool frames together.
    pub total: u64,
    /// The most frames the pool may keep; at most `total − 1`.
    pub pool_cap: u64,
}

impl MemoryBudget {
    /// A memory size of `total` frames; the pool may take all but one of them.
    pub fn new(total: u64) -> Result<Self, BudgetError> {
        if total == 0 {
            return Err(BudgetError::Zero);
        }
        Ok(Self { total, pool_cap: total - 1 })
    }

    /// Cap the pool at `percent` % of N (rounded down), and never above N − 1 (zswap's
    /// `max_pool_percent`, of N rather than of all RAM).
    pub fn with_max_pool_percent(self, percent: u8) -> Result<Self, BudgetError> {
        if percent > 100 {
            return Err(BudgetError::Percent(percent));
        }
        let cap = self.total * u64::from(percent) / 100;
        Ok(Self { pool_cap: cap.min(self.total - 1), ..self })
    }

    /// Whether `need` more frames can be mapped now: R + need + P ≤ N.
    pub fn fits(&self, resident: u64, pool_pages: u64, need: u64) -> bool {
        resident.saturating_add(need).saturating_add(pool_pages) <= self.total
    }

    /// Before a fault maps its frame: must a page be reclaimed first? (R + 1 + P > N.)
    pub fn must_reclaim(&self, resident: u64, pool_pages: u64) -> bool {
        !self.fits(resident, pool_pages, 1)
    }

    /// Frames still free under N: N − (R + P), 0 when over.
    pub fn room(&self, resident: u64, pool_pages: u64) -> u64 {
        self.total.saturating_sub(resident.saturating_add(pool_pages))
    }

    /// The invariant: R + P ≤ N.
    pub fn holds(&self, resident: u64, pool_pages: u64) -> bool {
        self.fits(resident, pool_pages, 0)
    }
}

/// The legacy accounting: at most `resident` pages resident, the pool's frames on top (not counted).
/// Only for runs that say so: a comparison at equal memory uses [`MemoryBudget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedBudget {
    /// Most resident pages.
    pub resident: u64,
}

impl FixedBudget {
    pub fn new(resident: u64) -> Result<Self, BudgetError> {
        if resident == 0 {
            return Err(BudgetError::Zero);
        }
        Ok(Self { resident })
    }

    /// R + 1 > budget (the pool is ignored).
    pub fn must_reclaim(&self, resident: u64, _pool_pages: u64) -> bool {
        resident.saturating_add(1) > self.resident
    }

    /// Pages that may still become resident.
    pub fn room(&self, resident: u64, _pool_pages: u64) -> u64 {
        self.resident.saturating_sub(resident)
    }

    /// R ≤ budget.
    pub fn holds(&self, resident: u64, _pool_pages: u64) -> bool {
        resident <= self.resident
    }
}

/// Which accounting a swap run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accounting {
    /// Resident pages and pool frames share N (the default for comparisons).
    Equal(MemoryBudget),
    /// Resident pages under a budget, the pool on top (legacy, named so).
    Fixed(FixedBudget),
}

impl Accounting {
    /// The name the report prints.
    pub fn name(&self) -> &'static str {
        match self {
            Accounting::Equal(_) => "equal-memory",
            Accounting::Fixed(_) => "fixed-resident-budget",
        }
    }

    /// Whether `need` more frames can be mapped now.
    pub fn fits(&self, resident: u64, pool_pages: u64, need: u64) -> bool {
        match self {
            Accounting::Equal(b) => b.fits(resident, pool_pages, need),
            Accounting::Fixed(b) => resident.saturating_add(need) <= b.resident,
        }
    }

    /// Before a fault maps its frame: must a page be reclaimed first?
    pub fn must_reclaim(&self, resident: u64, pool_pages: u64) -> bool {
        match self {
            Accounting::Equal(b) => b.must_reclaim(resident, pool_pages),
            Accounting::Fixed(b) => b.must_reclaim(resident, pool_pages),
        }
    }

    /// Frames (Equal) or pages (Fixed) still free.
    pub fn room(&self, resident: u64, pool_pages: u64) -> u64 {
        match self {
            Accounting::Equal(b) => b.room(resident, pool_pages),
            Accounting::Fixed(b) => b.room(resident, pool_pages),
        }
    }

    /// The invariant of this accounting.
    pub fn holds(&self, resident: u64, pool_pages: u64) -> bool {
        match self {
            Accounting::Equal(b) => b.holds(resident, pool_pages),
            Accounting::Fixed(b) => b.holds(resident, pool_pages),
        }
    }

    /// The pool's cap, when the pool counts (the limit to give tmem).
    pub fn pool_cap(&self) -> Option<u64> {
        match self {
            Accounting::Equal(b) => Some(b.pool_cap),
            Accounting::Fixed(_) => None,
        }
    }

    fn pool_over(&self, pool_pages: u64) -> bool {
        self.pool_cap().is_some_and(|cap| pool_pages > cap)
    }
}

/// What [`make_room`] drives: the swapper (kernel) or the model (host tests).
pub trait Reclaimer {
    type Error;
    /// R: pages resident now.
    fn resident(&self) -> u64;
    /// P: frames every tmem pool holds now.
    fn pool_pages(&self) -> u64;
    /// Reclaim one resident page (a clean one costs nothing, a dirty one is stored). `Ok(false)`: no
    /// page could go (none resident, or no swap slot). `Ok(true)` must mean R fell by one.
    fn reclaim_one(&mut self) -> Result<bool, Self::Error>;
    /// Take one object out of the pool: drop a clean copy kept for a resident page, else write the
    /// oldest frontswap page back to the disk. `Ok(false)`: the pool could not shrink.
    fn shrink_pool(&mut self) -> Result<bool, Self::Error>;
    /// Whether a swap-out failed because the device is out of memory now (zram's pool found no frame:
    /// Linux's `-ENOMEM`), not because it is broken. When every failure of one [`make_room`] is this, it
    /// ends like a full device ([`Room::out_of_memory`]) instead of with the error. By default, never.
    fn is_out_of_memory(&self, _error: &Self::Error) -> bool {
        false
    }
}

/// Failed swap-outs one [`make_room`] passes over before it gives up with the first one's error. A failed
/// swap-out leaves its page resident and mapped (Linux re-dirties the page and reclaim moves on), so the
/// loop tries the next victim: a device that fails now and then costs a few retries, one that fails every
/// write ends the loop here instead of trying every resident page.
pub const MAX_FAILED_SWAPOUTS: u64 = 8;

/// What one [`make_room`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Room {
    /// Pages reclaimed.
    pub reclaimed: u64,
    /// Pool objects removed by shrinking.
    pub shrunk: u64,
    /// Swap-outs that failed and were passed over (each page stayed resident; the reclaimer counts and
    /// reports them). Fewer than [`MAX_FAILED_SWAPOUTS`], or make_room would have returned the error —
    /// unless every one was the device out of memory ([`Room::out_of_memory`]).
    pub failed: u64,
    /// `need` frames fit under the accounting now; `false`: nothing more could move (out of swap and an
    /// empty or unshrinkable pool, or the device out of memory), the step will go over.
    pub fits: bool,
    /// make_room gave up after [`MAX_FAILED_SWAPOUTS`] failed swap-outs, every one of them the device out
    /// of memory ([`Reclaimer::is_out_of_memory`]): a full device, like one at its memory limit, not a
    /// broken one. `fits` is `false`.
    pub out_of_memory: bool,
}

/// Reclaim and shrink, in the order of the module header, until `need` frames fit and the pool is under
/// its cap, or nothing more can move.
pub fn make_room<M: Reclaimer>(acct: Accounting, need: u64, m: &mut M) -> Result<Room, M::Error> {
    let mut room = Room::default();
    // The first failure that was not the device out of memory: the one returned if make_room gives up.
    let mut first_failure = None;
    loop {
        let (resident, pool) = (m.resident(), m.pool_pages());
        let short = !acct.fits(resident, pool, need);
        let pool_over = acct.pool_over(pool);
        if !short && !pool_over {
            room.fits = true;
            return Ok(room);
        }
        // 1. A pool over its cap gives back first: its pages are already out of the working set.
        if pool_over && m.shrink_pool()? {
            room.shrunk += 1;
            continue;
        }
        // 2. Reclaim a resident page; its store may grow the pool, so look again. A swap-out that fails
        //    leaves its page resident behind the clock's hand: try the next victim, up to a bound.
        if short && resident > 0 {
            match m.reclaim_one() {
                Ok(true) => {
                    if m.resident() >= resident {
                        // A reclaimer that reports progress without making any: stop rather than spin.
                        room.fits = false;
                        return Ok(room);
                    }
                    room.reclaimed += 1;
                    continue;
                }
                Ok(false) => {}
                Err(e) => {
                    room.failed += 1;
                    if first_failure.is_none() && !m.is_out_of_memory(&e) {
                        first_failure = Some(e);
                    }
                    if room.failed >= MAX_FAILED_SWAPOUTS {
                        return match first_failure {
                            Some(e) => Err(e),
                            None => {
                                room.out_of_memory = true;
                                room.fits = false;
                                Ok(room)
                            }
                        };
                    }
                    continue;
                }
            }
        }
        // 3. Nothing resident could go: the pool shrinks even under its cap (equal memory only).
        if short && !pool_over && acct.pool_cap().is_some() && pool > 0 && m.shrink_pool()? {
            room.shrunk += 1;
            continue;
        }
        room.fits = !short;
        return Ok(room);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_memory_counts_the_pool() {
        let b = MemoryBudget::new(8).unwrap();
        assert_eq!(b.pool_cap, 7);
        assert!(!b.must_reclaim(5, 2));
        assert!(b.must_reclaim(5, 3));
        assert!(b.must_reclaim(6, 2));
        assert_eq!(b.room(5, 2), 1);
        assert_eq!(b.room(9, 2), 0);
        assert!(b.holds(6, 2));
        assert!(!b.holds(6, 3));
        assert!(!b.fits(u64::MAX, u64::MAX, 1));
    }

    #[test]
    fn fixed_budget_ignores_the_pool() {
        let f = FixedBudget::new(4).unwrap();
        assert!(!f.must_reclaim(3, 1000));
        assert!(f.must_reclaim(4, 0));
        assert_eq!(f.room(1, 1000), 3);
        let a = Accounting::Fixed(f);
        assert!(a.holds(4, 1 << 40));
        assert!(!a.holds(5, 0));
        assert_eq!(a.pool_cap(), None);
        assert_eq!(a.name(), "fixed-resident-budget");
        assert_eq!(Accounting::Equal(MemoryBudget::new(3).unwrap()).name(), "equal-memory");
    }

    /// `Accounting` answers `must_reclaim` and `room` with the rule of the budget it wraps.
    #[test]
    fn accounting_passes_must_reclaim_and_room_to_its_budget() {
        let equal = Accounting::Equal(MemoryBudget::new(8).unwrap());
        assert!(!equal.must_reclaim(5, 2));
        assert!(equal.must_reclaim(5, 3), "the pool counts");
        assert_eq!(equal.room(2, 1), 5);
        assert_eq!(equal.room(6, 9), 0);
        let fixed = Accounting::Fixed(FixedBudget::new(4).unwrap());
        assert!(!fixed.must_reclaim(3, 1000), "the pool does not count");
        assert!(fixed.must_reclaim(4, 0));
        assert_eq!(fixed.room(1, 1000), 3);
    }

    #[test]
    fn bad_budgets_are_refused() {
        assert_eq!(MemoryBudget::new(0), Err(BudgetError::Zero));
        assert_eq!(FixedBudget::new(0), Err(BudgetError::Zero));
        let b = MemoryBudget::new(10).unwrap();
        assert_eq!(b.with_max_pool_percent(101), Err(BudgetError::Percent(101)));
        assert_eq!(b.with_max_pool_percent(25).unwrap().pool_cap, 2);
        assert_eq!(b.with_max_pool_percent(100).unwrap().pool_cap, 9);
        assert_eq!(MemoryBudget::new(1).unwrap().with_max_pool_percent(100).unwrap().pool_cap, 0);
    }

    /// A scripted reclaimer: each reclaim moves one page into the pool at `cost` frames per object
    /// (objects never share frames); each shrink removes one object.
    #[derive(Debug)]
    struct Script {
        resident: u64,
        objects: u64,
        cost: u64,
        slots: u64,
        calls: Vec<&'static str>,
    }

    impl Reclaimer for Script {
        type Error = ();
        fn resident(&self) -> u64 {
            self.resident
        }
        fn pool_pages(&self) -> u64 {
            self.objects * self.cost
        }
        fn reclaim_one(&mut self) -> Result<bool, ()> {
            self.calls.push("reclaim");
            if self.resident == 0 || self.slots == 0 {
                return Ok(false);
            }
            self.slots -= 1;
            self.resident -= 1;
            self.objects += 1;
            Ok(true)
        }
        fn shrink_pool(&mut self) -> Result<bool, ()> {
            self.calls.push("shrink");
            if self.objects == 0 {
                return Ok(false);
            }
            self.objects -= 1;
            Ok(true)
        }
    }

    #[test]
    fn a_store_that_grows_the_pool_is_followed_by_more_reclaim() {
        // N = 4, R = 4: each reclaim stores a page costing one whole frame, so R + P stays 4 until the
        // pool is over its cap (3); then the pool shrinks.
        let acct = Accounting::Equal(MemoryBudget::new(4).unwrap());
        let mut s = Script { resident: 4, objects: 0, cost: 1, slots: 100, calls: Vec::new() };
        let room = make_room(acct, 1, &mut s).unwrap();
        assert_eq!(room, Room { reclaimed: 4, shrunk: 1, failed: 0, fits: true, out_of_memory: false });
        assert_eq!(s.calls, ["reclaim", "reclaim", "reclaim", "reclaim", "shrink"]);
        assert_eq!((s.resident, s.pool_pages()), (0, 3));
    }

    #[test]
    fn a_pool_over_its_cap_shrinks_before_anything_is_reclaimed() {
        let acct = Accounting::Equal(MemoryBudget::new(10).unwrap().with_max_pool_percent(20).unwrap());
        let mut s = Script { resident: 2, objects: 3, cost: 2, slots: 100, calls: Vec::new() };
        let room = make_room(acct, 1, &mut s).unwrap();
        // P = 6 > cap 2: shrink twice (P = 2), then R + 1 + P = 5 ≤ 10.
        assert_eq!(room, Room { reclaimed: 0, shrunk: 2, failed: 0, fits: true, out_of_memory: false });
        assert_eq!(s.calls, ["shrink", "shrink"]);
    }

    #[test]
    fn out_of_swap_with_an_empty_pool_goes_over_and_says_so() {
        let acct = Accounting::Equal(MemoryBudget::new(2).unwrap());
        let mut s = Script { resident: 2, objects: 0, cost: 1, slots: 0, calls: Vec::new() };
        let room = make_room(acct, 1, &mut s).unwrap();
        assert_eq!(room, Room { reclaimed: 0, shrunk: 0, failed: 0, fits: false, out_of_memory: false });
        assert_eq!(s.calls, ["reclaim"]);
        // Out of swap with a pool: the pool shrinks instead, and that is enough here.
        let acct = Accounting::Equal(MemoryBudget::new(3).unwrap());
        let mut s = Script { resident: 2, objects: 1, cost: 1, slots: 0, calls: Vec::new() };
        let room = make_room(acct, 1, &mut s).unwrap();
        assert_eq!(room, Room { reclaimed: 0, shrunk: 1, failed: 0, fits: true, out_of_memory: false });
        assert_eq!(s.calls, ["reclaim", "shrink"]);
    }

    #[test]
    fn fixed_budget_never_shrinks_the_pool() {
        let acct = Accounting::Fixed(FixedBudget::new(2).unwrap());
        let mut s = Script { resident: 2, objects: 50, cost: 1, slots: 100, calls: Vec::new() };
        let room = make_room(acct, 1, &mut s).unwrap();
        assert_eq!(room, Room { reclaimed: 1, shrunk: 0, failed: 0, fits: true, out_of_memory: false });
        assert_eq!(s.calls, ["reclaim"]);
    }

    /// A reclaimer where nothing moves: every reclaim and every shrink says `Ok(false)`.
    #[derive(Debug)]
    struct Stuck {
        resident: u64,
        pool: u64,
        calls: Vec<&'static str>,
    }

    impl Reclaimer for Stuck {
        type Error = ();
        fn resident(&self) -> u64 {
            self.resident
        }
        fn pool_pages(&self) -> u64 {
            self.pool
        }
        fn reclaim_one(&mut self) -> Result<bool, ()> {
            self.calls.push("reclaim");
            Ok(false)
        }
        fn shrink_pool(&mut self) -> Result<bool, ()> {
            self.calls.push("shrink");
            Ok(false)
        }
    }

    /// A pool over its cap that cannot shrink, while the fault fits: no resident page is reclaimed for it.
    #[test]
    fn an_unshrinkable_pool_over_its_cap_reclaims_no_page_when_the_fault_fits() {
        // N = 10, cap 2, R = 3, P = 5: 3 + 1 + 5 = 9 ≤ 10 fits; only the pool is over.
        let acct = Accounting::Equal(MemoryBudget::new(10).unwrap().with_max_pool_percent(20).unwrap());
        let mut s = Stuck { resident: 3, pool: 5, calls: Vec::new() };
        assert_eq!(
            make_room(acct, 1, &mut s),
            Ok(Room { reclaimed: 0, shrunk: 0, failed: 0, fits: true, out_of_memory: false })
        );
        assert_eq!(s.calls, ["shrink"]);
    }

    /// With nothing resident, `make_room` does not ask the reclaimer for a page; it goes to the pool.
    #[test]
    fn with_nothing_resident_only_the_pool_is_asked() {
        // N = 4, R = 0, P = 5 over the cap of 3: the shrink fails, and there is no page to reclaim.
        let acct = Accounting::Equal(MemoryBudget::new(4).unwrap());
        let mut s = Stuck { resident: 0, pool: 5, calls: Vec::new() };
        assert_eq!(
            make_room(acct, 1, &mut s),
            Ok(Room { reclaimed: 0, shrunk: 0, failed: 0, fits: false, out_of_memory: false })
        );
        assert_eq!(s.calls, ["shrink"]);
        // Under the cap but short (need 2): the pool shrinks under its cap, still no reclaim call.
        let mut s = Script { resident: 0, objects: 3, cost: 1, slots: 100, calls: Vec::new() };
        assert_eq!(
            make_room(acct, 2, &mut s),
            Ok(Room { reclaimed: 0, shrunk: 1, failed: 0, fits: true, out_of_memory: false })
        );
        assert_eq!(s.calls, ["shrink"]);
    }

    #[derive(Debug)]
    struct Liar;
    impl Reclaimer for Liar {
        type Error = ();
        fn resident(&self) -> u64 {
            5
        }
        fn pool_pages(&self) -> u64 {
            0
        }
        fn reclaim_one(&mut self) -> Result<bool, ()> {
            Ok(true)
        }
        fn shrink_pool(&mut self) -> Result<bool, ()> {
            Err(())
        }
    }

    /// A reclaimer whose device fails the swap-outs `fail` says (by attempt number, from 0); every other
    /// swap-out moves one page to the disk (nothing in the pool).
    struct Flaky {
        resident: u64,
        attempts: u64,
        fail: fn(u64) -> bool,
        /// Which failed attempts are the device out of memory rather than broken.
        oom: fn(u64) -> bool,
    }

    impl Reclaimer for Flaky {
        type Error = u64;
        fn resident(&self) -> u64 {
            self.resident
        }
        fn pool_pages(&self) -> u64 {
            0
        }
        fn reclaim_one(&mut self) -> Result<bool, u64> {
            let attempt = self.attempts;
            self.attempts += 1;
            if (self.fail)(attempt) {
                return Err(attempt);
            }
            self.resident -= 1;
            Ok(true)
        }
        fn shrink_pool(&mut self) -> Result<bool, u64> {
            Ok(false)
        }
        fn is_out_of_memory(&self, attempt: &u64) -> bool {
            (self.oom)(*attempt)
        }
    }

    #[test]
    fn a_failed_swap_out_is_passed_over_for_the_next_victim() {
        // N = 4, R = 4: one page must go. The first two attempts fail; the third moves a page.
        let acct = Accounting::Equal(MemoryBudget::new(4).unwrap());
        let mut f = Flaky { resident: 4, attempts: 0, fail: |a| a < 2, oom: |_| false };
        let room = make_room(acct, 1, &mut f).unwrap();
        assert_eq!(room, Room { reclaimed: 1, shrunk: 0, failed: 2, fits: true, out_of_memory: false });
        assert_eq!((f.resident, f.attempts), (3, 3));
    }

    #[test]
    fn a_device_that_fails_every_swap_out_ends_the_loop_with_the_first_error() {
        let acct = Accounting::Equal(MemoryBudget::new(4).unwrap());
        let mut f = Flaky { resident: 4, attempts: 0, fail: |_| true, oom: |_| false };
        assert_eq!(make_room(acct, 1, &mut f), Err(0), "the first failure is the one reported");
        assert_eq!(f.attempts, MAX_FAILED_SWAPOUTS, "it gave up after the bound, not before or after");
        assert_eq!(f.resident, 4);
        // One short of the bound, then success: no error.
        let mut f = Flaky { resident: 4, attempts: 0, fail: |a| a + 1 < MAX_FAILED_SWAPOUTS, oom: |_| false };
        let room = make_room(acct, 1, &mut f).unwrap();
        assert_eq!(room.failed, MAX_FAILED_SWAPOUTS - 1);
        assert!(room.fits);
    }

    /// A device out of memory for every victim (zram's pool at its last frame) is full, not broken:
    /// make_room gives up after the bound with `out_of_memory` and no error, and the step goes over.
    #[test]
    fn a_device_out_of_memory_ends_the_loop_without_an_error() {
        let acct = Accounting::Equal(MemoryBudget::new(4).unwrap());
        let mut f = Flaky { resident: 4, attempts: 0, fail: |_| true, oom: |_| true };
        let room = make_room(acct, 1, &mut f);
        let want = Room { reclaimed: 0, shrunk: 0, failed: MAX_FAILED_SWAPOUTS, fits: false, out_of_memory: true };
        assert_eq!(room, Ok(want));
        assert_eq!((f.attempts, f.resident), (MAX_FAILED_SWAPOUTS, 4));
        // Out of memory once, then a page goes: an ordinary passed-over failure.
        let mut f = Flaky { resident: 4, attempts: 0, fail: |a| a == 0, oom: |_| true };
        let want = Room { reclaimed: 1, shrunk: 0, failed: 1, fits: true, out_of_memory: false };
        assert_eq!(make_room(acct, 1, &mut f), Ok(want));
    }

    /// A reclaimer that does not say which failures are out of memory (the default) has none: a device
    /// that fails every swap-out is broken, and make_room ends with its first error.
    #[test]
    fn by_default_no_failure_is_out_of_memory() {
        struct Broken(u64);
        impl Reclaimer for Broken {
            type Error = u64;
            fn resident(&self) -> u64 {
                4
            }
            fn pool_pages(&self) -> u64 {
                0
            }
            fn reclaim_one(&mut self) -> Result<bool, u64> {
                self.0 += 1;
                Err(self.0)
            }
            fn shrink_pool(&mut self) -> Result<bool, u64> {
                Ok(false)
            }
        }
        let acct = Accounting::Equal(MemoryBudget::new(4).unwrap());
        let mut b = Broken(0);
        assert!(!b.is_out_of_memory(&1));
        assert_eq!(make_room(acct, 1, &mut b), Err(1));
        assert_eq!(b.0, MAX_FAILED_SWAPOUTS);
    }

    /// One broken-device failure among the out-of-memory ones is an error: the first such is returned,
    /// even when it was not the first failure.
    #[test]
    fn one_hard_failure_among_out_of_memory_ones_is_the_error() {
        let acct = Accounting::Equal(MemoryBudget::new(4).unwrap());
        let mut f = Flaky { resident: 4, attempts: 0, fail: |_| true, oom: |a| a != 5 && a != 6 };
        assert_eq!(make_room(acct, 1, &mut f), Err(5));
        assert_eq!(f.attempts, MAX_FAILED_SWAPOUTS);
    }

    #[test]
    fn a_reclaimer_that_makes_no_progress_cannot_hang_the_loop() {
        let acct = Accounting::Equal(MemoryBudget::new(3).unwrap());
        assert_eq!(
            make_room(acct, 1, &mut Liar),
            Ok(Room { reclaimed: 0, shrunk: 0, failed: 0, fits: false, out_of_memory: false })
        );
    }

    #[test]
    fn reclaimer_errors_come_back_unchanged() {
        // Pool over its cap with Liar's shrink failing: the error is returned.
        #[derive(Debug)]
        struct Full;
        impl Reclaimer for Full {
            type Error = &'static str;
            fn resident(&self) -> u64 {
                0
            }
            fn pool_pages(&self) -> u64 {
                9
            }
            fn reclaim_one(&mut self) -> Result<bool, &'static str> {
                Ok(false)
            }
            fn shrink_pool(&mut self) -> Result<bool, &'static str> {
                Err("disk")
            }
        }
        let acct = Accounting::Equal(MemoryBudget::new(4).unwrap());
        assert_eq!(make_room(acct, 1, &mut Full), Err("disk"));
    }
}
