//! The `vmmi` binary: command-line parsing and dispatch. Protocol logic lives in the library.

use clap::Parser;

#[derive(Parser)]
#[command(name = "vmmi", version, about = "BGP EVPN + LISP control plane for VM mobility")]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
