//! The `finpipe` binary: parse the command line, run, map errors to exit codes.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
