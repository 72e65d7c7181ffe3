//! Model-based random test: [`OPS`] random operations per seed against a reference model that knows,
//! frame by frame, what every frame should be. After every operation the counters must agree with the
//! model; every few hundred operations (and at the end) the whole table and the free lists are compared
//! with it, including that the free lists hold exactly the maximal aligned blocks of the free frames.
//!
//! The span is ~5,100 frames with three managed regions of odd sizes and alignments and reserved holes
//! between them; two per-CPU lists share the allocator. Phases of 5,000 operations alternate between
//! filling memory (so allocations fail and the OOM verdict is checked by brute force) and emptying it (so
//! blocks merge back up to order 10). The last region is handed over only after the first phase, to a busy
//! allocator, so frames never allocated since they were added outlive the start of the run.
//!
//! Besides the owners, the model tracks whether each frame was ever handed to an owner since it was added,
//! and predicts from that alone whether freeing a free frame is `NotAllocated` (never allocated) or
//! `DoubleFree` (allocated and freed already); a parked frame is always `DoubleFree`. Every allocation here
//! names a real owner, as the crate asks, so the prediction must match the allocator's exactly.

use super::*;

/// Operations per seed.
const OPS: usize = 100_000;
const CPUS: usize = 2;
const BASE: u64 = 1000;
const END: u64 = 6100;
const REGIONS: [(u64, u64); 3] = [(1003, 2500), (2600, 4100), (5000, 6001)];
/// How many of [`REGIONS`] are handed over at the start; the rest at operation [`LATE_AT`].
const EARLY_REGIONS: usize = 2;
/// When the late regions are handed over: the start of the first emptying phase, when fresh frames last
/// longest (handing them over later costs the first phases the memory that per-CPU spills need).
const LATE_AT: usize = 5_000;
/// Full table/list comparison every this many operations.
const FULL_CHECK_EVERY: usize = 500;

/// xorshift64* — small, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // splitmix64 once, so nearby seeds diverge at once (and the state is never 0).
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// An order biased toward small ones: half are 0, a fifth 1, …, 1.5 % each for 4..=9, 3 % for 10
    /// (so whole 4 MiB blocks are asked for often enough to catch the rare moments they are free).
    fn order(&mut self) -> u8 {
        match self.below(100) {
            0..50 => 0,
            50..70 => 1,
            70..80 => 2,
            80..88 => 3,
            88..97 => 4 + self.below(6) as u8,
            _ => MAX_ORDER,
        }
    }

    fn owner(&mut self) -> Owner {
        Owner(1 + self.below(8) as u16)
    }
}

/// What the model says a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum M {
    Unmanaged,
    Free,
    Pcp(usize),
    Head(u8),
    Tail,
}

struct Model {
    frames: Vec<M>,
    owner: Vec<Owner>,
    last: Vec<Owner>,
    /// Whether the frame was ever handed to an owner (buddy or per-CPU allocation) since it was added;
    /// a per-CPU refill alone does not count.
    allocated_once: Vec<bool>,
    /// Live allocations (head, order), for picking one at random.
    live: Vec<(Pfn, u8)>,
    managed: u64,
    free: u64,
    used: u64,
    pcp: [u64; CPUS],
    allocs: u64,
    frees: u64,
    failures: u64,
}

/// What happened during a run, to prove the run exercised what it claims to.
#[derive(Debug, Default)]
struct Coverage {
    allocs_per_order: [u64; 11],
    refills: u64,
    spills: u64,
    drains: u64,
    pcp_frees: u64,
    errors: [u64; 7],
    /// Refused frees (buddy or per-CPU) by what the target was: free and never allocated, free after
    /// being allocated and freed, parked.
    free_never_allocated: u64,
    free_freed_again: u64,
    free_parked: u64,
    /// Of `free_never_allocated`, those after the late region was handed over.
    free_never_allocated_late: u64,
}

