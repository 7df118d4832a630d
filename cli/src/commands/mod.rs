//! One module per subcommand.

pub mod completions;
pub mod cp;
pub mod describe;
pub mod down;
pub mod exec;
pub mod images;
pub mod logs;
pub mod man;
pub mod play;
pub mod play_attach;
pub mod play_wait;
pub mod port;
pub mod ps;
pub mod pull;
pub mod rmi;
pub mod stop_options;
pub mod system;
pub mod unshare;
pub mod validate;
