//! What the app shows and how keys change it. Keys become [`Action`]s for the notebook;
//! the main loop carries them out (each is stored before the next key is read).

use automerge::Cursor;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::notebook::{Note, Notebook};

/// What the keys are doing now.
#[derive(Debug)]
pub(crate) enum Mode {
    /// Moving through the list of notes.
    Browse,
    /// Typing the title of a new note.
    NewNote {
        /// The title so far.
        title: String,
    },
    /// Editing the selected note's body at a caret that follows the text.
    Edit {
        /// Before which character the caret is.
        caret: Cursor,
    },
    /// Asking whether to delete the selected note.
    ConfirmDelete,
}

/// A change to the notebook that a key asked for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Add a note with this title.
    Add(String),
    /// Replace `delete` characters at `at` in a note's body with `insert`.
    Splice {
        /// The note.
        note: String,
        /// Where.
        at: usize,
        /// How many characters go.
        delete: usize,
        /// What comes in.
        insert: String,
    },
    /// Delete a note.
    Delete(String),
}

/// The app's state.
#[derive(Debug)]
pub(crate) struct App {
    notebook: Notebook,
    /// The notes as last read, oldest first.
    pub(crate) notes: Vec<Note>,
    /// The selected note's id (kept by id, so remote changes do not move the selection).
    pub(crate) selected: Option<String>,
    /// What keys do now.
    pub(crate) mode: Mode,
    /// A line for errors and confirmations.
    pub(crate) message: Option<String>,
    /// Set when the user asked to quit.
    pub(crate) quit: bool,
}

impl App {
    /// The app on `notebook`, showing its notes.
    pub(crate) fn new(notebook: Notebook) -> Self {
        let mut app = Self {
            notebook,
            notes: Vec::new(),
            selected: None,
            mode: Mode::Browse,
            message: None,
            quit: false,
        };
        app.refresh();
        app
    }

    /// The notebook shown.
    pub(crate) fn notebook(&self) -> &Notebook {
        &self.notebook
    }

    /// Reads the notes again (after a change, local or remote).
    pub(crate) fn refresh(&mut self) {
        self.notes = self.notebook.notes();
        let still_there = self
            .selected
            .as_ref()
            .is_some_and(|id| self.notes.iter().any(|note| &note.id == id));
        if !still_there {
            if matches!(self.mode, Mode::Edit { .. } | Mode::ConfirmDelete) {
                self.mode = Mode::Browse;
                self.message = Some("the note was deleted on another device".into());
            }
            self.selected = self.notes.first().map(|note| note.id.clone());
        }
    }

    /// The selected note.
    pub(crate) fn selected_note(&self) -> Option<&Note> {
        let id = self.selected.as_ref()?;
        self.notes.iter().find(|note| &note.id == id)
    }

    /// Where the caret is in the selected note's body, when editing.
    pub(crate) fn caret_index(&self) -> Option<usize> {
        let Mode::Edit { caret } = &self.mode else {
            return None;
        };
        self.notebook.cursor_index(self.selected.as_ref()?, caret)
    }