fn variant(e: FrameError) -> usize {
    match e {
        FrameError::OutOfMemory { .. } => 0,
        FrameError::InvalidOrder(_) => 1,
        FrameError::Foreign(_) => 2,
        FrameError::Misaligned { .. } => 3,
        FrameError::DoubleFree(_) => 4,
        FrameError::NotAllocated(_) => 5,
        FrameError::WrongOrder { .. } => 6,
    }
}

impl Model {
    fn new() -> Self {
        let n = (END - BASE) as usize;
        Model {
            frames: vec![M::Unmanaged; n],
            owner: vec![Owner::NONE; n],
            last: vec![Owner::NONE; n],
            allocated_once: vec![false; n],
            live: Vec::new(),
            managed: 0,
            free: 0,
            used: 0,
            pcp: [0; CPUS],
            allocs: 0,
            frees: 0,
            failures: 0,
        }
    }

    fn idx(pfn: Pfn) -> Option<usize> {
        (BASE..END).contains(&pfn.0).then(|| (pfn.0 - BASE) as usize)
    }

    fn at(&self, pfn: Pfn) -> Option<M> {
        Self::idx(pfn).map(|i| self.frames[i])
    }

    /// The verdict the spec gives for `free(pfn, order)`, worked out independently of the allocator.
    fn expect_free(&self, pfn: Pfn, order: u8) -> Result<(), FrameError> {
        if order > MAX_ORDER {
            return Err(FrameError::InvalidOrder(order));
        }
        let Some(m) = self.at(pfn) else { return Err(FrameError::Foreign(pfn)) };
        if !pfn.0.is_multiple_of(1 << order) {
            return Err(FrameError::Misaligned { pfn, order });
        }
        let i = Self::idx(pfn).unwrap();
        match m {
            M::Unmanaged => Err(FrameError::Foreign(pfn)),
            M::Free if !self.allocated_once[i] => Err(FrameError::NotAllocated(pfn)),
            M::Free | M::Pcp(_) => Err(FrameError::DoubleFree(pfn)),
            M::Tail => Err(FrameError::NotAllocated(pfn)),
            M::Head(o) if o != order => Err(FrameError::WrongOrder { pfn, allocated: o, freed: order }),
            M::Head(_) => Ok(()),
        }
    }

    /// The first free frame never allocated since it was added, searching round from table index `from`.
    fn never_allocated_free(&self, from: usize) -> Option<Pfn> {
        let n = self.frames.len();
        (0..n)
            .map(|k| (from + k) % n)
            .find(|&i| self.frames[i] == M::Free && !self.allocated_once[i])
            .map(|i| Pfn(BASE + i as u64))
    }

    fn expect_set_link(&self, pfn: Pfn) -> Result<(), FrameError> {
        match self.at(pfn) {
            None | Some(M::Unmanaged) => Err(FrameError::Foreign(pfn)),
            Some(M::Free | M::Pcp(_)) => Err(FrameError::NotAllocated(pfn)),
            Some(M::Head(_) | M::Tail) => Ok(()),
        }
    }

    /// Whether the aligned block at `pfn` lies in the span and every frame of it is free in the buddy lists.
    fn block_is_free(&self, pfn: u64, order: u8) -> bool {
        let n = 1u64 << order;
        pfn.is_multiple_of(n)
            && pfn >= BASE
            && pfn + n <= END
            && self.frames[(pfn - BASE) as usize..(pfn - BASE + n) as usize].iter().all(|&m| m == M::Free)
    }

    /// Brute force: does any free aligned block of this order exist?
    fn any_free_block(&self, order: u8) -> bool {
        let n = 1u64 << order;
        let first = BASE.div_ceil(n) * n;
        (first..END).step_by(n as usize).any(|p| self.block_is_free(p, order))
    }

    /// The maximal aligned blocks of the free frames, counted per order: what the lists must hold.
    fn canonical(&self) -> [u64; 11] {
        let mut per_order = [0; 11];
        let mut p = BASE;
        while p < END {
            if self.frames[(p - BASE) as usize] != M::Free {
                p += 1;
                continue;
            }
            let order = (0..=MAX_ORDER).rev().find(|&o| self.block_is_free(p, o)).unwrap_or(0);
            per_order[usize::from(order)] += 1;
            p += 1 << order;
        }
        per_order
    }
}

