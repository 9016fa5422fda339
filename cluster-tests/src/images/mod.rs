//! Node images: the version matrix, the image a cluster runs, and building images from Debian packages.

pub(crate) mod build;
pub(crate) mod node_image;
pub(crate) mod versions;
