//! `lowtouch demo …`: the bundled demo exchange, shipped inside the binary so that
//! `cargo run -- run` needs nothing else. Hidden from `--help`; see examples/exchange.

pub fn demo(args: &[String]) -> i32 {
    lowtouch_exchange::cli::main(args)
}