    /// Handles one key; returns the change it asks for, if any.
    pub(crate) fn on_key(&mut self, key: KeyEvent) -> Option<Action> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let key = match (key.code, key.modifiers.contains(KeyModifiers::CONTROL)) {
            (KeyCode::Char('c'), true) => {
                self.quit = true;
                return None;
            }
            // Ctrl+J and Ctrl+M are newline and carriage return: Enter, as terminals that
            // are not (yet) in raw mode send it.
            (KeyCode::Char('j' | 'm'), true) => KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE),
            // Other control keys are not text.
            (KeyCode::Char(_), true) => return None,
            _ => key,
        };
        match std::mem::replace(&mut self.mode, Mode::Browse) {
            Mode::Browse => self.browse(key),
            Mode::NewNote { title } => self.new_note(key, title),
            Mode::Edit { caret } => self.edit(key, caret),
            Mode::ConfirmDelete => self.confirm_delete(key),
        }
    }

    /// A note was added (by this app): select it and start editing its body.
    pub(crate) fn added(&mut self, id: String) {
        self.refresh();
        self.start_editing(id);
    }

    fn browse(&mut self, key: KeyEvent) -> Option<Action> {
        self.message = None;
        match key.code {
            KeyCode::Char('q') | KeyCode::Esc => self.quit = true,
            KeyCode::Up | KeyCode::Char('k') => self.move_selection(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_selection(1),
            KeyCode::Char('n') => {
                self.mode = Mode::NewNote {
                    title: String::new(),
                }
            }
            KeyCode::Enter | KeyCode::Char('e') => {
                if let Some(id) = self.selected.clone() {
                    self.start_editing(id);
                }
            }
            KeyCode::Char('d') if self.selected.is_some() => self.mode = Mode::ConfirmDelete,
            _ => {}
        }
        None
    }

    fn new_note(&mut self, key: KeyEvent, mut title: String) -> Option<Action> {
        match key.code {
            KeyCode::Esc => return None,
            KeyCode::Enter => {
                let title = title.trim().to_owned();
                return Some(Action::Add(if title.is_empty() {
                    "Untitled".to_owned()
                } else {
                    title
                }));
            }
            KeyCode::Backspace => {
                title.pop();
            }
            KeyCode::Char(c) => title.push(c),
            _ => {}
        }
        self.mode = Mode::NewNote { title };
        None
    }

    fn edit(&mut self, key: KeyEvent, caret: Cursor) -> Option<Action> {
        let note = self.selected.clone()?;
        // The text and the caret as they are now (a remote change may not be drawn yet).
        let Some((body, at)) = self.notebook.body_and_cursor(&note, &caret) else {
            self.message = Some("the note was deleted on another device".into());
            return None;
        };
        let length = body.chars().count();
        let at = at.min(length);
        let splice = |at: usize, delete: usize, insert: String| Action::Splice {
            note: note.clone(),
            at,
            delete,
            insert,
        };
        let mut action = None;
        let mut move_to = None;
        match key.code {
            KeyCode::Esc => return None,
            KeyCode::Char(c) => action = Some(splice(at, 0, c.to_string())),
            KeyCode::Enter => action = Some(splice(at, 0, "\n".into())),
            KeyCode::Tab => action = Some(splice(at, 0, "    ".into())),
            KeyCode::Backspace if at > 0 => {
                action = Some(splice(at - 1, 1, String::new()));
            }
            KeyCode::Delete if at < length => action = Some(splice(at, 1, String::new())),
            KeyCode::Left => move_to = Some(at.saturating_sub(1)),
            KeyCode::Right => move_to = Some((at + 1).min(length)),
            KeyCode::Home => move_to = Some(line_start(&body, at)),
            KeyCode::End => move_to = Some(line_end(&body, at)),
            KeyCode::Up => move_to = Some(vertical(&body, at, -1)),
            KeyCode::Down => move_to = Some(vertical(&body, at, 1)),
            _ => {}
        }
        // The caret is a cursor before a character: it stays before it as text is inserted
        // at the caret (so typing moves it along) or anywhere else, here or remotely.
        let caret = match move_to {
            Some(index) => self.notebook.cursor_at(&note, index).unwrap_or(caret),
            None => caret,
        };
        self.mode = Mode::Edit { caret };
        action
    }

    fn confirm_delete(&mut self, key: KeyEvent) -> Option<Action> {
        match key.code {
            KeyCode::Char('y') => self.selected.clone().map(Action::Delete),
            _ => None,
        }
    }

    fn start_editing(&mut self, id: String) {
        let end = self
            .notes
            .iter()
            .find(|note| note.id == id)
            .map_or(0, |note| note.body.chars().count());
        if let Some(caret) = self.notebook.cursor_at(&id, end) {
            self.selected = Some(id);
            self.mode = Mode::Edit { caret };
        }
    }

    fn move_selection(&mut self, by: isize) {
        if self.notes.is_empty() {
            return;
        }
        let current = self
            .selected
            .as_ref()
            .and_then(|id| self.notes.iter().position(|note| &note.id == id))
            .unwrap_or(0);
        let last = self.notes.len() - 1;
        let next = current.saturating_add_signed(by).min(last);
        self.selected = Some(self.notes[next].id.clone());
    }
}

