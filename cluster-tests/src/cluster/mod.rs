//! Making a cluster and the handle to it: the spec turned into containers, formed and checked ready, found again
//! by its labels, and removed.

pub(crate) mod capacity;
pub(crate) mod create;
pub(crate) mod guards;
pub(crate) mod handle;
pub(crate) mod identity;
pub(crate) mod keeper;
pub(crate) mod launch;
pub(crate) mod networking;
pub(crate) mod probe;
pub(crate) mod recycle;
pub(crate) mod removal;
pub(crate) mod warm;
