//! The `agentd` binary: parses the command line and hands over to [`agentd::cli`].

fn main() -> std::process::ExitCode {
    agentd::cli::main()
}
