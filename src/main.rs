fn main() -> std::process::ExitCode {
    cyberhub::cli::main()
}
