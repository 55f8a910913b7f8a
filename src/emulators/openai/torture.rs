//! Transport torture and compatible-server quirks of the OpenAI emulator's SSE responses, and their
//! `--openai-torture` spelling.

use std::str::FromStr;

/// Transport torture and compatible-server quirks for SSE responses; every flag is independent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Torture {
    /// Write each event in two pieces, cut mid-line.
    pub split_lines: bool,
    /// Cut inside a multi-byte UTF-8 character when the event has one.
    pub split_utf8: bool,
    /// `\r\n` line endings.
    pub crlf: bool,
    /// Lone `\r` line endings.
    pub cr: bool,
    /// A `: keep-alive` comment before every event.
    pub comments: bool,
    /// Two events per write.
    pub coalesce: bool,
    /// `data:` with no space after the colon.
    pub no_space: bool,
    /// Tool-call deltas without `index` (Gemini/ollama style).
    pub no_tool_index: bool,
    /// Unknown extra fields on chunks, choices and deltas.
    pub extra_fields: bool,
    /// Tool-call arguments whole in the call's first delta instead of fragments.
    pub whole_tool_arguments: bool,
    /// A running `usage` object on every chunk (some compatible servers do this).
    pub usage_every_chunk: bool,
    /// `finish_reason` on the last content delta instead of a separate empty chunk.
    pub finish_with_content: bool,
}

/// Parses a comma-separated list: `split-lines,split-utf8,crlf,cr,comments,coalesce,no-space,
/// no-tool-index,extra-fields,whole-tool-arguments,usage-every-chunk,finish-with-content`, or `all`
/// (everything but `cr`), or `none`.
impl FromStr for Torture {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut t = Torture::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "none" => {}
                "all" => t = Torture { cr: false, ..Torture::all() },
                "split-lines" => t.split_lines = true,
                "split-utf8" => t.split_utf8 = true,
                "crlf" => t.crlf = true,
                "cr" => t.cr = true,
                "comments" => t.comments = true,
                "coalesce" => t.coalesce = true,
                "no-space" => t.no_space = true,
                "no-tool-index" => t.no_tool_index = true,
                "extra-fields" => t.extra_fields = true,
                "whole-tool-arguments" => t.whole_tool_arguments = true,
                "usage-every-chunk" => t.usage_every_chunk = true,
                "finish-with-content" => t.finish_with_content = true,
                _ => return Err(format!("unknown torture mode {part:?}")),
            }
        }
        Ok(t)
    }
}

impl Torture {
    /// Every flag on (`cr` and `crlf` both set means `\r\n`).
    pub fn all() -> Self {
        Torture {
            split_lines: true,
            split_utf8: true,
            crlf: true,
            cr: true,
            comments: true,
            coalesce: true,
            no_space: true,
            no_tool_index: true,
            extra_fields: true,
            whole_tool_arguments: true,
            usage_every_chunk: true,
            finish_with_content: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_torture_spellings_parse() {
        let t: Torture = "crlf, comments".parse().unwrap();
        assert!(t.crlf && t.comments && !t.split_lines);
        assert!("all".parse::<Torture>().unwrap().split_utf8);
        assert!("wobble".parse::<Torture>().is_err());
    }
}
