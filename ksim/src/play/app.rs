//! The game's state and what each key does: pick a task, step it, undo, restart, hint, quit.
//! Independent of the terminal, so the tests drive it with keys and read the screen it draws.

use std::path::PathBuf;

use super::level::{Level, Verdict};
use super::snapshot::{Snapshot, TaskStatus};
use super::solution::Solution;

/// A key, as the game understands keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    /// A printable character.
    Char(char),
    /// Enter.
    Enter,
    /// Left arrow.
    Left,
    /// Right arrow.
    Right,
    /// Escape.
    Esc,
    /// Any other key (function keys, Tab, ...).
    Other,
}

/// The game. See the module documentation.
#[derive(Debug)]
pub(crate) struct App {
    /// The level played.
    pub level: Level,
    /// The player's choices so far (level task indices).
    pub choices: Vec<usize>,
    /// Where the last run stopped.
    pub snapshot: Snapshot,
    /// For each task that can run: what its next step does (found by running it ahead).
    pub next: Vec<Option<String>>,
    /// The task the next Enter steps.
    pub selected: usize,
    /// The line under the screen: what the last key did, or why it did nothing.
    pub message: String,
    /// Whether the hint is shown.
    pub hint: bool,
    /// Where a won level's schedule is written (None: not written).
    pub save_dir: Option<PathBuf>,
    /// Where it was written.
    pub saved: Option<PathBuf>,
    /// The player asked to quit.
    pub quit: bool,
}

impl App {
    /// A fresh game of `level`: the set-up has run and the first choice is the player's.
    pub(crate) fn new(level: Level, save_dir: Option<PathBuf>) -> App {
        let snapshot = level.run(&[]);
        let next = lookahead(&level, &[], &snapshot);
        let mut app = App {
            level,
            choices: Vec::new(),
            snapshot,
            next,
            selected: 0,
            message: String::new(),
            hint: false,
            save_dir,
            saved: None,
            quit: false,
        };
        app.message =
            app.verdict_line().unwrap_or_else(|| "pick a task (1-9, arrows) and press Enter".into());
        app
    }

    /// The verdict of the current snapshot.
    pub(crate) fn verdict(&self) -> Verdict {
        self.level.verdict(&self.snapshot)
    }

    fn verdict_line(&self) -> Option<String> {
        match self.verdict() {
            Verdict::Playing => None,
            Verdict::Won(line) => Some(format!("WON: {line}")),
            Verdict::Lost(line) => Some(format!("over: {line}")),
        }
    }

    /// Handles one key.
    pub(crate) fn key(&mut self, key: Key) {
        let tasks = self.level.tasks.len();
        match key {
            Key::Char(c @ '1'..='9') => {
                let index = c as usize - '1' as usize;
                if index < tasks {
                    self.selected = index;
                    self.message = format!("task {c} selected: Enter steps it");
                } else {
                    self.message = format!("there is no task {c}: this level has tasks 1-{tasks}");
                }
            }
            Key::Left => self.selected = (self.selected + tasks - 1) % tasks,
            Key::Right => self.selected = (self.selected + 1) % tasks,
            Key::Enter | Key::Char(' ') => self.step(),
            Key::Char('u') => self.undo(),
            Key::Char('r') => {
                self.choices.clear();
                self.rerun("restarted");
            }
            Key::Char('h') => self.hint = !self.hint,
            Key::Char('q') | Key::Esc => self.quit = true,
            Key::Char(c) => self.message = format!("{c:?} does nothing here: {}", KEYS),
            Key::Other => self.message = format!("that key does nothing here: {}", KEYS),
        }
    }

    /// Steps the selected task, or says why it cannot.
    fn step(&mut self) {
        if self.snapshot.end.is_some() {
            self.message = "the level is over: u undoes the last step, r restarts, q quits".into();
            return;
        }
        let task = self.selected;
        match self.snapshot.tasks.get(task).map(|t| t.status) {
            Some(TaskStatus::Runnable) => {
                self.choices.push(task);
                self.rerun(&format!("task {} stepped", task + 1));
            }
            Some(TaskStatus::Blocked) => {
                self.message =
                    format!("task {} is blocked: it waits for something another task holds", task + 1);
            }
            Some(TaskStatus::Finished) => self.message = format!("task {} has finished", task + 1),
            None => self.message = format!("task {} has not started yet", task + 1),
        }
    }

    fn undo(&mut self) {
        if self.choices.pop().is_none() {
            self.message = "nothing to undo".into();
            return;
        }
        self.rerun("undone");
    }

    /// Runs the level again with the current choices and says what happened.
    fn rerun(&mut self, what: &str) {
        self.snapshot = self.level.run(&self.choices);
        self.next = lookahead(&self.level, &self.choices, &self.snapshot);
        self.saved = None;
        self.message = match self.verdict_line() {
            Some(line) => line,
            None => format!("{what}: step {}", self.choices.len()),
        };
        if let (Verdict::Won(_), Some(dir)) = (self.verdict(), &self.save_dir) {
            let solution = Solution::new(&self.level, &self.choices, &self.snapshot);
            match solution.write_into(dir) {
                Ok(path) => self.saved = Some(path),
                Err(e) => self.message = format!("{}; the schedule could not be saved: {e}", self.message),
            }
        }
        if self.snapshot.tasks.get(self.selected).is_some_and(|t| t.status != TaskStatus::Runnable) {
            if let Some(next) = self.snapshot.tasks.iter().position(|t| t.status == TaskStatus::Runnable) {
                self.selected = next;
            }
        }
    }
}

/// What each runnable task's next step does: the run is deterministic, so running the level one
/// step further with that task shows exactly the events the step will make (the next lock,
/// release, kernel function or guarded access), and whether the task blocks after it.
fn lookahead(level: &Level, choices: &[usize], snapshot: &Snapshot) -> Vec<Option<String>> {
    let runnable = |t: &&super::snapshot::TaskView| t.status == TaskStatus::Runnable;
    if snapshot.end.is_some() {
        return vec![None; snapshot.tasks.len()];
    }
    let mut next = Vec::with_capacity(snapshot.tasks.len());
    for (task, view) in snapshot.tasks.iter().enumerate() {
        if !runnable(&view) {
            next.push(None);
            continue;
        }
        let mut ahead_choices = choices.to_vec();
        ahead_choices.push(task);
        let ahead = level.run(&ahead_choices);
        let made: Vec<&str> = ahead.trace[snapshot.trace.len().min(ahead.trace.len())..]
            .iter()
            .filter(|(owner, _)| *owner == Some(task))
            .map(|(_, text)| text.as_str())
            .collect();
        let mut text = if made.is_empty() { "waits".to_string() } else { made.join(", ") };
        if ahead.tasks.get(task).is_some_and(|t| t.status == TaskStatus::Blocked) {
            text.push_str(", then blocks");
        }
        next.push(Some(text));
    }
    next
}

/// The key help.
pub(crate) const KEYS: &str = "1-9/←→ pick · Enter/space step · u undo · r restart · h hint · q quit";