struct Run<'a, 't> {
    a: &'a mut FrameAllocator<'t>,
    pcps: [PcpList; CPUS],
    m: Model,
    rng: Rng,
    cov: Coverage,
}

impl Run<'_, '_> {
    /// The cheap check after every operation: counters agree with the model and with each other.
    fn check_counters(&self) {
        let s = self.a.stats();
        let m = &self.m;
        assert_eq!(s.managed, s.free + s.used + s.per_cpu, "{s:?}");
        let listed: u64 = s.free_per_order.iter().enumerate().map(|(o, &n)| n << o).sum();
        assert_eq!(s.free, listed, "{s:?}");
        assert_eq!(
            (s.managed, s.free, s.used, s.per_cpu),
            (m.managed, m.free, m.used, m.pcp.iter().sum()),
            "frame counts disagree with the model"
        );
        assert_eq!((s.allocs, s.frees, s.alloc_failures), (m.allocs, m.frees, m.failures));
        for (pcp, &n) in self.pcps.iter().zip(&m.pcp) {
            assert_eq!(pcp.len() as u64, n);
        }
    }

    /// The expensive check: every frame record and every free list against the model.
    fn check_all(&self) {
        self.check_counters();
        let (a, m) = (&*self.a, &self.m);
        for (i, (f, &want)) in a.table.iter().zip(&m.frames).enumerate() {
            let ok = match want {
                M::Unmanaged => f.state() == FrameState::Reserved,
                M::Free => f.state() == FrameState::Free,
                M::Pcp(_) => f.state() == FrameState::PerCpu,
                M::Head(o) => f.state() == FrameState::Allocated && f.is_head() && f.order() == o,
                M::Tail => f.state() == FrameState::Allocated && !f.is_head() && f.order() == 0,
            };
            assert!(ok, "frame {} is {f:?}, model says {want:?}", BASE + i as u64);
            assert_eq!((f.owner(), f.last_owner()), (m.owner[i], m.last[i]), "owners of frame {}", BASE + i as u64);
        }
        for (c, pcp) in self.pcps.iter().enumerate() {
            for &p in &pcp.frames[..pcp.len()] {
                assert_eq!(m.at(p), Some(M::Pcp(c)));
            }
        }
        // No two live allocations overlap: their frames add up to exactly the allocated frames.
        let live: u64 = m.live.iter().map(|&(_, o)| 1u64 << o).sum();
        let allocated = m.frames.iter().filter(|f| matches!(f, M::Head(_) | M::Tail)).count() as u64;
        assert_eq!((live, allocated), (m.used, m.used));
        // The lists hold exactly the maximal free blocks, each well formed.
        let mut seen = [0u64; 11];
        for order in 0..=MAX_ORDER {
            let mut i = a.heads[usize::from(order)];
            let mut prev = NIL;
            while i != NIL {
                let f = &a.table[i as usize];
                assert_eq!(f.prev, prev, "broken back link");
                assert!(f.state() == FrameState::Free && f.is_head() && f.order() == order);
                assert!(m.block_is_free(BASE + u64::from(i), order));
                seen[usize::from(order)] += 1;
                prev = i;
                i = f.next;
            }
        }
        assert_eq!(seen, a.stats().free_per_order);
        assert_eq!(seen, m.canonical(), "the free lists are not the maximal blocks of the free frames");
    }

    /// Check a frame record just handed to `owner` (or just freed, with `owner` NONE).
    fn check_frame(&self, pfn: Pfn, state: FrameState) {
        let i = Model::idx(pfn).unwrap();
        let f = self.a.info(pfn).unwrap();
        assert_eq!(f.state(), state);
        assert_eq!((f.owner(), f.last_owner()), (self.m.owner[i], self.m.last[i]));
        if state == FrameState::Allocated {
            assert_eq!(f.link, 0, "alloc must reset link");
        }
    }

