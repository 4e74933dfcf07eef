//! The reference solution is lesson 2's own handler.

pub use lesson_02_cache_aside::get_user;
