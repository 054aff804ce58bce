//! Drawing the screen: the notes on the left, the selected note on the right, the sync
//! state and the keys at the bottom.

use ratatui::{
    Frame,
    layout::{Constraint, Layout},
    style::{Modifier, Style, Stylize},
    text::{Line, Span},
    widgets::{Block, List, ListItem, ListState, Paragraph, Wrap},
};

use crate::app::{App, Mode};

/// Draws the whole screen.
pub(crate) fn draw(frame: &mut Frame<'_>, app: &App, notebook_name: &str, links: &[String]) {
    let [main, status, keys] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(
            u16::try_from(links.len())
                .unwrap_or(u16::MAX)
                .saturating_add(2),
        ),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let [list, note] =
        Layout::horizontal([Constraint::Percentage(30), Constraint::Percentage(70)]).areas(main);

    draw_list(frame, app, notebook_name, list);
    draw_note(frame, app, note);

    let sync: Vec<Line<'_>> = links.iter().map(|line| Line::from(line.as_str())).collect();
    frame.render_widget(
        Paragraph::new(sync).block(Block::bordered().title(" sync ")),
        status,
    );
    frame.render_widget(Paragraph::new(keys_line(app)).reversed(), keys);
}

fn draw_list(frame: &mut Frame<'_>, app: &App, notebook_name: &str, area: ratatui::layout::Rect) {
    let items: Vec<ListItem<'_>> = app
        .notes
        .iter()
        .map(|note| ListItem::new(note.title.as_str()))
        .collect();
    let selected = app
        .selected
        .as_ref()
        .and_then(|id| app.notes.iter().position(|note| &note.id == id));
    let count = match app.notes.len() {
        1 => "1 note".to_owned(),
        n => format!("{n} notes"),
    };
    let title = format!(" {notebook_name} · {count} ");
    let list = List::new(items)
        .block(Block::bordered().title(title))
        .highlight_symbol("> ")
        .highlight_style(Style::new().add_modifier(Modifier::BOLD));
    let mut state = ListState::default().with_selected(selected);
    frame.render_stateful_widget(list, area, &mut state);
}

fn draw_note(frame: &mut Frame<'_>, app: &App, area: ratatui::layout::Rect) {
    let block = Block::bordered();
    let Some(note) = app.selected_note() else {
        let hint = Paragraph::new("No notes yet: press n to write one.").block(block);
        frame.render_widget(hint, area);
        return;
    };
    let block = block.title(format!(" {} ", note.title));
    let body = match app.caret_index() {
        Some(caret) => with_caret(&note.body, caret),
        None => note.body.lines().map(Line::from).collect(),
    };
    frame.render_widget(
        Paragraph::new(body).block(block).wrap(Wrap { trim: false }),
        area,
    );
}

/// The body's lines with the character at `caret` (or a space at a line's end) shown
/// reversed, as a caret.
fn with_caret(body: &str, caret: usize) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let mut index = 0;
    for line in body.split('\n') {
        let length = line.chars().count();
        if (index..=index + length).contains(&caret) {
            let column = caret - index;
            let before: String = line.chars().take(column).collect();
            let under: String = line.chars().nth(column).map_or(" ".into(), String::from);
            let after: String = line.chars().skip(column + 1).collect();
            lines.push(Line::from(vec![
                Span::raw(before),
                Span::raw(under).reversed(),
                Span::raw(after),
            ]));
        } else {
            lines.push(Line::from(line.to_owned()));
        }
        index += length + 1;
    }
    lines
}

fn keys_line(app: &App) -> String {
    if let Some(message) = &app.message {
        return format!(" {message}");
    }
    match &app.mode {
        Mode::Browse => " n new · enter edit · d delete · ↑↓ select · q quit".into(),
        Mode::NewNote { title } => format!(" title: {title}▏ (enter to create, esc to cancel)"),
        Mode::Edit { .. } => " editing: type · arrows move · esc done".into(),
        Mode::ConfirmDelete => " delete this note? y to delete, any other key to keep".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caret_marks_the_character_it_is_before() {
        let lines = with_caret("ab\ncd", 4);
        assert_eq!(lines.len(), 2);
        let spans: Vec<String> = lines[1]
            .spans
            .iter()
            .map(|s| s.content.to_string())
            .collect();
        assert_eq!(spans, ["c", "d", ""]);
        // At a line's end the caret is a space.
        let spans: Vec<String> = with_caret("ab\ncd", 2)[0]
            .spans
            .iter()
            .map(|s| s.content.to_string())
            .collect();
        assert_eq!(spans, ["ab", " ", ""]);
    }
}