    fn alloc(&mut self) {
        let (order, owner) = (self.rng.order(), self.rng.owner());
        match self.a.alloc(order, owner) {
            Ok(p) => {
                assert!(self.m.block_is_free(p.0, order), "alloc({order}) gave {p:?}, not a free aligned block");
                let n = 1u64 << order;
                let i = Model::idx(p).unwrap();
                for k in 0..n as usize {
                    self.m.frames[i + k] = if k == 0 { M::Head(order) } else { M::Tail };
                    self.m.owner[i + k] = owner;
                    self.m.allocated_once[i + k] = true;
                }
                self.m.free -= n;
                self.m.used += n;
                self.m.allocs += 1;
                self.m.live.push((p, order));
                self.cov.allocs_per_order[usize::from(order)] += 1;
                for k in 0..n {
                    self.check_frame(Pfn(p.0 + k), FrameState::Allocated);
                }
                // Scribble on the links so the next owner's reset is checked.
                for k in 0..n {
                    self.a.set_link(Pfn(p.0 + k), self.rng.next()).unwrap();
                }
            }
            Err(FrameError::OutOfMemory { order: o }) => {
                assert_eq!(o, order);
                assert!(!self.m.any_free_block(order), "alloc({order}) failed but a free aligned block exists");
                self.m.failures += 1;
                self.cov.errors[variant(FrameError::OutOfMemory { order })] += 1;
            }
            Err(e) => panic!("alloc({order}): {e:?}"),
        }
    }

    fn pcp_alloc(&mut self) {
        let c = self.rng.below(CPUS as u64) as usize;
        let owner = self.rng.owner();
        let before = self.pcps[c].len();
        match self.pcps[c].alloc(self.a, owner) {
            Ok(p) => {
                if before == 0 {
                    let refilled = (PCP_BATCH as u64).min(self.m.free);
                    assert_eq!(self.pcps[c].len() as u64 + 1, refilled, "refill size");
                    let pcp = &self.pcps[c];
                    for &q in pcp.frames[..pcp.len()].iter().chain([&p]) {
                        let i = Model::idx(q).unwrap();
                        assert_eq!(self.m.frames[i], M::Free, "refill took a frame that was not free");
                        self.m.frames[i] = M::Pcp(c);
                    }
                    self.m.free -= refilled;
                    self.m.pcp[c] += refilled;
                    self.cov.refills += 1;
                } else {
                    assert_eq!(self.pcps[c].len(), before - 1);
                }
                let i = Model::idx(p).unwrap();
                assert_eq!(self.m.frames[i], M::Pcp(c), "pcp alloc gave a frame not parked on this cpu");
                self.m.frames[i] = M::Head(0);
                self.m.owner[i] = owner;
                self.m.allocated_once[i] = true;
                self.m.pcp[c] -= 1;
                self.m.used += 1;
                self.m.allocs += 1;
                self.m.live.push((p, 0));
                self.cov.allocs_per_order[0] += 1;
                self.check_frame(p, FrameState::Allocated);
                self.a.set_link(p, self.rng.next()).unwrap();
            }
            Err(FrameError::OutOfMemory { order: 0 }) => {
                assert_eq!((before, self.m.free), (0, 0), "pcp alloc failed with memory left");
                self.m.failures += 1;
                self.cov.errors[variant(FrameError::OutOfMemory { order: 0 })] += 1;
            }
            Err(e) => panic!("pcp alloc: {e:?}"),
        }
    }

