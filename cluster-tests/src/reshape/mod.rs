//! Changing a running cluster's shape: nodes joining and leaving, slots moving, masters added and removed.

pub(crate) mod membership;
pub(crate) mod migration;
pub(crate) mod scaling;
