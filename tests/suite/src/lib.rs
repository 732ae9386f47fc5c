//! Helpers for the black-box suite.
