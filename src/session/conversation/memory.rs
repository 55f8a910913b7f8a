//! Conversation memory: the turns the LLM sees, bounded by a character budget. The oldest turns are dropped
//! first; the system prompt is not part of the budget and is always sent; the newest message always stays,
//! however long, so the question being answered is never lost.

use std::collections::VecDeque;

use crate::db::{Role, ToolRecord};
pub use crate::session::settings::Remembered;

/// What an entry costs of the budget: its text and its tool calls' arguments and answers.
fn size(entry: &Remembered) -> usize {
    entry.text.chars().count()
        + entry.tools.iter().map(|t| t.name.len() + t.arguments.to_string().len() + t.answer().len()).sum::<usize>()
}

/// The conversation so far, within budget.
#[derive(Debug, Clone)]
pub struct Memory {
    entries: VecDeque<Remembered>,
    chars: usize,
    budget_chars: usize,
}

impl Memory {
    pub fn new(budget_chars: usize) -> Memory {
        Memory { entries: VecDeque::new(), chars: 0, budget_chars }
    }

    /// Appends a message, then forgets the oldest ones while over budget.
    pub fn push(&mut self, role: Role, text: impl Into<String>) {
        self.push_with_tools(role, text, Vec::new());
    }

    /// Appends a message with the tool calls made for it (they count against the budget too).
    pub fn push_with_tools(&mut self, role: Role, text: impl Into<String>, tools: Vec<ToolRecord>) {
        let text = text.into();
        if text.trim().is_empty() && tools.is_empty() {
            return;
        }
        let entry = Remembered { role, text, tools };
        self.chars += size(&entry);
        self.entries.push_back(entry);
        while self.chars > self.budget_chars && self.entries.len() > 1 {
            if let Some(old) = self.entries.pop_front() {
                self.chars -= size(&old);
            }
        }
    }

    /// The remembered messages, oldest first.
    pub fn messages(&self) -> impl Iterator<Item = &Remembered> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_turns_go_first_when_over_budget() {
        let mut m = Memory::new(20);
        m.push(Role::User, "0123456789");
        m.push(Role::Assistant, "abcdefghij");
        assert_eq!(m.len(), 2);
        m.push(Role::User, "XYZ");
        let texts: Vec<&str> = m.messages().map(|r| r.text.as_str()).collect();
        assert_eq!(texts, ["abcdefghij", "XYZ"]);
    }

    #[test]
    fn the_newest_message_stays_even_when_larger_than_the_budget() {
        let mut m = Memory::new(5);
        m.push(Role::User, "short");
        m.push(Role::User, "a very long question indeed");
        assert_eq!(m.len(), 1);
        assert_eq!(m.messages().next().unwrap().text, "a very long question indeed");
    }

    #[test]
    fn blank_messages_are_not_remembered() {
        let mut m = Memory::new(100);
        m.push(Role::Assistant, "  ");
        assert!(m.is_empty());
    }
}
