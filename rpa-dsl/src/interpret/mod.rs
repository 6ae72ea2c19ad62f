//! Interpret mode: the reference semantics of the IR.
