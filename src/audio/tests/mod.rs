//! Tests that span the audio modules: every committed fixture's duration against what sox reports, and
//! property tests showing that arbitrary, truncated and corrupted input never panics or hangs a parser.

mod fixture_durations;
mod robustness;
mod support;
