//! Typed client configuration.
