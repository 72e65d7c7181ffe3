//! Host benchmarks of zkernel's algorithm crates, with criterion: `cargo xtask bench` runs them beside
//! the in-kernel benchmark kernels. The benchmarks live in `benches/`; this library is empty.
