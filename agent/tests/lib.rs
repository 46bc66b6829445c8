//! Integration tests of the `sealgate` guest binary live in this package's test targets;
//! this library is empty. See Cargo.toml for why they are not in the binary's package.
