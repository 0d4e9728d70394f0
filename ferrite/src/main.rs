//! The `ferrite` binary; everything is in the library.

fn main() -> std::process::ExitCode {
    ferrite::main()
}