    /// Free a live allocation; order-0 ones go through a per-CPU list half the time.
    fn free_live(&mut self, k: usize, via_pcp: bool) {
        let (p, order) = self.m.live.swap_remove(k);
        let i = Model::idx(p).unwrap();
        if order == 0 && via_pcp {
            let c = self.rng.below(CPUS as u64) as usize;
            let before = self.pcps[c].len();
            let oldest: Vec<Pfn> =
                if before == PCP_HIGH { self.pcps[c].frames[..PCP_BATCH].to_vec() } else { Vec::new() };
            self.pcps[c].free(self.a, p).unwrap();
            if before == PCP_HIGH {
                assert_eq!(self.pcps[c].len(), PCP_HIGH - PCP_BATCH + 1);
                for q in oldest {
                    let j = Model::idx(q).unwrap();
                    assert_eq!(self.m.frames[j], M::Pcp(c));
                    self.m.frames[j] = M::Free;
                }
                self.m.pcp[c] -= PCP_BATCH as u64;
                self.m.free += PCP_BATCH as u64;
                self.cov.spills += 1;
            } else {
                assert_eq!(self.pcps[c].len(), before + 1);
            }
            self.m.frames[i] = M::Pcp(c);
            self.m.last[i] = self.m.owner[i];
            self.m.owner[i] = Owner::NONE;
            self.m.used -= 1;
            self.m.pcp[c] += 1;
            self.m.frees += 1;
            self.cov.pcp_frees += 1;
            self.check_frame(p, FrameState::PerCpu);
        } else {
            self.a.free(p, order).unwrap();
            let n = 1usize << order;
            for j in i..i + n {
                self.m.frames[j] = M::Free;
                self.m.last[j] = self.m.owner[j];
                self.m.owner[j] = Owner::NONE;
            }
            self.m.used -= n as u64;
            self.m.free += n as u64;
            self.m.frees += 1;
            for j in 0..n as u64 {
                self.check_frame(Pfn(p.0 + j), FrameState::Free);
            }
        }
    }

    fn drain(&mut self, c: usize) {
        let parked: Vec<Pfn> = self.pcps[c].frames[..self.pcps[c].len()].to_vec();
        self.pcps[c].drain(self.a);
        assert!(self.pcps[c].is_empty());
        for q in parked {
            let i = Model::idx(q).unwrap();
            assert_eq!(self.m.frames[i], M::Pcp(c));
            self.m.frames[i] = M::Free;
        }
        self.m.free += self.m.pcp[c];
        self.m.pcp[c] = 0;
        self.cov.drains += 1;
    }

    /// A fingerprint of everything the allocator holds, to prove a refused operation changed nothing.
    fn fingerprint(&self) -> u64 {
        let mut h = fnv1a::Fnv1a::new();
        let mut mix = |v: u64| h = h.write(&v.to_le_bytes());
        for f in self.a.table.iter() {
            mix(f.link);
            mix(u64::from(f.prev) << 32 | u64::from(f.next));
            mix(u64::from(f.owner.0) << 32 | u64::from(f.last_owner.0) << 16 | u64::from(f.order) << 8);
            mix(f.state as u64 * 2 + u64::from(f.head));
        }
        for &head in &self.a.heads {
            mix(u64::from(head));
        }
        h.finish()
    }

