//! Proxy suite (placeholder).
