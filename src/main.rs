//! The `bilevel` program; see `bilevel --help` and the README's "Using the program".

fn main() -> std::process::ExitCode {
    bilevel::cli::main()
}