    /// A free (buddy or per-CPU), `set_link` or out-of-range `alloc` aimed at a random, often wrong,
    /// target; the outcome must be the model's verdict, and a refusal must change nothing.
    fn probe(&mut self) {
        let pick_live = |rng: &mut Rng, live: &[(Pfn, u8)]| -> Option<(Pfn, u8)> {
            (!live.is_empty()).then(|| live[rng.below(live.len() as u64) as usize])
        };
        let random_pfn = |rng: &mut Rng| Pfn(BASE - 8 + rng.below(END - BASE + 16));
        let mut order = self.rng.order();
        let pfn = match self.rng.below(8) {
            0 => random_pfn(&mut self.rng),
            1 => match pick_live(&mut self.rng, &self.m.live) {
                Some((p, o)) => Pfn(p.0 + self.rng.below(1 << o)), // usually a tail
                None => random_pfn(&mut self.rng),
            },
            2 => match pick_live(&mut self.rng, &self.m.live) {
                Some((p, o)) => {
                    order = if o > 0 && self.rng.chance(50) { self.rng.below(u64::from(o)) as u8 } else { order };
                    p
                }
                None => random_pfn(&mut self.rng),
            },
            3 => {
                let pcp = &self.pcps[self.rng.below(CPUS as u64) as usize];
                if pcp.is_empty() {
                    random_pfn(&mut self.rng)
                } else {
                    pcp.frames[self.rng.below(pcp.len() as u64) as usize]
                }
            }
            4 => Pfn(u64::MAX - self.rng.below(4)),
            5 => Pfn(self.rng.below(BASE)),
            6 => Pfn(BASE + self.rng.below(END - BASE)),
            // Such frames only last until memory first fills up: aim at them while they do.
            _ => match self.m.never_allocated_free(self.rng.below(END - BASE) as usize) {
                Some(p) => p,
                None => Pfn(BASE + self.rng.below(END - BASE)),
            },
        };
        if self.rng.chance(5) {
            order = MAX_ORDER + 1 + self.rng.below(20) as u8;
        }
        let stats = self.a.stats();
        let lens = [self.pcps[0].len(), self.pcps[1].len()];
        let record = format!("{:?}|{:?}", self.a.info(pfn), self.a.heads);
        // Hashing the whole table is most of this test's run time in debug builds: do it on every fourth probe.
        let whole = self.rng.chance(25);
        let fp = if whole { self.fingerprint() } else { 0 };
        let (got, want) = match self.rng.below(10) {
            0..5 => {
                let want = self.m.expect_free(pfn, order);
                if want.is_ok() {
                    return; // a valid free: the ordinary path covers it
                }
                self.count_refused_free(pfn, want);
                (self.a.free(pfn, order), want)
            }
            5..8 => {
                let want = self.m.expect_free(pfn, 0);
                if want.is_ok() {
                    return;
                }
                self.count_refused_free(pfn, want);
                let c = self.rng.below(CPUS as u64) as usize;
                (self.pcps[c].free(self.a, pfn), want)
            }
            8 => {
                let want = self.m.expect_set_link(pfn);
                if want.is_ok() {
                    return;
                }
                (self.a.set_link(pfn, 1), want)
            }
            _ => {
                let order = MAX_ORDER + 1 + self.rng.below(245) as u8;
                (self.a.alloc(order, Owner::WORKLOAD).map(|_| ()), Err(FrameError::InvalidOrder(order)))
            }
        };
        assert_eq!(got, want, "probe of {pfn:?}");
        self.cov.errors[variant(got.unwrap_err())] += 1;
        assert_eq!(self.a.stats(), stats, "a refused operation changed the counters");
        assert_eq!([self.pcps[0].len(), self.pcps[1].len()], lens);
        assert_eq!(format!("{:?}|{:?}", self.a.info(pfn), self.a.heads), record, "a refusal changed the frame");
        if whole {
            assert_eq!(self.fingerprint(), fp, "a refused operation changed the table");
        }
    }

    /// Count a free the model refuses because its target is free or parked, by which of those it is.
    fn count_refused_free(&mut self, pfn: Pfn, want: Result<(), FrameError>) {
        match (self.m.at(pfn), want) {
            (Some(M::Free), Err(FrameError::NotAllocated(_))) => self.cov.free_never_allocated += 1,
            (Some(M::Free), Err(FrameError::DoubleFree(_))) => self.cov.free_freed_again += 1,
            (Some(M::Pcp(_)), Err(FrameError::DoubleFree(_))) => self.cov.free_parked += 1,
            _ => {}
        }
    }

    fn step(&mut self, filling: bool) {
        let r = self.rng.below(100);
        let (alloc, pcp_alloc, free, drain) = if filling { (40, 60, 80, 82) } else { (20, 30, 80, 83) };
        if r < alloc {
            self.alloc();
        } else if r < pcp_alloc {
            self.pcp_alloc();
        } else if r < free {
            if !self.m.live.is_empty() {
                let k = self.rng.below(self.m.live.len() as u64) as usize;
                let via_pcp = self.rng.chance(50);
                self.free_live(k, via_pcp);
            }
        } else if r < drain {
            let c = self.rng.below(CPUS as u64) as usize;
            self.drain(c);
        } else {
            self.probe();
        }
    }
}

