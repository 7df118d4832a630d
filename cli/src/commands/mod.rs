//! One module per subcommand.

pub mod images;
pub mod pull;
pub mod rmi;
pub mod unshare;
