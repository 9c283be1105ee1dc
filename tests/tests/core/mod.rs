//! sim-core's own checkers, proved on its primitives.
