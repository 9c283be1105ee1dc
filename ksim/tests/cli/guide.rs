//! Every command the guide shows, run.
