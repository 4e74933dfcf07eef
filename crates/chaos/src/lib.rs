//! # What breaks, and what doesn't
//!
//! `just chaos` runs every HTTP lesson (1 to 3) under a bounded open-loop
//! load on loopback while faults are injected in sequence through
//! `lab::faults`: PostgreSQL stopped, paused and slowed; Redis killed,
//! paused and blackholed; connections reset. Per lesson and phase it
//! counts requests, 2xx/4xx/5xx, timeouts, p99, panics and hung requests,
//! and the time to recover without a restart. `just report` renders the
//! table into the book's chapter "What breaks, and what doesn't".
//!
//! Its tests throw hostile input at every lesson's router.
