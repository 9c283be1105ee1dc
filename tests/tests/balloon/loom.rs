//! loom models (below).