/// Hand the regions over in random pieces and order; the result must be the maximal blocks.
fn add_regions(a: &mut FrameAllocator<'_>, m: &mut Model, rng: &mut Rng, regions: &[(u64, u64)]) {
    let mut pieces = Vec::new();
    for &(start, end) in regions {
        let mut cuts = vec![start, end];
        for _ in 0..rng.below(4) {
            cuts.push(start + rng.below(end - start));
        }
        cuts.sort_unstable();
        pieces.extend(cuts.windows(2).map(|w| (w[0], w[1])));
    }
    for i in (1..pieces.len()).rev() {
        pieces.swap(i, rng.below(i as u64 + 1) as usize);
    }
    for (start, end) in pieces {
        a.add_free_range(Pfn(start), Pfn(end)).unwrap();
        for p in start..end {
            m.frames[(p - BASE) as usize] = M::Free;
        }
        m.managed += end - start;
        m.free += end - start;
    }
}

fn run(seed: u64) -> Coverage {
    let mut table = vec![FrameInfo::reserved(); FrameAllocator::table_len(Pfn(BASE), Pfn(END))];
    let mut a = FrameAllocator::new(&mut table, Pfn(BASE));
    let mut rng = Rng::new(seed);
    let mut m = Model::new();
    add_regions(&mut a, &mut m, &mut rng, &REGIONS[..EARLY_REGIONS]);
    // What the lists must come back to at the end: every region's maximal blocks.
    let initial = {
        let mut t = vec![FrameInfo::reserved(); FrameAllocator::table_len(Pfn(BASE), Pfn(END))];
        let mut whole = FrameAllocator::new(&mut t, Pfn(BASE));
        for &(start, end) in &REGIONS {
            whole.add_free_range(Pfn(start), Pfn(end)).unwrap();
        }
        whole.stats().free_per_order
    };
    assert_eq!(initial[10], 2, "1024..2048 and 3072..4096 are whole order-10 blocks");

    let mut run = Run { a: &mut a, pcps: [PcpList::new(), PcpList::new()], m, rng, cov: Coverage::default() };
    run.check_all();
    let mut never_allocated_early = 0;
    for step in 0..OPS {
        if step == LATE_AT {
            // Hand the rest over to a busy allocator: fresh frames that were never allocated.
            add_regions(run.a, &mut run.m, &mut run.rng, &REGIONS[EARLY_REGIONS..]);
            run.check_all();
            never_allocated_early = run.cov.free_never_allocated;
        }
        run.step((step / 5000) % 2 == 0);
        run.check_counters();
        if step % FULL_CHECK_EVERY == 0 {
            run.check_all();
        }
    }
    run.check_all();

    // Give everything back: the lists must be the initial maximal blocks again.
    while !run.m.live.is_empty() {
        let k = run.rng.below(run.m.live.len() as u64) as usize;
        let via_pcp = run.rng.chance(50);
        run.free_live(k, via_pcp);
        run.check_counters();
    }
    for c in 0..CPUS {
        run.drain(c);
    }
    run.check_all();
    let s = run.a.stats();
    assert_eq!((s.used, s.per_cpu, s.free), (0, 0, s.managed));
    assert_eq!(s.free_per_order, initial, "the free lists did not merge back to the initial blocks");

    let mut cov = run.cov;
    cov.free_never_allocated_late = cov.free_never_allocated - never_allocated_early;
    // The run must have exercised what the test claims: every error, OOM, refills, spills, big blocks.
    assert!(cov.errors.iter().all(|&n| n > 0), "{cov:?}");
    assert!(cov.free_never_allocated_late > 0 && cov.free_freed_again > 0 && cov.free_parked > 0, "{cov:?}");
    assert!(cov.refills > 0 && cov.spills > 0 && cov.drains > 0, "{cov:?}");
    assert!(cov.allocs_per_order[10] > 0, "no order-10 allocation succeeded: {cov:?}");
    cov
}

#[test]
fn model_seed_1() {
    let cov = run(1);
    eprintln!("seed 1: {cov:?}");
}

#[test]
fn model_seed_2() {
    run(0xdead_beef);
}

#[test]
fn model_seed_3() {
    run(0x5eed_0003);
}

#[test]
fn model_seed_4() {
    run(20_260_101);
}
