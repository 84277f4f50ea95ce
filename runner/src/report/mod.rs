//! Reports: the live terminal view and summary, JUnit XML, JSON. They read events or
//! stored runs; none of them runs anything.

pub mod attempts;
pub mod comparison;
pub mod history;
pub mod html;
pub mod junit;
pub mod status;
pub mod terminal;
pub mod unified;
pub mod verdict;
