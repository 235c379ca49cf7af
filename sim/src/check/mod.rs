//! Checkers: a history against a model.
