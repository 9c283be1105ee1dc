//! The game tested as a person plays it: keys into [`App`], the screen read back from ratatui's
//! `TestBackend`; every level's stored schedule replayed and judged.

use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::app::{App, Key};
use super::level::{find, levels, Level, Verdict};
use super::screen;
use super::snapshot::TaskStatus;

/// The screen `app` draws on a `width` x `height` terminal, as lines of text.
pub(crate) fn screen_text(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
    terminal.draw(|frame| screen::draw(frame, app)).expect("draw");
    let buffer = terminal.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..height {
        let mut line = String::new();
        for x in 0..width {
            line.push_str(buffer[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Plays `level` choosing, at each step, the first runnable task in `order`; returns the
/// choices and the verdict where it stopped.
fn play_in_order(level: &Level, order: &[usize]) -> (Vec<usize>, Verdict) {
    let mut choices = Vec::new();
    loop {
        let snapshot = level.run(&choices);
        let verdict = level.verdict(&snapshot);
        if verdict != Verdict::Playing || choices.len() > 400 {
            return (choices, verdict);
        }
        let next = order
            .iter()
            .copied()
            .find(|&t| snapshot.tasks.get(t).is_some_and(|v| v.status == TaskStatus::Runnable));
        match next {
            Some(task) => choices.push(task),
            None => return (choices, verdict),
        }
    }
}

#[test]
fn every_level_s_stored_schedule_wins_it() {
    for level in levels() {
        let choices = level.solution_choices();
        let snapshot = level.run(&choices);
        let verdict = level.verdict(&snapshot);
        assert!(matches!(verdict, Verdict::Won(_)), "{}: {verdict:?} after {choices:?}", level.name);
    }
}

#[test]
#[ignore = "a tool: prints a winning serial schedule per level (cargo test -- --ignored --nocapture)"]
fn print_serial_schedules() {
    let orders: [&[usize]; 6] = [&[0, 1, 2], &[0, 2, 1], &[1, 0, 2], &[1, 2, 0], &[2, 0, 1], &[2, 1, 0]];
    for level in levels() {
        for order in orders {
            let (choices, verdict) = play_in_order(&level, order);
            println!("{} order {order:?}: {verdict:?}\n  {choices:?}", level.name);
        }
    }
}

#[test]
fn keys_step_undo_restart_and_the_screen_shows_the_tasks() {
    let mut app = App::new(find("taskstats-1").expect("level"), None);
    let text = screen_text(&app, 100, 30);
    assert!(text.contains("goal: make one exit reach the same listener twice"), "{text}");
    assert!(text.contains("1 register (1st) [ready]"), "{text}");
    app.key(Key::Enter);
    app.key(Key::Enter);
    assert_eq!(app.choices, vec![0, 0]);
    app.key(Key::Char('u'));
    assert_eq!(app.choices, vec![0]);
    app.key(Key::Char('3'));
    app.key(Key::Char(' '));
    assert_eq!(app.choices, vec![0, 2]);
    app.key(Key::Char('h'));
    let text = screen_text(&app, 100, 30);
    assert!(text.contains("hint: both registrations"), "{text}");
    app.key(Key::Char('r'));
    assert!(app.choices.is_empty());
    assert_eq!(app.message, "restarted: step 0");
}

#[test]
fn bad_keys_and_a_small_terminal_get_a_message_not_a_panic() {
    let mut app = App::new(find("taskstats-1").expect("level"), None);
    app.key(Key::Char('x'));
    assert!(app.message.contains("'x' does nothing here"), "{}", app.message);
    app.key(Key::Char('7'));
    assert!(app.message.contains("there is no task 7"), "{}", app.message);
    app.key(Key::Other);
    assert!(app.message.contains("that key does nothing"), "{}", app.message);
    app.key(Key::Char('u'));
    assert_eq!(app.message, "nothing to undo");
    let text = screen_text(&app, 40, 10).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains("needs a terminal of at least 80x24; this one is 40x10"), "{text}");
    for (width, height) in [(1, 1), (80, 1), (1, 24), (79, 24), (200, 24)] {
        let text = screen_text(&app, width, height);
        assert_eq!(text.lines().count(), usize::from(height), "{width}x{height}");
    }
}

#[test]
fn winning_by_keys_saves_a_schedule_that_check_accepts() {
    let level = find("mbcache-1").expect("level");
    let dir = std::env::temp_dir().join(format!("ksim-play-test-{}", std::process::id()));
    let mut app = App::new(level, Some(dir.clone()));
    for task in level.solution_choices() {
        app.key(Key::Char(char::from(b'1' + task as u8)));
        app.key(Key::Enter);
    }
    assert!(matches!(app.verdict(), Verdict::Won(_)), "{:?}", app.verdict());
    let text = screen_text(&app, 100, 30);
    assert!(text.contains("WON"), "{text}");
    let path = app.saved.clone().expect("saved");
    let (report, wins) = super::check(&path).expect("check");
    assert!(wins, "{report}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
#[ignore = "a tool: KSIM_PLAY_LEVEL=name KSIM_PLAY_CHOICES=0,0,1 prints the run's trace"]
fn print_run() {
    let level = find(&std::env::var("KSIM_PLAY_LEVEL").unwrap_or_default()).expect("level");
    let choices: Vec<usize> = std::env::var("KSIM_PLAY_CHOICES")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.trim().parse().expect("a number"))
        .collect();
    let snapshot = level.run(&choices);
    for (owner, text) in &snapshot.trace {
        println!("{owner:?} {text}");
    }
    println!("tasks: {:?}\nend: {:?}", snapshot.tasks, snapshot.end);
    println!("{}", screen_text(&App::new(level, None), 100, 32));
}

#[test]
#[ignore = "a tool: prints the guide's screens (guide/src/levels.md), 100x30: demo-1 one step in, the others at the end of their plan"]
fn print_guide_screens() {
    for name in ["demo-1", "taskstats-1", "mbcache-1", "balloon-1"] {
        let level = find(name).expect("level");
        let mut app = App::new(level, None);
        let mut choices = level.solution_choices();
        if name == "demo-1" {
            // Mid-game: one step in, both tasks showing their next step.
            choices.truncate(1);
        }
        for task in choices {
            app.key(Key::Char(char::from(b'1' + task as u8)));
            app.key(Key::Enter);
        }
        println!("{name}:\n{}", screen_text(&app, 100, 30));
    }
}