/// The index of the first character of the line holding `at`.
fn line_start(text: &str, at: usize) -> usize {
    text.chars()
        .take(at)
        .collect::<Vec<_>>()
        .iter()
        .rposition(|&c| c == '\n')
        .map_or(0, |newline| newline + 1)
}

/// The index just after the last character of the line holding `at`.
fn line_end(text: &str, at: usize) -> usize {
    text.chars()
        .skip(at)
        .position(|c| c == '\n')
        .map_or(text.chars().count(), |offset| at + offset)
}

/// The index one line up (`-1`) or down (`1`) from `at`, in the same column where it fits.
fn vertical(text: &str, at: usize, direction: isize) -> usize {
    let start = line_start(text, at);
    let column = at - start;
    if direction < 0 {
        if start == 0 {
            return 0;
        }
        let previous = line_start(text, start - 1);
        (previous + column).min(start - 1)
    } else {
        let end = line_end(text, at);
        let length = text.chars().count();
        if end >= length {
            return length;
        }
        let next = end + 1;
        (next + column).min(line_end(text, next))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use weft::Repo;

    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    /// Types `text`, carrying out each key's action before the next key (as the app does).
    async fn type_text(app: &mut App, text: &str) {
        for c in text.chars() {
            if let Some(Action::Splice {
                note,
                at,
                delete,
                insert,
            }) = app.on_key(key(KeyCode::Char(c)))
            {
                app.notebook()
                    .splice_body(&note, at, delete, insert)
                    .await
                    .unwrap();
                app.refresh();
            }
        }
    }

    #[tokio::test]
    async fn keys_make_notes_and_edit_them_at_the_caret() {
        let repo = Repo::in_memory();
        let mut app = App::new(Notebook::open(&repo, "keys").await.unwrap());
        assert!(app.on_key(key(KeyCode::Char('n'))).is_none());
        type_text(&mut app, "Todo").await;
        assert!(matches!(&app.mode, Mode::NewNote { title } if title == "Todo"));
        // Ctrl+J (what Enter is before the terminal is in raw mode) creates it too.
        let add = app.on_key(KeyEvent::new(KeyCode::Char('j'), KeyModifiers::CONTROL));
        assert_eq!(add, Some(Action::Add("Todo".into())));
        let id = app.notebook().add("Todo".into()).await.unwrap();
        app.added(id.clone());
        assert!(matches!(app.mode, Mode::Edit { .. }));

        type_text(&mut app, "ab").await;
        // Left, then type: the character goes before "b"; Backspace removes it again.
        assert!(app.on_key(key(KeyCode::Left)).is_none());
        let insert = app.on_key(key(KeyCode::Char('X'))).unwrap();
        assert_eq!(
            insert,
            Action::Splice {
                note: id.clone(),
                at: 1,
                delete: 0,
                insert: "X".into()
            }
        );
        // Other control keys are not text.
        assert!(
            app.on_key(KeyEvent::new(KeyCode::Char('x'), KeyModifiers::CONTROL))
                .is_none()
        );
        assert!(app.on_key(key(KeyCode::Esc)).is_none());
        assert!(matches!(app.mode, Mode::Browse));
        assert_eq!(app.selected_note().unwrap().body, "ab");
    }

    #[test]
    fn lines_are_found_by_character_index() {
        let text = "ab\ncdé\n\nf";
        assert_eq!((line_start(text, 4), line_end(text, 4)), (3, 6));
        assert_eq!((line_start(text, 0), line_end(text, 0)), (0, 2));
        assert_eq!(line_end(text, 9), 9);
        // Down from column 1 of "ab" lands at column 1 of "cdé"; then on the empty line.
        assert_eq!(vertical(text, 1, 1), 4);
        assert_eq!(vertical(text, 4, 1), 7);
        assert_eq!(vertical(text, 7, -1), 3);
        assert_eq!(vertical(text, 1, -1), 0);
        assert_eq!(vertical(text, 8, 1), 9);
    }
}
