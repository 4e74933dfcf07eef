//! The lesson's experiments, each a before/after on a private server with
//! the mechanism made visible: the setting as the server reports it, the
//! plan node or status counter that shows what changed, and the workload
//! that a bench times.

pub mod mariadb;
pub mod shared_buffers;
pub mod work_mem;
