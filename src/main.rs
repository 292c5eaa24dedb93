fn main() -> std::process::ExitCode {
    cijob::main()
}
