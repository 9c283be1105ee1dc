//! Draws the game: the level and its goal on top, the tasks side by side (kernel function,
//! status, held locks, last steps), the shared state (who holds which lock, the violations, the
//! level's own state at the end), the trace so far, and the message and key help at the bottom.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;

use super::app::{App, KEYS};
use super::level::Verdict;
use super::snapshot::TaskStatus;

/// The smallest terminal the game draws in.
pub(crate) const MIN_WIDTH: u16 = 80;
pub(crate) const MIN_HEIGHT: u16 = 24;

/// Draws `app` into `frame`, or a one-line request for a bigger terminal.
pub(crate) fn draw(frame: &mut Frame<'_>, app: &App) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = format!(
            "ksim play needs a terminal of at least {MIN_WIDTH}x{MIN_HEIGHT}; this one is {}x{}. \
             Enlarge it, or press q to quit.",
            area.width, area.height
        );
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
        return;
    }
    let tasks_height = 9;
    let [top, tasks, state, trace, bottom] = Layout::vertical([
        Constraint::Length(4),
        Constraint::Length(tasks_height),
        Constraint::Min(4),
        Constraint::Min(4),
        Constraint::Length(2),
    ])
    .areas(area);
    draw_top(frame, app, top);
    draw_tasks(frame, app, tasks);
    draw_state(frame, app, state);
    draw_trace(frame, app, trace);
    draw_bottom(frame, app, bottom);
}

fn draw_top(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let level = &app.level;
    let mut lines = vec![
        Line::from(Span::styled(level.heading(), Style::new().add_modifier(Modifier::BOLD))),
        Line::from(format!("goal: {}", level.goal)),
    ];
    if app.hint {
        lines.push(Line::from(format!("hint: {}", level.hint)));
    } else {
        lines.push(Line::from(format!("invariant: {}", level.invariant)));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), area);
}

fn draw_tasks(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let count = app.level.tasks.len().max(1);
    let columns = Layout::horizontal(vec![Constraint::Ratio(1, count as u32); count]).split(area);
    for (index, info) in app.level.tasks.iter().enumerate() {
        let view = app.snapshot.tasks.get(index);
        let status = view.map_or("not started", |v| v.status.word());
        let selected = index == app.selected;
        let title = format!("{}{} {} [{status}]", if selected { ">" } else { " " }, index + 1, info.name);
        let mut block = Block::bordered().title(title);
        if selected {
            block = block.border_style(Style::new().add_modifier(Modifier::BOLD));
        }
        let mut lines = Vec::new();
        let functions = view.map(|v| v.functions.join(" > ")).filter(|f| !f.is_empty());
        lines.push(Line::from(format!("in: {}", functions.as_deref().unwrap_or(info.entry))));
        let held = view.map(|v| v.held.join(", ")).filter(|h| !h.is_empty());
        lines.push(Line::from(format!("holds: {}", held.as_deref().unwrap_or("-"))));
        if let Some(Some(next)) = app.next.get(index) {
            lines.push(Line::from(Span::styled(
                format!("next: {next}"),
                Style::new().add_modifier(Modifier::BOLD),
            )));
        }
        if view.map(|v| v.status) == Some(TaskStatus::Blocked) {
            lines.push(Line::from("waits: blocked (see who holds what below)"));
        }
        for event in view.map(|v| v.recent.as_slice()).unwrap_or_default() {
            lines.push(Line::from(Span::styled(
                format!("· {event}"),
                Style::new().add_modifier(Modifier::DIM),
            )));
        }
        frame.render_widget(Paragraph::new(lines).block(block).wrap(Wrap { trim: true }), columns[index]);
    }
}

fn draw_state(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let mut lines = Vec::new();
    let mut holders = Vec::new();
    for (index, view) in app.snapshot.tasks.iter().enumerate() {
        for class in &view.held {
            holders.push(format!("{class}: held by task {}", index + 1));
        }
    }
    if holders.is_empty() {
        lines.push(Line::from("locks: none held"));
    } else {
        lines.push(Line::from(format!("locks: {}", holders.join("; "))));
    }
    for line in &app.snapshot.state {
        lines.push(Line::from(line.clone()));
    }
    for violation in &app.snapshot.violations {
        // A report is several lines (lockdep's has its chains and scenario): keep them apart.
        let text = format!("!! {violation}");
        for (index, part) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
            let style = if index == 0 { Style::new().add_modifier(Modifier::BOLD) } else { Style::new() };
            lines.push(Line::from(Span::styled(part.to_string(), style)));
        }
    }
    let block = Block::bordered().title(format!(" shared state · step {} ", app.choices.len()));
    frame.render_widget(Paragraph::new(lines).block(block).wrap(Wrap { trim: true }), area);
}

fn draw_trace(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let rows = area.height.saturating_sub(2) as usize;
    let trace = &app.snapshot.trace;
    let lines: Vec<Line<'_>> = trace[trace.len().saturating_sub(rows)..]
        .iter()
        .map(|(owner, text)| {
            let who = owner.map_or_else(|| "set-up".to_string(), |o| format!("task {}", o + 1));
            Line::from(format!("{who:>7} {text}"))
        })
        .collect();
    let block = Block::bordered().title(format!(" trace ({} events) ", trace.len()));
    frame.render_widget(Paragraph::new(Text::from(lines)).block(block), area);
}

fn draw_bottom(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let mut style = Style::new();
    if matches!(app.verdict(), Verdict::Won(_) | Verdict::Lost(_)) {
        style = style.add_modifier(Modifier::BOLD);
    }
    let mut message = app.message.clone();
    if let Some(path) = &app.saved {
        message = format!("{message} · schedule saved to {}", path.display());
    }
    let lines = vec![Line::from(Span::styled(message, style)), Line::from(KEYS)];
    frame.render_widget(Paragraph::new(lines), area);
}
