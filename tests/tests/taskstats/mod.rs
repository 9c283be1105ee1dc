//! taskstats scenarios: property tests, loom and shuttle models, the zoo (being written).
