//! One module per `agentd` subcommand. Each takes its parsed arguments and the loaded
//! configuration, writes its output to the writer it is given, and returns an error for
//! the CLI to print.

pub mod ask;
pub mod doctor;
pub mod init;
pub mod run;
pub mod status;
pub mod submit;
pub mod tasks;
pub mod test;
