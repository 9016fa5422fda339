//! The container engine: the Docker adapter and which process owns what it made.

pub(crate) mod docker;
pub(crate) mod owner;
