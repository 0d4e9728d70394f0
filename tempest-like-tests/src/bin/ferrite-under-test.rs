//! The `ferrite` program, built inside this package for the scenarios.

fn main() -> std::process::ExitCode {
    ferrite::main()
}
