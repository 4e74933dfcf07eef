fn main() {
    eprintln!("chaos: not built yet");
    std::process::exit(2);
}
