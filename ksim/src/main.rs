//! The ksim command-line tool (being written).

fn main() {
    println!("ksim: the command-line tool is being written");
}
