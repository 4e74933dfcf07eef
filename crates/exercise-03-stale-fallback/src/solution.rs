//! The reference solution is lesson 3's own handler (in its default
//! `fallback` mode, with the circuit breaker the exercise does not require).

pub use lesson_03_stale_fallback::get_user;
