//! The guest-components server (`sealgate serve` and the upstream names).

pub mod hub;
pub mod rest;
