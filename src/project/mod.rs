//! The project being run: where its pipeline file is, what git says of it, and the
//! predefined CI variables that follow from that.

pub mod discover;
pub(crate) mod git;
pub(crate) mod name_rules;
pub(crate) mod predefined;
pub(crate) mod tree;
pub(crate) mod worktree;
