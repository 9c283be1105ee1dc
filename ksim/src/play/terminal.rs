//! The real terminal: raw mode and the alternate screen (restored on every way out), keys read
//! from crossterm and handed to the game, the screen redrawn after each.

use std::io::IsTerminal as _;
use std::path::Path;

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind};

use super::app::{App, Key};
use super::level::Level;
use super::screen;
use crate::error::CliError;

/// Plays `level` until the player quits.
pub(crate) fn run(level: Level, save_dir: &Path) -> Result<(), CliError> {
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return Err(CliError::Usage(
            "ksim play LEVEL needs a terminal (--list and --check FILE work without one)".into(),
        ));
    }
    let mut app = App::new(level, Some(save_dir.to_path_buf()));
    let mut terminal = ratatui::try_init().map_err(|e| CliError::Failed(format!("terminal: {e}")))?;
    let result = (|| -> std::io::Result<()> {
        while !app.quit {
            terminal.draw(|frame| screen::draw(frame, &app))?;
            if let Event::Key(key) = event::read()? {
                if key.kind == KeyEventKind::Press {
                    app.key(translate(key.code));
                }
            }
        }
        Ok(())
    })();
    ratatui::restore();
    result.map_err(|e| CliError::Failed(format!("terminal: {e}")))?;
    if let Some(path) = &app.saved {
        println!("schedule saved to {} (check it: ksim play --check {})", path.display(), path.display());
    }
    Ok(())
}

/// A crossterm key as the game's.
fn translate(code: KeyCode) -> Key {
    match code {
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Enter => Key::Enter,
        KeyCode::Left | KeyCode::Up => Key::Left,
        KeyCode::Right | KeyCode::Down => Key::Right,
        KeyCode::Esc => Key::Esc,
        _ => Key::Other,
    }
}
