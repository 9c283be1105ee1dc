//! Prints the OOM-deadlock teaching scenario as text swim lanes (what `ksim trace balloon
//! oom-deadlock` shows): `cargo run -p balloon-sim --example oom_deadlock_trace`.

use balloon_sim::BalloonSubject;
use sim_core::check::Catalog;
use sim_core::trace::render_text;

fn main() {
    let sim = BalloonSubject::run_scenario("oom-deadlock").expect("scenario");
    let events = sim.trace().events();
    println!("{}", render_text(&events, &sim.trace().task_names(), sim_core::trace::TEXT_WIDTH));
    for report in sim.lockdep().reports() {
        println!("{report}");
    }
}
