//! Reference implementations the tests compare against.
pub mod parser_v1;
