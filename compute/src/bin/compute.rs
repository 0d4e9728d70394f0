//! The `compute` binary (being written).

fn main() {
    eprintln!("compute: not available yet");
    std::process::exit(2);
}
